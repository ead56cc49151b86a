// The single executable (dist/oci-netdev, scripts/build-exe.mjs) where it differs by construction
// from the Node launcher: it runs hooks on a host with no node and an empty noexec /tmp, names
// itself in the hook entries it writes, reads nothing Bun would load from its working folder, finds
// koffi only beside itself, and answers every error as the launcher does. The integration and e2e
// suites run against it as a whole in `make test`'s second pass (OCI_NETDEV_TEST_BIN).
import t from 'tap';
import { linkSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXECUTABLE, NODE_LAUNCHER } from '../helpers/hook';
import { KOFFI_BESIDE_EXECUTABLE, KOFFI_VERSION } from '../../native/koffi-loader';
import { uniqueId, uniqueName } from '../helpers/names';
import { inSimHost, linkSnapshot, netnsPath, REPO_ROOT, sh, shQuote as quote, withoutNode } from '../helpers/sandbox';
import { configBundle, makeRig, ociState } from '../helpers/netdevices';

interface Hook {
  path: string;
  args: string[];
  env: string[];
}

t.test('with no node on the host and an empty noexec /tmp, hook entries written by the executable move a device in and back', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const before = linkSnapshot(rig.simhost, nic);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'eth1' } } });

  const control = withoutNode(`${quote(NODE_LAUNCHER)} --version; echo "exit $?"`);
  t.match(control.stdout, /^exit 126\n/m, `control: the launcher cannot start here (${control.stderr.trim()})`);

  const injected = withoutNode(`${quote(EXECUTABLE)} --state-dir ${quote(rig.stateDir)} inject ${quote(bundle)}`);
  t.equal(injected.stdout, `${bundle}/config.json: added 2 hook(s)\n/tmp:\n`, `inject: ${injected.stderr}`);
  const hooks = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')).hooks as Record<string, Hook[]>;
  t.same(hooks.createRuntime.map((h) => ({ path: h.path, args: h.args, env: h.env })), [{
    path: realpathSync(EXECUTABLE),
    args: ['oci-netdev', '--state-dir', rig.stateDir, 'create-runtime'],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  }], 'the entry names the executable, with the system PATH and no node folder');

  // Each entry as a runtime runs it: its path, args and env alone, the state on stdin, in the host's
  // netns. One namespace for both stages: the netns pin that create-runtime mounts lives in it.
  const id = uniqueId('exe');
  const stateFile = (status: 'creating' | 'stopped') => {
    const file = join(rig.sb.tempDir('state-json'), 'state.json');
    writeFileSync(file, JSON.stringify(ociState(id, bundle, status, status === 'creating' ? { pid: process.pid } : {})));
    return file;
  };
  const entry = (h: Hook, state: string) =>
    `nsenter --net=${quote(netnsPath(rig.simhost))} -- env -i ${h.env.map(quote).join(' ')} ${quote(h.path)} ${h.args.slice(1).map(quote).join(' ')} < ${quote(state)}`;
  const ran = withoutNode([
    `${entry(hooks.createRuntime[0], stateFile('creating'))}; echo "create-runtime: $?"`,
    `ip -n ${quote(rig.ctr)} -o link show eth1 | cut -d' ' -f2 | cut -d@ -f1`,
    `${entry(hooks.poststop[0], stateFile('stopped'))}; echo "poststop: $?"`,
  ].join('\n'));
  t.equal(ran.stdout, 'create-runtime: 0\neth1\npoststop: 0\n/tmp:\n', `both stages ran, and /tmp is still empty: ${ran.stderr}`);
  t.same(linkSnapshot(rig.simhost, nic), before, 'the device is back on the host as it was');
});

t.test('the executable reads no .env nor bunfig.toml from its working folder (a runtime starts hooks in the bundle)', async (t) => {
  const rig = makeRig(t);
  const dir = rig.sb.tempDir('cwd');
  const marker = join(dir, 'preloaded');
  writeFileSync(join(dir, '.env'), 'OCI_NETDEV_TRACE=1\nOCI_NETDEV_STATE_DIR=/nonexistent\n');
  writeFileSync(join(dir, 'bunfig.toml'), 'preload = ["./preload.js"]\n');
  writeFileSync(join(dir, 'preload.js'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n`);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: {} });
  const r = sh('sh', ['-c', `cd ${quote(dir)} && exec "$@"`, 'sh', ...inSimHost(rig.simhost, [EXECUTABLE, 'validate', '--live', bundle]).flat()]);
  t.same({ status: r.status, stdout: r.stdout, stderr: r.stderr },
    { status: 0, stdout: `${bundle}/config.json: ok, 0 device(s), attachable on this host now\n`, stderr: '' },
    'no netlink trace on stderr: the .env is not read');
  t.equal(sh('test', ['-e', marker]).status, 1, 'the preload did not run');
});

t.test('the executable loads koffi only from beside itself, and says where it looked', async (t) => {
  // A hard link elsewhere on the same file system: the same executable, with no koffi beside it.
  const dir = mkdtempSync(join(REPO_ROOT, 'dist', '.exe-alone-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  linkSync(EXECUTABLE, join(dir, 'oci-netdev'));
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: {} } });
  const r = sh(...inSimHost(rig.simhost, [join(dir, 'oci-netdev'), 'validate', '--live', bundle]));
  t.equal(r.status, 1, 'exit 1');
  const expected = `oci-netdev: cannot load koffi ${KOFFI_VERSION}'s native module: ${dir}/${KOFFI_BESIDE_EXECUTABLE}: `;
  t.equal(r.stderr.slice(0, expected.length), expected, `one line naming the file: ${r.stderr}`);
  t.equal(r.stderr.indexOf('\n'), r.stderr.length - 1, 'and only one');
});

t.test('the executable and the Node launcher answer alike: exit status, stdout and stderr', async (t) => {
  const rig = makeRig(t);
  const bad = join(rig.sb.tempDir('bad'), 'config.json');
  writeFileSync(bad, JSON.stringify({ ociVersion: '1.0.2', linux: { netDevices: { 'a/b': {} } } }));
  const cases: { name: string; args: string[]; env?: Record<string, string>; input?: string }[] = [
    { name: '--version', args: ['--version'] },
    { name: '--help', args: ['--help'] },
    { name: 'an unknown command', args: ['bogus'] },
    { name: 'an unknown option', args: ['validate', '--nope', bad] },
    { name: 'a missing config', args: ['validate', '/nonexistent/config.json'] },
    { name: 'an invalid device name', args: ['validate', bad] },
    { name: 'create-runtime with no state on stdin', args: ['--state-dir', rig.stateDir, 'create-runtime'] },
    { name: 'create-runtime with text that is not JSON', args: ['--state-dir', rig.stateDir, 'create-runtime'], input: '{' },
    { name: 'status --json of an empty state dir', args: ['--state-dir', rig.stateDir, 'status', '--json'] },
    { name: 'CNI VERSION', args: [], env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}' },
    { name: 'CNI ADD with a network config that is not JSON', args: [], env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/nonexistent', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent' }, input: 'x' },
  ];
  for (const c of cases) {
    const run = (bin: string) => {
      const r = sh(...inSimHost(rig.simhost, [bin, ...c.args]), { env: c.env, input: c.input });
      return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    };
    t.same(run(EXECUTABLE), run(NODE_LAUNCHER), c.name);
  }
});
