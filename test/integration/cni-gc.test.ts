// libcni's GC after a reboot: the state dir (a tmpfs) is gone, host-local's leases and libcni's
// result cache are not. `oci-netdev gc` DELs every attachment oci-netdev made that no journal
// holds, with its cached config: the hooks' networks and those through the plugin door. And the
// plugin door's own GC passes GC on to an IPAM plugin that speaks 1.1.0.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execPlugin } from '../helpers/cni';
import { allCalls, bridgeNetwork, cacheEntries, cniDirs, CniDirs, leases, writeConflist, writeRecorders } from '../helpers/cni-networks';
import { OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { configBundle, ociState, Rig, stateEntries, makeRig, traced } from '../helpers/netdevices';
import { inSimHost, mountPoints, netnsPath, sh, ShResult, shOk } from '../helpers/sandbox';

/**
 * `oci-netdev ARGS` in the simulated host with the rig's CNI dirs (oci-netdev among the plugins),
 * gc with the node's state dir (the rig's unless given); the plugin door takes it from its
 * environment, as a network config may not choose it.
 */
function run(rig: Rig, dirs: CniDirs, args: string[], stateDir = rig.stateDir): ShResult {
  return sh(...inSimHost(rig.simhost, [OCI_NETDEV, ...args, ...(args[0] === 'gc' ? ['--state-dir', stateDir] : [])]),
    { env: { ...dirs.env, OCI_NETDEV_STATE_DIR: stateDir } });
}

/** A reboot, as far as oci-netdev sees it: pins and state dir gone, the containers' namespaces gone. */
function reboot(rig: Rig, namespaces: string[]): void {
  for (const mp of mountPoints().filter((m) => m.startsWith(rig.stateDir + '/')).reverse()) shOk('umount', ['--lazy', mp]);
  rmSync(rig.stateDir, { recursive: true, force: true });
  for (const ns of namespaces) shOk('ip', ['netns', 'del', ns]);
}

/**
 * A rig whose CNI dirs hold oci-netdev as a plugin, a bridge + host-local network on `bridgeSubnet`
 * for the hooks, and a maker of plugin door networks (a veth with host-local on `doorSubnet`).
 */
function gcRig(t: Test, bridgeSubnet: string, doorSubnet: string) {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  symlinkSync(OCI_NETDEV, join(dirs.pluginDir, 'oci-netdev'));
  const hooksNet = uniqueId('hooks');
  bridgeNetwork(dirs, hooksNet, uniqueName('br'), bridgeSubnet);
  const doorNet = (stateDir: string) => {
    const name = uniqueId('door');
    writeConflist(dirs, name, [{
      type: 'oci-netdev', kind: 'veth', stateDir, ipam: { type: 'host-local', dataDir: dirs.ipamDir, ranges: [[{ subnet: doorSubnet }]] },
    }]);
    return name;
  };
  return { rig, dirs, hooksNet, doorNet };
}

t.test('a reboot: gc DELs every cached attachment of the hooks and of the plugin door, freeing every lease; the same ids then get addresses', async (t) => {
  const { rig, dirs, hooksNet, doorNet: door } = gcRig(t, '10.77.0.0/29', '10.78.0.0/29');
  const doorNet = door(rig.stateDir);
  const hookId = uniqueId('ctr');
  const doorId = uniqueId('pod');
  const doorNs = rig.sb.createNetns('pod');
  const attach = () => {
    const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [hooksNet]: { type: 'cni', name: 'eth1' } } });
    const r = traced(rig, 'create-runtime', ociState(hookId, bundle, 'creating'), dirs.env);
    t.equal(r.status, 0, 'createRuntime with a bridge + host-local network', { stderr: r.stderr });
    const add = run(rig, dirs, ['cni', 'add', doorNet, netnsPath(doorNs), '--container-id', doorId]);
    t.equal(add.status, 0, 'ADD through the plugin door (oci-netdev with host-local)', { stderr: add.stderr });
    return bundle;
  };
  attach();
  t.same([leases(dirs, hooksNet).length, leases(dirs, doorNet).length], [1, 1], 'one lease on each network');
  t.same(cacheEntries(dirs), [`${doorNet}-${doorId}-eth0`, `${hooksNet}-${hookId}-eth1`].sort(), 'both attachments in the cache');

  reboot(rig, [rig.ctr, doorNs]);
  const gc = run(rig, dirs, ['gc']);
  t.equal(gc.status, 0, 'gc exits 0', { stderr: gc.stderr, stdout: gc.stdout });
  t.same(gc.stdout.split('\n').filter(Boolean).sort(), [
    `${doorId}: removed (network ${doorNet} eth0: cached without a journal, DEL ran)`,
    `${hookId}: removed (network ${hooksNet} eth1: cached without a journal, DEL ran)`,
    'gc: 0 restored, 0 kept, 0 failed, 2 removed',
  ].sort(), 'gc names each attachment it DELed');
  t.same(leases(dirs, hooksNet), [], "the hooks network's lease is free");
  t.same(leases(dirs, doorNet), [], "the plugin door's lease is free");
  t.same(cacheEntries(dirs), [], 'no cache entry is left');
  t.match(run(rig, dirs, ['gc']).stdout, /^gc: nothing to do$/m, 'a second gc has nothing to do');

  // After the reboot: the same container ids, in new namespaces.
  shOk('ip', ['netns', 'add', rig.ctr]);
  shOk('ip', ['netns', 'add', doorNs]);
  const bundle = attach();
  t.same([leases(dirs, hooksNet).length, leases(dirs, doorNet).length], [1, 1], 'the same ids got an address again');
  const p = traced(rig, 'poststop', ociState(hookId, bundle, 'stopped'), dirs.env);
  t.equal(p.status, 0, 'poststop', { stderr: p.stderr });
  t.equal(run(rig, dirs, ['cni', 'del', doorNet, netnsPath(doorNs), '--container-id', doorId]).status, 0, 'DEL through the plugin door');
  t.same([leases(dirs, hooksNet), leases(dirs, doorNet), cacheEntries(dirs), stateEntries(rig.stateDir)], [[], [], [], []], 'nothing left');
});

