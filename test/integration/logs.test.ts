// The hook's reports reach the system log through /dev/log, whatever happens to its stderr. The
// hooks run in a mount namespace of their own whose /dev holds only `log`, a link to a socket this
// test listens on; everything else (the state dir, its pins, the network namespaces) is shared.
// One mount namespace for every hook run, held by a sleeping process, so that the pin made at
// createRuntime is there for poststop.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { OCI_NETDEV } from '../helpers/hook';
import { hostNic } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { configBundle, makeRig, ociState, Rig } from '../helpers/netdevices';
import { netnsPath, sh, ShResult } from '../helpers/sandbox';
import { listenSyslog, SyslogListener } from '../helpers/syslog';

/** A process in a private mount namespace where /dev/log leads to `socket`; returns its pid. */
async function syslogMountNs(t: Test, socket: string): Promise<number> {
  const script = `mount -t tmpfs tmpfs /dev && ln -s '${socket}' /dev/log && echo ready && exec sleep 3600`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise<void>((ready, fail) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ready')) ready(); });
    child.on('exit', (code) => fail(new Error(`mount namespace holder exited ${code}: ${err}`)));
  });
  return child.pid!;
}

interface LogWorld {
  rig: Rig;
  listener: SyslogListener;
  holder: number;
}

async function world(t: Test): Promise<LogWorld> {
  const rig = makeRig(t);
  const listener = listenSyslog(join(rig.sb.tempDir('syslog'), 'log.sock'));
  t.teardown(() => listener.close());
  return { rig, listener, holder: await syslogMountNs(t, listener.path) };
}

function hook(w: LogWorld, command: string, state: object): ShResult {
  return sh('nsenter', [`--mount=/proc/${w.holder}/ns/mnt`, `--net=${netnsPath(w.rig.simhost)}`, '--',
    OCI_NETDEV, command, '--state-dir', w.rig.stateDir], { input: JSON.stringify(state) });
}

const TAGGED = (severity: number, id: string) => new RegExp(`^<${24 + severity}>oci-netdev\\[\\d+\\]: container ${id}: `);

t.test('changes, warnings and errors reach /dev/log with the tag and the container id', async (t) => {
  const w = await world(t);
  const nic = hostNic(w.rig);
  const id = uniqueId('ctr');
  const bundle = configBundle(w.rig.sb, w.rig.ctr, { netDevices: { [nic]: { name: 'eth1' } } });

  const created = hook(w, 'create-runtime', ociState(id, bundle, 'creating'));
  t.equal(created.status, 0, 'create-runtime', { stderr: created.stderr });
  t.equal(created.stderr, '', 'changes are not shown on stderr');
  const attachLines = w.listener.drain();
  t.ok(attachLines.length > 0, 'create-runtime logged', { attachLines });
  t.ok(attachLines.every((l) => TAGGED(6, id).test(l)), 'every line: daemon.info, tag, pid, container id', { attachLines });
  t.ok(attachLines.some((l) => l.includes(`device ${nic}: moveIn`)), 'the move into the container is logged', { attachLines });

  // The name is taken on the host while the container runs: poststop restores under another name and warns.
  w.rig.sb.createVethPair(w.rig.simhost, nic, uniqueName('peer'));
  const stopped = hook(w, 'poststop', ociState(id, bundle, 'stopped'));
  t.equal(stopped.status, 0, 'poststop', { stderr: stopped.stderr });
  t.match(stopped.stderr, /WARNING: .*restored as/, 'the warning on stderr');
  const restoreLines = w.listener.drain();
  const warning = restoreLines.filter((l) => TAGGED(4, id).test(l));
  t.equal(warning.length, 2, 'two daemon.warning lines', { restoreLines });
  t.match(warning[0], new RegExp(`device ${nic}: .*restored as ${nic.slice(0, 12)}-r0$`), 'naming the device and the fallback');
  t.match(warning[1], new RegExp(`its record stays open: ${nic}: home as ${nic.slice(0, 12)}-r0`), 'and that its record stays open');
  t.ok(restoreLines.some((l) => TAGGED(6, id).test(l) && l.includes(`device ${nic}: moveOut`)), 'the move back is logged', { restoreLines });

  const refusedId = uniqueId('ctr');
  const missing = uniqueName('missing');
  const refusedBundle = configBundle(w.rig.sb, w.rig.ctr, { netDevices: { [missing]: {} } });
  const refused = hook(w, 'create-runtime', ociState(refusedId, refusedBundle, 'creating'));
  t.equal(refused.status, 1, 'a refused create-runtime exits 1');
  const errorLines = w.listener.drain();
  t.equal(errorLines.length, 1, 'one line', { errorLines });
  t.match(errorLines[0], TAGGED(3, refusedId), 'daemon.err with the container id');
  t.ok(errorLines[0].endsWith(refused.stderr.trim().replace(/^oci-netdev: /, '')), 'the same text as on stderr', { errorLines, stderr: refused.stderr });
});

t.test('without /dev/log the hook runs as before', async (t) => {
  const rig = makeRig(t);
  const nic = hostNic(rig);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: {} } });
  // The empty /dev of a private mount namespace.
  const run = (command: string, status: 'creating' | 'stopped') => sh('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
    `mount -t tmpfs tmpfs /dev && exec nsenter --net='${netnsPath(rig.simhost)}' -- '${OCI_NETDEV}' ${command} --state-dir '${rig.stateDir}'`],
  { input: JSON.stringify(ociState(id, bundle, status)) });
  const created = run('create-runtime', 'creating');
  t.equal(created.status, 0, 'create-runtime', { stderr: created.stderr });
  t.equal(created.stderr, '', 'nothing on stderr');
  // The pin made in that mount namespace went with it; poststop finds the namespace by its path.
  const stopped = run('poststop', 'stopped');
  t.equal(stopped.status, 0, 'poststop', { stderr: stopped.stderr });
  t.equal(stopped.stderr, '', 'nothing on stderr');
});
