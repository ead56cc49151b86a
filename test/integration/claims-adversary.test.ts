// Adversary tests of the claims (src/state/claims.ts claims files, src/engine/attach.ts
// attachPlanned): a device's state read ahead while another container still held it must not be
// what a later createRuntime records, once that container let it go; and a held device is refused
// in every role a field can give it (moved, adopted, master, bridge, selectors, CDI, CNI).
import t from 'tap';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { StateDir } from '../../src/state/statedir';
import type { Journal } from '../../src/state/statedir';
import { ok, refused } from '../helpers/assert';
import { bundleFor, createRuntime, creating, hostNic, poststop, startHookIn } from '../helpers/host';
import { OCI_NETDEV, runHook } from '../helpers/hook';
import { cniPath, CniRun, execPlugin } from '../helpers/cni';
import { cniDirs, writeConflist } from '../helpers/cni-networks';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, ipDetails, makeRig, nonLoopback } from '../helpers/netdevices';
import { inSimHost, netnsPath, nsSnapshot, sh, shOk, sleep } from '../helpers/sandbox';

/** A journal of container `id` that holds host device `name` (ifindex `index`), nothing started. */
function holding(id: string, name: string, index: number): Journal {
  return {
    containerId: id, phase: 'detaching', createdAt: new Date().toISOString(), netnsPath: '/nonexistent', netnsDev: 1, netnsIno: 2,
    plan: { group: 0x10001, devices: [{
      key: name, kind: 'host', targetName: name, identity: { kind: 'veth', permanentMac: null, parentBus: null, parentDev: null },
      containerIndex: index, adopted: false, containerAddresses: [],
      original: { index, name, mtu: 1500, mac: null, up: true, alias: '', group: 0, altNames: [], addresses: [] },
    }], steps: [{ device: name, do: 'moveIn', undo: 'moveOut' }] },
    started: 0,
  };
}

/** Whether process `pid` has `file` open now. */
function hasOpen(pid: number, file: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

const routesOf = (ns: string, dev: string): string => shOk('ip', ['-n', ns, 'route', 'show', 'dev', dev]);

t.test('a device read ahead while another container was bringing it home: its routes, restored after the read, are not lost', async (t) => {
  const rig = makeRig(t);
  const nic = hostNic(rig);
  const index = Number(shOk('ip', ['-n', rig.simhost, '-o', 'link', 'show', nic]).split(':')[0]);
  const store = new StateDir(rig.stateDir);
  // Container A holds the NIC and is bringing it home (its poststop): the NIC is on the host, its
  // routes not back yet. Another hook holds the claims lock, so B reads the NIC's state ahead.
  const a = uniqueId('hold');
  store.lockContainer(a).release();
  store.createJournal(holding(a, nic, index));
  const claims = store.lockClaims();
  t.teardown(() => claims.release());
  const lockFile = join(rig.stateDir, 'claims.lock');
  const b = uniqueId('ctr');
  const bundle = bundleFor(rig, { [nic]: { name: 'eth5' } });
  const hook = startHookIn(rig, 'create-runtime', creating(b, bundle));
  t.teardown(async () => {
    if (hasOpen(hook.pid, lockFile)) process.kill(hook.pid, 'SIGKILL');
    await hook.done;
  });
  // B waits for the claims lock once it has read ahead (it keeps the lock file open while it waits).
  for (let seen = 0, polls = 0; seen < 2; polls++) {
    if (polls === 600) throw new Error('B never waited for the claims lock');
    await sleep(100);
    seen = hasOpen(hook.pid, lockFile) ? seen + 1 : 0;
  }
  // A's poststop finishes: the NIC's route is back, and A's state is gone. Then the lock is free.
  shOk('ip', ['-n', rig.simhost, 'route', 'add', '10.77.1.0/24', 'dev', nic]);
  const route = routesOf(rig.simhost, nic);
  t.match(route, /10\.77\.1\.0\/24/, 'the route A restored is on the NIC');
  store.remove(a);
  claims.release();
  ok(t, await hook.done, 'B\'s createRuntime');
  ok(t, poststop(rig, b, bundle), 'B\'s poststop');
  t.equal(routesOf(rig.simhost, nic), route, 'B\'s poststop brings the NIC home with the route it had when B took it');
});

t.test("a veth's host end renamed on the host is still held by its container: another container asking for it by its new name is refused", async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const before = nsSnapshot(rig.simhost);
  const hostEnd = uniqueName('veth');
  const a = uniqueId('ctr');
  const bundleA = bundleFor(rig, { [hostEnd]: { type: 'veth', name: 'eth1' } });
  ok(t, createRuntime(rig, a, bundleA), 'A\'s createRuntime');
  // Renamed on the host (an admin, a udev rule): the name A's claims hold is gone.
  const renamed = uniqueName('ren');
  shOk('ip', ['-n', rig.simhost, 'link', 'set', hostEnd, 'name', renamed]);
  const ctr2 = rig.sb.createNetns('ctr2');
  const b = uniqueId('ctr');
  const bundleB = bundleFor(rig, { [renamed]: { name: 'net0' } }, netnsPath(ctr2));
  refused(t, createRuntime(rig, b, bundleB), `oci-netdev: device ${renamed} is held by container ${a}`, 'B asking for the renamed NIC');
  t.same(nonLoopback(ctr2), [], 'nothing reached B\'s container');
  ok(t, poststop(rig, a, bundleA), 'A\'s poststop');
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
});