t.test("gc leaves alone a cached attachment a journal holds, another runtime's, another state dir's, and one whose namespace is still there", async (t) => {
  const { rig, dirs, hooksNet: net, doorNet } = gcRig(t, '10.79.0.0/28', '10.80.0.0/24');
  const hookId = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [net]: { type: 'cni', name: 'eth1' } } });
  const sleeper = spawn('sleep', ['600']);
  t.teardown(() => sleeper.kill());
  t.equal(traced(rig, 'create-runtime', ociState(hookId, bundle, 'creating', { pid: sleeper.pid! }), dirs.env).status, 0, 'a running container of the hooks');
  const otherNs = rig.sb.createNetns('other');
  t.equal(run(rig, dirs, ['cni', 'add', net, netnsPath(otherNs), '--container-id', 'other-runtime']).status, 0,
    "another runtime's attachment on the same network, in the same cache");
  const otherStateDir = rig.sb.tempDir('state');
  const elsewhere = doorNet(otherStateDir);
  const podNs = rig.sb.createNetns('pod');
  t.equal(run(rig, dirs, ['cni', 'add', elsewhere, netnsPath(podNs), '--container-id', 'pod'], otherStateDir).status, 0,
    'a plugin door attachment of another state dir');
  const here = doorNet(rig.stateDir);
  const lostNs = rig.sb.createNetns('lost');
  t.equal(run(rig, dirs, ['cni', 'add', here, netnsPath(lostNs), '--container-id', 'lost']).status, 0, 'one of this state dir');
  // Its journal lost while its namespace lives on.
  const lostDir = stateEntries(rig.stateDir).find((e) => e.endsWith('%3alost%3aeth0'));
  t.ok(lostDir, 'it has a folder in the state dir');
  for (const mp of mountPoints().filter((m) => m.startsWith(join(rig.stateDir, lostDir!) + '/'))) shOk('umount', ['--lazy', mp]);
  rmSync(join(rig.stateDir, lostDir!), { recursive: true });
  const before = cacheEntries(dirs);
  const gc = run(rig, dirs, ['gc']);
  t.equal(gc.status, 0, 'gc exits 0', { stderr: gc.stderr });
  t.same(gc.stdout.split('\n').filter(Boolean), [
    `${hookId}: kept (container process ${sleeper.pid} is running)`,
    `lost: kept (network ${here} eth0: cached without a journal, but its namespace ${netnsPath(lostNs)} is there)`,
    'gc: 0 restored, 2 kept, 0 failed',
  ], 'it names what it keeps, and DELs nothing');
  t.same(cacheEntries(dirs), before, 'every cache entry is still there');
  t.same([leases(dirs, net).length, leases(dirs, elsewhere).length, leases(dirs, here).length], [2, 1, 1], 'and every lease');
  t.equal(traced(rig, 'poststop', ociState(hookId, bundle, 'stopped'), dirs.env).status, 0);
  t.equal(run(rig, dirs, ['cni', 'del', net, netnsPath(otherNs), '--container-id', 'other-runtime']).status, 0);
  t.equal(run(rig, dirs, ['cni', 'del', elsewhere, netnsPath(podNs), '--container-id', 'pod'], otherStateDir).status, 0);
  // The lost one's veth dies with its namespace; then its DEL only releases the lease.
  shOk('ip', ['netns', 'del', lostNs]);
  shOk('ip', ['netns', 'add', lostNs]);
  t.equal(run(rig, dirs, ['cni', 'del', here, '/nonexistent', '--container-id', 'lost']).status, 0);
  t.same([leases(dirs, net), leases(dirs, elsewhere), leases(dirs, here), cacheEntries(dirs)], [[], [], [], []], 'nothing left');
});

