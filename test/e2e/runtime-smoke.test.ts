// The runtimes work here, without oci-netdev: the ground every e2e test stands on. A runtime that
// cannot run fails this file with its own error message; nothing is skipped.
import t from 'tap';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { uniqueId, uniqueName } from '../helpers/names';
import { RUNTIMES, runContainer } from '../helpers/runtime';
import { inSimHost, netnsPath, Sandbox, sh } from '../helpers/sandbox';

const PRINT_LINKS = ['ip', '-o', 'link'];

for (const runtime of RUNTIMES) {
  t.test(`${runtime} runs busybox in a new netns inside a simulated host`, async (t) => {
    const sb = new Sandbox(t);
    const simhost = sb.createNetns('simhost');
    const nic = uniqueName('nic');
    sb.createVethPair(simhost, nic, uniqueName('peer'));
    const r = runContainer(sb, runtime, simhost, makeBundle(sb, { args: PRINT_LINKS }), uniqueId(runtime));
    t.equal(r.status, 0, `${runtime} run exits 0`, { stderr: r.stderr });
    t.match(r.stdout, /^1: lo: /m, 'lo is in the container');
    t.notMatch(r.stdout, nic, 'the simulated host devices are not');
  });

  t.test(`${runtime} joins a netns given by path`, async (t) => {
    const sb = new Sandbox(t);
    const simhost = sb.createNetns('simhost');
    const ctr = sb.createNetns('ctr');
    const dev = uniqueName('ctr');
    sb.createVethPair(ctr, dev, uniqueName('peer'));
    const bundle = makeBundle(sb, { args: PRINT_LINKS, netnsPath: netnsPath(ctr) });
    const r = runContainer(sb, runtime, simhost, bundle, uniqueId(runtime));
    t.equal(r.status, 0, `${runtime} run exits 0`, { stderr: r.stderr });
    t.match(r.stdout, new RegExp(`^\\d+: ${dev}@`, 'm'), `${dev} from the given netns is in the container`);
  });
}

t.test('podman runs busybox from a rootfs dir inside a simulated host', async (t) => {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const rootfs = join(makeBundle(sb, { args: [] }), 'rootfs');
  const name = uniqueId('podman');
  sb.defer(() => void sh('podman', ['rm', '--force', '--ignore', name]));
  // --rootfs takes no value: the dir is the first positional argument, after every option.
  const argv = ['podman', 'run', '--rm', '--name', name, '--network', 'none',
    '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--rootfs', rootfs, ...PRINT_LINKS];
  const r = sh(...inSimHost(simhost, argv), { timeoutMs: 120_000 });
  t.equal(r.status, 0, 'podman run exits 0', { stderr: r.stderr });
  t.match(r.stdout, /^1: lo: /m, 'lo is in the container');
});
