// What an operator reads (issue 18, item 6): a poststop that cannot lock its state (a read-only
// state dir) says which container and what to run next, and gc restores it once the state dir is
// writable; the commands end quietly when the reader of their output has gone (a closed pipe);
// gc says why it keeps a CNI attachment.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin, nicSetup } from '../helpers/cni';
import { OCI_NETDEV, runHook } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, makeRig, ociState, stateEntries } from '../helpers/netdevices';
import { addAddress, inSimHost, sh, shOk, settledTo, steady } from '../helpers/sandbox';

t.test('poststop with a read-only state dir names the container and gc; gc restores once it is writable', async (t) => {
  const rig = makeRig(t);
  // A mount of its own, so that it alone can be made read-only; the pins go inside it.
  const stateDir = join(rig.sb.tempDir('ro'), 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  shOk('mount', ['--bind', stateDir, stateDir]);
  const dev = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, dev, uniqueName('peer'));
  addAddress(rig.simhost, dev, '10.73.0.1/24', ['broadcast', '+']);
  const before = await steady(rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: { name: 'eth1' } } });
  t.equal(runHook(rig.simhost, 'create-runtime', ociState(id, bundle, 'creating'), { stateDir }).status, 0, 'create-runtime');

  shOk('mount', ['-o', 'remount,bind,ro', stateDir]);
  const r = runHook(rig.simhost, 'poststop', ociState(id, bundle, 'stopped'), { stateDir });
  t.equal(r.status, 1, 'poststop fails');
  const lines = r.stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, 'with one line', { stderr: r.stderr });
  t.match(lines[0], new RegExp(`^oci-netdev: container ${id}: not restored: .*EROFS \\(read-only file system\\); its devices stay where they are until oci-netdev gc runs once that is fixed$`),
    'naming the container, the cause and gc', { line: lines[0] });

  shOk('mount', ['-o', 'remount,bind,rw', stateDir]);
  const gc = sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', stateDir, 'gc']));
  t.equal(gc.status, 0, 'gc exits 0 once the state dir is writable', { stdout: gc.stdout, stderr: gc.stderr });
  t.match(gc.stdout, `${id}: restored`, 'and restores the container');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(stateDir), [], 'no state left');
});

t.test('the commands end quietly when the reader of their output has gone', async (t) => {
  const rig = makeRig(t);
  // The pipe's read end is closed before the command starts, so its first write fails (EPIPE).
  const closedPipe = 'pipe(my $r, my $w) or die; close $r; open(STDOUT, ">&", $w) or die; exec @ARGV or die';
  for (const args of [['status'], ['status', '--json'], ['gc'], ['--help']]) {
    const r = sh('perl', ['-e', closedPipe, OCI_NETDEV, '--state-dir', rig.stateDir, ...args]);
    t.equal(r.status, 0, `${args.join(' ')}: exit 0`);
    t.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr (no stack trace)`);
  }
});

t.test('gc says why it keeps a CNI attachment', async (t) => {
  const s = nicSetup(t);
  const network = uniqueId('net');
  const conf = { cniVersion: '1.0.0', name: network, type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir };
  t.equal(execPlugin(s.run, 'ADD', 'oci-netdev', conf).status, 0, 'ADD');
  const gc = cli(s.rig, ['gc']);
  t.equal(gc.status, 0, 'gc exits 0');
  t.equal(gc.stdout, `cni:${network}:${s.run.containerId}:eth0: kept (CNI attachment: its namespace ${s.run.netns} is still there)\ngc: 0 restored, 1 kept, 0 failed\n`,
    'naming the namespace that keeps it alive');
  t.equal(execPlugin(s.run, 'DEL', 'oci-netdev', conf).status, 0, 'DEL');
});