t.test('the plugin door passes GC on to an IPAM plugin that speaks 1.1.0, with the valid attachments; not to one that does not', async (t) => {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  writeRecorders(dirs, ['rec-ipam']);
  writeRecorders(dirs, ['rec-old'], ['0.4.0', '1.0.0']);
  const valid = [{ containerID: 'c1', ifname: 'eth0' }];
  const conf = (ipam: object) => ({
    cniVersion: '1.1.0', name: uniqueId('net'), type: 'oci-netdev', kind: 'veth', stateDir: rig.stateDir, ipam, 'cni.dev/valid-attachments': valid,
  });
  const cniRun = { simhost: rig.simhost, containerId: '', ifname: '', path: [join(OCI_NETDEV, '..'), dirs.pluginDir, '/usr/lib/cni'] };
  const speaks = conf({ type: 'rec-ipam' });
  const nodeEnv = { OCI_NETDEV_STATE_DIR: rig.stateDir };
  const out = execPlugin(cniRun, 'GC', 'oci-netdev', speaks, nodeEnv);
  t.equal(out.status, 0, 'GC exits 0', { stderr: out.stderr, stdout: out.stdout });
  const calls = allCalls(dirs);
  t.same(calls.map((c) => c.command), ['VERSION', 'GC'], 'IPAM is asked its versions, then gets GC');
  t.same(calls[1]?.conf, speaks, 'with the config the plugin got, valid attachments included');

  const old = execPlugin(cniRun, 'GC', 'oci-netdev', conf({ type: 'rec-old' }), nodeEnv);
  t.equal(old.status, 0, 'GC exits 0 with an IPAM plugin that knows no GC', { stderr: old.stderr });
  t.same(allCalls(dirs).map((c) => c.command), ['VERSION', 'GC', 'VERSION'], 'which gets no GC');
  const debian = execPlugin(cniRun, 'GC', 'oci-netdev', conf({ type: 'host-local', dataDir: dirs.ipamDir, ranges: [[{ subnet: '10.81.0.0/29' }]] }), nodeEnv);
  t.equal(debian.status, 0, "and with Debian's host-local (CNI up to 1.0.0)", { stderr: debian.stderr });
});

t.test("gc from a namespace that is not the host's DELs nothing of libcni's cache; gc --forget refuses a live attachment; gc in the host's then DELs", async (t) => {
  const { rig, dirs, doorNet: door } = gcRig(t, '10.79.0.0/29', '10.80.0.0/29');
  const doorNet = door(rig.stateDir);
  const doorId = uniqueId('pod');
  const doorNs = rig.sb.createNetns('pod');
  t.equal(run(rig, dirs, ['cni', 'add', doorNet, netnsPath(doorNs), '--container-id', doorId]).status, 0, 'ADD through the plugin door');
  const id = `cni:${doorNet}:${doorId}:eth0`;
  const forget = run(rig, dirs, ['gc', '--forget', id]);
  t.equal(forget.status, 1, 'gc --forget of an attachment whose namespace lives fails', { stdout: forget.stdout });
  t.equal(forget.stderr.trim(), `oci-netdev: container ${id}: not forgotten: its namespace ${netnsPath(doorNs)} is still there; stop it (its poststop restores the devices), then run oci-netdev gc`, 'in one line saying why and what to do');
  t.equal(stateEntries(rig.stateDir).length, 1, 'the record stays');
  // The pod goes without its DEL, and its record is dropped: the cache entry is stale.
  shOk('ip', ['netns', 'del', doorNs]);
  t.equal(run(rig, dirs, ['gc', '--forget', id]).status, 0, 'gc --forget once it is gone');
  t.same(cacheEntries(dirs), [`${doorNet}-${doorId}-eth0`], 'the cache entry stays');

  const wrong = rig.sb.createNetns('wrong');
  const wrongGc = sh(...inSimHost(wrong, [OCI_NETDEV, 'gc', '--state-dir', rig.stateDir]), { env: { ...dirs.env, OCI_NETDEV_STATE_DIR: rig.stateDir } });
  t.equal(wrongGc.status, 1, 'gc from the wrong namespace exits 1', { stdout: wrongGc.stdout, stderr: wrongGc.stderr });
  t.match(wrongGc.stdout, `${doorNet}: failed (network ${doorNet}: its attachments belong to the host's network namespace net:[`, 'naming the network');
  t.match(wrongGc.stdout, `nothing deleted: run oci-netdev gc in the host's network namespace (e.g. nsenter --net=${netnsPath(rig.simhost)} oci-netdev gc)`, 'and where to run gc');
  t.equal(leases(dirs, doorNet).length, 1, 'the lease is kept');
  t.same(cacheEntries(dirs), [`${doorNet}-${doorId}-eth0`], 'and the cache entry');

  const gc = run(rig, dirs, ['gc']);
  t.equal(gc.status, 0, 'gc in the host\'s namespace exits 0', { stdout: gc.stdout, stderr: gc.stderr });
  t.match(gc.stdout, `${doorId}: removed (network ${doorNet} eth0: cached without a journal, DEL ran)`, 'and DELs the stale attachment');
  t.same([leases(dirs, doorNet), cacheEntries(dirs)], [[], []], 'its lease and cache entry are gone');
  shOk('ip', ['netns', 'add', doorNs]); // for the sandbox's teardown
});