t.test('a device another container holds, moved or made, is refused in every role a field can give it, naming the holder', async (t) => {
  const rig = makeRig(t);
  const hostEnd = uniqueName('veth');
  const nic = hostNic(rig);
  const a = uniqueId('ctr');
  const bundleA = bundleFor(rig, { [hostEnd]: { type: 'veth', name: 'eth1' }, [nic]: { name: 'net1' } });
  ok(t, createRuntime(rig, a, bundleA), "A's createRuntime");
  const hostEndMac = ipDetails(rig.simhost)[hostEnd].address;
  const after = nsSnapshot(rig.simhost);
  const ctr2 = rig.sb.createNetns('ctr2');
  const held = (device: string) => `oci-netdev: device ${device} is held by container ${a}`;
  const named = (entry: string, role: string, device: string) => `oci-netdev: device ${entry}: ${role} ${device} is held by container ${a}`;
  const unchanged = (what: string) => {
    t.same(nsSnapshot(rig.simhost), after, `${what}: the host is as A left it`);
    t.same(nonLoopback(ctr2), [], `${what}: nothing reached B's container`);
    t.same(readdirSync(rig.stateDir).filter((f) => !f.endsWith('.lock') && f !== 'released' && f !== 'host-netns').length, 1, `${what}: only A's state`);
  };

  const hookCases: [string, Record<string, object>, string][] = [
    ['a moved NIC, moved again', { [nic]: {} }, held(nic)],
    ["A's veth host end, moved", { [hostEnd]: {} }, held(hostEnd)],
    ["A's veth host end, made again", { [hostEnd]: { type: 'veth', name: 'eth2' } }, held(hostEnd)],
    ["A's veth host end as a macvlan master", { mv0: { type: 'macvlan', master: hostEnd, name: 'eth2' } }, named('mv0', 'macvlan master', hostEnd)],
    ["A's moved NIC as a macvlan master", { mv0: { type: 'macvlan', master: nic, name: 'eth2' } }, named('mv0', 'macvlan master', nic)],
    ["A's veth host end as the bridge of a veth host end", { vb0: { type: 'veth', name: 'eth2', hostBridge: hostEnd } }, named('vb0', 'hostBridge', hostEnd)],
    ["A's veth host end by hwaddr", { sel: { hwaddr: hostEndMac, name: 'eth2' } }, held(hostEnd)],
  ];
  for (const [what, devices, message] of hookCases) {
    refused(t, createRuntime(rig, uniqueId('ctr'), bundleFor(rig, devices, netnsPath(ctr2))), message, what);
    unchanged(what);
  }

  // Adopted: a sibling sharing A's namespace asks for a key not on the host under the name A's device has there.
  const gone = uniqueName('gone');
  const sibling = createRuntime(rig, uniqueId('ctr'), bundleFor(rig, { [gone]: { name: 'eth1' } }));
  refused(t, sibling, `oci-netdev: device ${gone}: no such device in the host network namespace, and eth1 in the container is held by container ${a}`, 'adopted');
  t.same(nsSnapshot(rig.simhost), after, 'adopted: the host is as A left it');

  // CDI: a --device argument is an entry of linux.netDevices.
  const cdi = sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', rig.stateDir, 'create-runtime', '--device', `${hostEnd}:name=net2`]),
    { input: JSON.stringify(creating(uniqueId('ctr'), bundleFor(rig, {}, netnsPath(ctr2)))) });
  refused(t, cdi, held(hostEnd), 'a CDI --device');
  unchanged('a CDI --device');

  // A CNI network of the hooks whose plugin names A's device (a conflist root wrote, chosen by the request).
  const dirs = cniDirs(rig.sb);
  const networks: [string, object, string][] = [
    ['macvlan', { type: 'macvlan', master: hostEnd }, `plugin macvlan's master ${hostEnd} is held by container ${a}`],
    ['bridge', { type: 'bridge', bridge: hostEnd }, `plugin bridge's bridge ${hostEnd} is held by container ${a}`],
    ['host-device', { type: 'host-device', device: nic }, `plugin host-device's device ${nic} is held by container ${a}`],
    ['host-device by hwaddr', { type: 'host-device', hwaddr: hostEndMac }, `plugin host-device's hwaddr ${hostEndMac} picks ${hostEnd} is held by container ${a}`],
  ];
  for (const [what, plugin, message] of networks) {
    const net = uniqueId('net');
    writeConflist(dirs, net, [plugin]);
    const r = runHook(rig.simhost, 'create-runtime', creating(uniqueId('ctr'), bundleFor(rig, { [net]: { type: 'cni' } }, netnsPath(ctr2))), { stateDir: rig.stateDir, env: dirs.env });
    refused(t, r, `oci-netdev: device ${net}: ${message}`, `a CNI network: ${what}`);
    unchanged(`a CNI network: ${what}`);
  }

  // The CNI plugin: every key of its network config that names a host device.
  const run: CniRun = { simhost: rig.simhost, containerId: uniqueId('ctr'), netns: netnsPath(ctr2), ifname: 'eth0', path: cniPath(rig.sb, rig.stateDir) };
  const confs: [string, object, RegExp][] = [
    ['device', { device: nic }, new RegExp(`device ${nic} is held by container ${a}$`)],
    ['hwaddr', { hwaddr: hostEndMac }, new RegExp(`device ${hostEnd} is held by container ${a}$`)],
    ['veth hostName', { kind: 'veth', hostName: hostEnd }, new RegExp(`device ${hostEnd} is held by container ${a}$`)],
    ['macvlan master', { kind: 'macvlan', master: hostEnd }, new RegExp(`macvlan master ${hostEnd} is held by container ${a}$`)],
  ];
  for (const [what, conf, msg] of confs) {
    const out = execPlugin(run, 'ADD', 'oci-netdev', { cniVersion: '1.0.0', name: uniqueId('net'), type: 'oci-netdev', ...conf });
    t.match(out.json, { code: 11, msg }, `the CNI plugin's ${what}: code 11 naming the holder`);
    unchanged(`the CNI plugin's ${what}`);
  }

  ok(t, poststop(rig, a, bundleA), "A's poststop");
});

/** The altnames `dev` has in netns `ns`. */
const altNamesOf = (ns: string, dev: string): string[] =>
  (JSON.parse(shOk('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])) as { altnames?: string[] }[])[0].altnames ?? [];

t.test("a held NIC's altnames are held with it while it is away: no request takes one, nor another container's fallback name", async (t) => {
  const rig = makeRig(t);
  const nic = hostNic(rig);
  // Short, so that its first fallback name is its name and -r0, under the kernel's 15 bytes.
  const other = uniqueName('o');
  rig.sb.createVethPair(rig.simhost, other, uniqueName('peer'));
  // An altname that is exactly the fallback name other's poststop would pick first.
  const alt = `${other}-r0`;
  shOk('ip', ['-n', rig.simhost, 'link', 'property', 'add', 'dev', nic, 'altname', alt]);
  const before = nsSnapshot(rig.simhost);
  const a = uniqueId('ctr');
  const bundleA = bundleFor(rig, { [nic]: { name: 'net1' } });
  ok(t, createRuntime(rig, a, bundleA), "A's createRuntime");
  const after = nsSnapshot(rig.simhost);
  const ctr2 = rig.sb.createNetns('ctr2');
  const cases: [string, Record<string, object>][] = [
    ['a veth host end under the altname', { [alt]: { type: 'veth', name: 'eth2' } }],
    ['a host device by the altname', { [alt]: { name: 'eth2' } }],
  ];
  for (const [what, devices] of cases) {
    refused(t, createRuntime(rig, uniqueId('ctr'), bundleFor(rig, devices, netnsPath(ctr2))), `oci-netdev: device ${alt} is held by container ${a}`, what);
    t.same(nsSnapshot(rig.simhost), after, `${what}: the host is as A left it`);
  }

  // B holds other; the host takes its name meanwhile, so B's poststop brings it home under a fallback.
  const ctr3 = rig.sb.createNetns('ctr3');
  const b = uniqueId('ctr');
  const bundleB = bundleFor(rig, { [other]: { name: 'eth1' } }, netnsPath(ctr3));
  ok(t, createRuntime(rig, b, bundleB), "B's createRuntime");
  shOk('ip', ['-n', rig.simhost, 'link', 'add', other, 'type', 'veth', 'peer', 'name', uniqueName('tp')]);
  const stopB = poststop(rig, b, bundleB);
  t.equal(stopB.status, 0, "B's poststop exits 0", { stderr: stopB.stderr });
  t.match(stopB.stderr, `name ${other} is taken on the host by another device; restored as ${other}-r1`, "B's device skips A's altname");
  t.not(sh('ip', ['-n', rig.simhost, 'link', 'show', 'dev', alt]).status, 0, 'no device on the host has the altname as a name or altname');

  ok(t, poststop(rig, a, bundleA), "A's poststop");
  t.same(altNamesOf(rig.simhost, nic), [alt], 'A\'s NIC is home with its altname');
  shOk('ip', ['-n', rig.simhost, 'link', 'del', other]);
  ok(t, cli(rig, ['gc']), 'gc gives B\'s device its name back');
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
});
