// What a device is, proven against a container (CAP_NET_ADMIN in its netns, here `ip -n <ctr>`):
// look-alikes of devices without a hardware identity (a persistent tap, a vxlan) made at the freed
// ifindex with the same name and MAC; a sibling's device offered for adoption when the runtime
// moved the NIC itself; a created macvlan changed to another mode. Nothing of the container's
// reaches the host under a host name, records are kept where nothing is proven, and status and
// poststop say why.
import t from 'tap';
import type { Test } from 'tap';
import { inSimHost, netnsPath, settledTo, sh, shOk, steady } from '../helpers/sandbox';
import { chainAdd, chainCheck, chainDel, CniList, execPlugin, nicSetup } from '../helpers/cni';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, inCtr, makeRig, nonLoopback, ociState, Rig, stateEntries, traced, userStderr } from '../helpers/netdevices';
import { Netns } from '../../src/netns/netns';
import { getLink, setLink } from '../../src/netlink/link';

interface Link {
  ifname: string;
  ifindex: number;
  address: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}
function linkIn(ns: string, dev: string): Link | undefined {
  const r = sh('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', dev]);
  return r.status === 0 ? (JSON.parse(r.stdout) as Link[])[0] : undefined;
}
const routesIn = (ns: string): string => shOk('ip', ['-n', ns, 'route', 'show']);
const run = (rig: Rig, cmd: string, id: string, bundle: string) =>
  traced(rig, cmd, ociState(id, bundle, cmd === 'poststop' ? 'stopped' : 'creating'));

interface StatusDevice { key: string; state: string; reason?: string; changed?: string }
function statusOf(rig: Rig, id: string): StatusDevice[] {
  const entries = JSON.parse(cli(rig, ['status', '--json']).stdout) as { containerId: string; devices: StatusDevice[] }[];
  return entries.find((e) => e.containerId === id)?.devices ?? [];
}

/** Moves `dev` from netns `from` into netns `to` at ifindex `index` under `name`, as a container can (IFLA_NEW_IFINDEX). */
function moveAt(from: string, dev: string, to: string, index: number, name: string): void {
  using src = Netns.open(netnsPath(from));
  using dst = Netns.open(netnsPath(to));
  using sock = src.socket();
  const link = getLink(sock, { name: dev });
  if (!link) throw new Error(`${dev} is not in ${from}`);
  setLink(sock, link.index, { netnsFd: dst.fd, newIndex: index, name }, { op: 'test move', device: dev });
}

t.test('a persistent tap replaced in the container by its own tap (owner 4242) at the freed ifindex with its name and MAC: not put on the host, the record is kept, status says why', async (t) => {
  const rig = makeRig(t);
  const tap = uniqueName('tap');
  shOk('ip', ['-n', rig.simhost, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.41/24', 'dev', tap]);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', tap, 'up']);
  shOk('ip', ['-n', rig.simhost, 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.254', 'dev', tap, 'onlink']);
  const hidden = rig.sb.createNetns('own');
  const scratch = rig.sb.createNetns('mk');
  const before = await steady(rig.simhost);
  const tapIndex = linkIn(rig.simhost, tap)!.ifindex;
  const routes = routesIn(rig.simhost);
  const id = uniqueId('idt');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [tap]: { name: 'eth1' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  t.match(userStderr(created.stderr), new RegExp(`WARNING: device ${tap}: a tun device: the kernel reports nothing of it that a container cannot forge`), 'createRuntime warns that it cannot prove the tap at poststop');
  const real = linkIn(rig.ctr, 'eth1')!;

  // The container hides the real tap and makes its own, owned by uid 4242, in its place.
  inCtr(rig, ['link', 'set', 'eth1', 'netns', hidden]);
  shOk('ip', ['-n', scratch, 'tuntap', 'add', 'dev', 'eth1', 'mode', 'tap', 'user', '4242']);
  shOk('ip', ['-n', scratch, 'link', 'set', 'eth1', 'address', real.address]);
  moveAt(scratch, 'eth1', rig.ctr, real.ifindex, 'eth1');
  t.match(linkIn(rig.ctr, 'eth1'), { ifindex: real.ifindex, address: real.address }, 'the look-alike holds the ifindex, name and MAC');

  const st = statusOf(rig, id);
  t.equal(st[0]?.state, 'unproven', 'status does not say the tap is in');
  t.equal(st[0]?.reason, 'a tun device: the kernel reports nothing of it that a container cannot forge (kind, MAC, ifindex, owner, group, flags)', 'status says why');

  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 1, 'poststop fails: nothing proves the device at the ifindex is the tap');
  t.match(userStderr(r.stderr), new RegExp(`device ${tap}: .*tun device.*left in the container's network namespace`), 'and says why');
  t.notOk(linkIn(rig.simhost, tap), 'nothing is on the host under the tap\'s name');
  const { [tap]: _moved, ...rest } = before;
  t.same(await settledTo(rig.simhost, rest), rest, 'the host is otherwise as before: no look-alike, no address');
  t.equal(shOk('ip', ['-n', rig.simhost, 'route', 'show', '198.51.100.0/24']), '', 'nor its route');
  t.match(linkIn(rig.ctr, 'eth1'), { ifindex: real.ifindex }, 'the look-alike stays in the container');
  t.same(stateEntries(rig.stateDir).length, 1, 'the record is kept');
  t.equal(statusOf(rig, id)[0]?.state, 'unproven', 'status still says unproven');

  // An operator who has checked it brings the real tap home at its ifindex: gc then finishes the restore.
  shOk('ip', ['-n', hidden, 'link', 'set', 'eth1', 'netns', rig.simhost]);
  t.equal(linkIn(rig.simhost, 'eth1')?.ifindex, tapIndex, 'the real tap is back on the host at its own ifindex');
  const gc = cli(rig, ['gc']);
  t.match(gc.stdout, `${id}: restored`, 'gc restores it', { stderr: gc.stderr });
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before');
  t.equal(routesIn(rig.simhost), routes, 'with its routes');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test("a tap the container hides in a namespace of its own, under another name: not lost, its record is kept, status says why; back in the container it is unproven, and an operator's move home lets gc finish", async (t) => {
  const rig = makeRig(t);
  const tap = uniqueName('tap');
  shOk('ip', ['-n', rig.simhost, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.43/24', 'dev', tap]);
  const hidden = rig.sb.createNetns('own');
  const before = await steady(rig.simhost);
  const tapIndex = linkIn(rig.simhost, tap)!.ifindex;
  const id = uniqueId('idt');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [tap]: { name: 'eth1' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  const inside = linkIn(rig.ctr, 'eth1')!.ifindex;
  inCtr(rig, ['link', 'set', 'eth1', 'netns', hidden, 'name', 'quiet0']);
  t.same(nonLoopback(rig.ctr), [], 'the container holds nothing at the tap\'s ifindex');

  const unprovable = 'a tun device: the kernel reports nothing of it that a container cannot forge (kind, MAC, ifindex, owner, group, flags)';
  t.same(statusOf(rig, id).map((d) => [d.state, d.reason]),
    [['missing', `${unprovable}; not in the container nor on the host, and nothing the kernel reports can show it gone: it may be in a namespace the container made`]],
    'status says it is missing, and why it cannot be called lost');
  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 1, 'poststop fails');
  t.same(userStderr(r.stderr).split('\n').filter(Boolean), [
    `oci-netdev: container ${id}: device ${tap}: not found in the container nor on the host (ifindex ${inside} in the container, original name ${tap}); ` +
    `it may be in another namespace, and ${unprovable}, so nothing shows it gone; its record is kept (state kept; run oci-netdev gc to retry)`,
  ], 'naming the tap, not calling it lost');
  t.same(stateEntries(rig.stateDir).length, 1, 'the record is kept');
  t.notOk(linkIn(rig.simhost, tap), "nothing is on the host under the tap's name");

  // The container gives it back: it is there, but unproven, so it still does not come home by itself.
  shOk('ip', ['-n', hidden, 'link', 'set', 'quiet0', 'netns', rig.ctr, 'name', 'eth1']);
  t.same(statusOf(rig, id).map((d) => d.state), ['unproven'], 'back in the container it is unproven');
  t.equal(run(rig, 'poststop', id, bundle).status, 1, 'poststop still leaves it in the container');
  // An operator who has checked it brings it home at its ifindex: gc then finishes the restore.
  inCtr(rig, ['link', 'set', 'eth1', 'netns', rig.simhost]);
  t.equal(linkIn(rig.simhost, 'eth1')?.ifindex, tapIndex, 'the tap is back on the host at its own ifindex');
  const gc = cli(rig, ['gc']);
  t.match(gc.stdout, `${id}: restored`, 'gc restores it', { stderr: gc.stderr });
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('a tap moved by a createRuntime that then fails comes home with the rollback: the container has not run yet', async (t) => {
  const rig = makeRig(t);
  // IPv6 is off for devices arriving in the container: the NIC's IPv6 address fails there, after the tap moved.
  shOk(...inSimHost(rig.ctr, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']));
  const [tap, nic, peer] = [uniqueName('tap'), uniqueName('nic'), uniqueName('peer')];
  shOk('ip', ['-n', rig.simhost, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.41/24', 'dev', tap]);
  rig.sb.createVethPair(rig.simhost, nic, peer);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '2001:db8:41::1/64', 'dev', nic, 'nodad']);
  const before = await steady(rig.simhost);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [tap]: { name: 'eth1' }, [nic]: { name: 'eth2' } } });
  const r = run(rig, 'create-runtime', uniqueId('idt'), bundle);
  t.equal(r.status, 1, 'createRuntime fails', { stderr: userStderr(r.stderr) });
  t.same(await settledTo(rig.simhost, before), before, 'the tap is back under its name with its address, and the NIC too');
  t.same(nonLoopback(rig.ctr), [], 'nothing left in the container');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('a vxlan replaced in the container by its own vxlan (another VNI) at the freed ifindex with its name and MAC: not put on the host, the record is kept, and the real one comes home once it is back', async (t) => {
  const rig = makeRig(t);
  const [under, underPeer, vx] = [uniqueName('und'), uniqueName('undp'), uniqueName('vx')];
  rig.sb.createVethPair(rig.simhost, under, underPeer);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.1/24', 'dev', under]);
  shOk('ip', ['-n', rig.simhost, 'link', 'add', vx, 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'local', '192.0.2.1', 'dev', under]);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '10.42.0.1/24', 'dev', vx]);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', vx, 'up']);
  shOk('ip', ['-n', rig.simhost, 'route', 'add', '198.51.100.0/24', 'via', '10.42.0.254', 'dev', vx]);
  const hidden = rig.sb.createNetns('own');
  const before = await steady(rig.simhost);
  const routes = routesIn(rig.simhost);
  const id = uniqueId('idt');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [vx]: { name: 'eth1' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  const real = linkIn(rig.ctr, 'eth1')!;

  inCtr(rig, ['link', 'set', 'eth1', 'netns', hidden]);
  inCtr(rig, ['link', 'add', 'eth1', 'index', String(real.ifindex), 'address', real.address, 'type', 'vxlan', 'id', '43', 'dstport', '4789']);
  t.match(linkIn(rig.ctr, 'eth1'), { ifindex: real.ifindex, address: real.address }, 'the look-alike holds the ifindex, name and MAC');

  const st = statusOf(rig, id);
  t.equal(st[0]?.state, 'missing', 'status does not say the vxlan is in');
  t.match(st[0]?.reason, `ifindex ${real.ifindex} in the container holds eth1, which is not the device oci-netdev moved there`, 'status says why');

  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 1, 'poststop fails: the vxlan is not where it can be proven');
  t.notOk(linkIn(rig.simhost, vx), "nothing is on the host under the vxlan's name");
  const { [vx]: _moved, ...rest } = before;
  t.same(await settledTo(rig.simhost, rest), rest, 'the host is otherwise as before');
  t.equal(shOk('ip', ['-n', rig.simhost, 'route', 'show', '198.51.100.0/24']), '', 'without its route');
  t.equal(linkIn(rig.ctr, 'eth1')?.linkinfo?.info_data?.id, 43, 'the look-alike stays in the container');
  t.same(stateEntries(rig.stateDir).length, 1, 'the record is kept');

  // The container gives the real vxlan back, under another name: the next gc brings it home.
  shOk('ip', ['-n', hidden, 'link', 'set', 'eth1', 'name', uniqueName('back'), 'netns', rig.ctr]);
  const gc = cli(rig, ['gc']);
  t.match(gc.stdout, `${id}: restored`, 'gc restores the real vxlan', { stderr: gc.stderr });
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before: VNI 42 under its name, with its address and route');
  t.equal(linkIn(rig.simhost, vx)?.linkinfo?.info_data?.id, 42, 'the real vxlan is home');
  t.equal(routesIn(rig.simhost), routes, 'with its routes');
  t.equal(linkIn(rig.ctr, 'eth1')?.linkinfo?.info_data?.id, 43, "the container's vxlan is left to it");
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

/** The line createRuntime refuses an adoption with. */
const notAdopted = (key: string, name: string, what: string): string =>
  `oci-netdev: device ${key}: no such device in the host network namespace, and ${name} in the container cannot be shown to be it: ${what}, ` +
  `and nothing the kernel reports of it ties it to the host's ${key} (only hardware, whose bus device no container can make, is adopted); nothing is adopted`;

/** createRuntime and poststop of `netDevices` under a runtime that moved devices itself: refused, one line, nothing changes anywhere. */
async function refusedAdoption(t: Test, rig: Rig, netDevices: Record<string, object>, line: string): Promise<void> {
  const hostBefore = await steady(rig.simhost);
  const ctrBefore = await steady(rig.ctr);
  const id = uniqueId('idt');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices });
  const r = run(rig, 'create-runtime', id, bundle);
  t.equal(r.status, 1, 'createRuntime is refused');
  t.same(userStderr(r.stderr).split('\n').filter(Boolean), [line], 'in one line naming the device and why');
  t.same(stateEntries(rig.stateDir), [], 'no state');
  const p = run(rig, 'poststop', id, bundle);
  t.equal(p.status, 0, 'poststop of the refused container exits 0', { stderr: userStderr(p.stderr) });
  t.same(await settledTo(rig.simhost, hostBefore), hostBefore, 'nothing of the pod reaches the host');
  t.same(await settledTo(rig.ctr, ctrBefore), ctrBefore, 'the pod is as it was');
}

t.test('adoption under a runtime that moves netDevices itself: a veth stand-in for the NIC, moved and renamed by the runtime, is refused: nothing ties it to the NIC\'s name', async (t) => {
  const rig = makeRig(t);
  const [nic, peer] = [uniqueName('nic'), uniqueName('peer')];
  rig.sb.createVethPair(rig.simhost, nic, peer);
  // What runc 1.4 does before createRuntime: move and rename.
  shOk('ip', ['-n', rig.simhost, 'link', 'set', nic, 'netns', rig.ctr, 'name', 'net1']);
  await refusedAdoption(t, rig, { [nic]: { name: 'net1' } }, notAdopted(nic, 'net1', 'a veth device'));
  t.notOk(linkIn(rig.simhost, nic), "nothing under the NIC's name on the host");
  t.ok(linkIn(rig.ctr, 'net1'), 'the stand-in stays in the pod');
});

t.test("adoption: the pod's own CNI eth0 (a veth whose peer is on the host) named as the target of a NIC that is elsewhere is refused, and nothing changes on the host", async (t) => {
  const rig = makeRig(t);
  // The pod's eth0, as a CNI bridge or ptp plugin makes it: a veth whose peer stays on the host.
  const [podPeer, podTmp] = [uniqueName('vpod'), uniqueName('tmp')];
  rig.sb.createVethPair(rig.simhost, podPeer, podTmp);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', podTmp, 'netns', rig.ctr, 'name', 'eth0']);
  inCtr(rig, ['addr', 'add', '128.0.0.1/1', 'dev', 'eth0']);
  inCtr(rig, ['link', 'set', 'eth0', 'up']);
  // The named NIC is not on the host, nor in the pod: it is in a namespace of its own.
  const [nic, peer] = [uniqueName('nic'), uniqueName('peer')];
  rig.sb.createVethPair(rig.simhost, nic, peer);
  const away = rig.sb.createNetns('away');
  shOk('ip', ['-n', rig.simhost, 'link', 'set', nic, 'netns', away]);
  await refusedAdoption(t, rig, { [nic]: { name: 'eth0' } }, notAdopted(nic, 'eth0', 'a veth device'));
  t.notOk(linkIn(rig.simhost, nic), "nothing under the NIC's name on the host");
  t.equal(shOk('ip', ['-n', rig.simhost, 'route', 'show', '128.0.0.0/1']), '', 'no route to 128.0.0.0/1 on the host');
  t.ok(linkIn(rig.ctr, 'eth0'), "the pod keeps its eth0");
  t.ok(linkIn(away, nic), 'the NIC is where it was');
});

t.test("adoption under a runtime that moves netDevices itself: a sibling's veth with the NIC's MAC under the target name is refused, nothing of the pod reaches the host", async (t) => {
  const rig = makeRig(t);
  const [nic, peer] = [uniqueName('nic'), uniqueName('peer')];
  rig.sb.createVethPair(rig.simhost, nic, peer);
  const mac = linkIn(rig.simhost, nic)!.address;
  // The sibling got there first: net1 is a veth of the pod's with the NIC's MAC and half of IPv4.
  const sibPeer = uniqueName('sib');
  inCtr(rig, ['link', 'add', 'net1', 'address', mac, 'type', 'veth', 'peer', 'name', sibPeer]);
  inCtr(rig, ['addr', 'add', '128.0.0.1/1', 'dev', 'net1']);
  inCtr(rig, ['link', 'set', 'net1', 'up']);
  // What runc 1.4 does: the move succeeds, the rename to the taken net1 fails, the NIC stays under its old name.
  shOk('ip', ['-n', rig.simhost, 'link', 'set', nic, 'netns', rig.ctr]);
  const hostBefore = await steady(rig.simhost);
  const ctrBefore = await steady(rig.ctr);

  const id = uniqueId('idt');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'net1' } } });
  const r = run(rig, 'create-runtime', id, bundle);
  t.equal(r.status, 1, 'createRuntime is refused');
  const lines = userStderr(r.stderr).split('\n').filter(Boolean);
  t.equal(lines.length, 1, 'one line', { stderr: userStderr(r.stderr) });
  t.equal(lines[0], notAdopted(nic, 'net1', 'a veth device'), 'naming the device and why');
  t.same(stateEntries(rig.stateDir), [], 'no state');

  const p = run(rig, 'poststop', id, bundle);
  t.equal(p.status, 0, 'poststop of the refused container exits 0', { stderr: userStderr(p.stderr) });
  t.same(await settledTo(rig.simhost, hostBefore), hostBefore, 'nothing of the pod reaches the host');
  t.notOk(linkIn(rig.simhost, nic), 'nothing under the NIC\'s name on the host');
  t.equal(shOk('ip', ['-n', rig.simhost, 'route', 'show', '128.0.0.0/1']), '', 'no route to 128.0.0.0/1 on the host');
  t.same(await settledTo(rig.ctr, ctrBefore), ctrBefore, 'the pod is as it was');
  t.same(nonLoopback(rig.ctr).sort(), [nic, 'net1', sibPeer].sort());
});

t.test('a created macvlan changed by the container to mode source with the gateway MAC: status and poststop report it, and it is deleted', async (t) => {
  const rig = makeRig(t);
  const [master, masterPeer] = [uniqueName('mst'), uniqueName('mstp')];
  rig.sb.createVethPair(rig.simhost, master, masterPeer);
  const before = await steady(rig.simhost);
  const id = uniqueId('idt');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { mv0: { type: 'macvlan', master, name: 'eth3' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  t.same(statusOf(rig, id).map((d) => d.changed), [undefined], 'nothing changed yet');

  const gateway = linkIn(rig.simhost, masterPeer)!.address;
  inCtr(rig, ['link', 'set', 'eth3', 'type', 'macvlan', 'mode', 'source']);
  inCtr(rig, ['link', 'set', 'eth3', 'type', 'macvlan', 'macaddr', 'add', gateway]);
  t.equal(linkIn(rig.ctr, 'eth3')?.linkinfo?.info_data?.mode, 'source', 'the kernel let the container change the mode');

  t.same(statusOf(rig, id).map((d) => [d.state, d.changed]), [['in', 'mode source (created as bridge), 1 source MAC']], 'status reports the change');
  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 0, 'poststop exits 0', { stderr: userStderr(r.stderr) });
  t.match(userStderr(r.stderr), /WARNING: device mv0: the container changed macvlan eth3 to mode source \(created as bridge\), 1 source MAC; deleted/, 'poststop reports it');
  t.same(nonLoopback(rig.ctr), [], 'the macvlan is deleted');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');

  // vepa and private too.
  for (const mode of ['vepa', 'private']) {
    const id2 = uniqueId('idt');
    t.equal(run(rig, 'create-runtime', id2, bundle).status, 0, `${mode}: createRuntime exits 0`);
    inCtr(rig, ['link', 'set', 'eth3', 'type', 'macvlan', 'mode', mode]);
    t.same(statusOf(rig, id2).map((d) => d.changed), [`mode ${mode} (created as bridge)`], `${mode}: status reports it`);
    const r2 = run(rig, 'poststop', id2, bundle);
    t.match(userStderr(r2.stderr), new RegExp(`WARNING: device mv0: the container changed macvlan eth3 to mode ${mode} \\(created as bridge\\); deleted`), `${mode}: poststop reports it`);
    t.same(stateEntries(rig.stateDir), [], `${mode}: no state left`);
  }
});

t.test('a tap attached by the CNI plugin: CHECK passes, DEL warns why and keeps the record until an operator brings the tap home', async (t) => {
  const s = nicSetup(t);
  const tap = uniqueName('tap');
  shOk('ip', ['-n', s.rig.simhost, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  const before = await steady(s.rig.simhost);
  const tapIndex = linkIn(s.rig.simhost, tap)!.ifindex;
  const list: CniList = { cniVersion: '1.0.0', name: uniqueId('net'), plugins: [{ type: 'oci-netdev', device: tap, stateDir: s.rig.stateDir }] };
  const add = chainAdd(list, s.run);
  t.notOk(add.failed, 'ADD attaches the tap', { failed: add.failed });
  t.notOk(chainCheck(list, s.run, add.result).failed, 'CHECK passes: the tap is there as far as anything can tell');

  const del = execPlugin(s.run, 'DEL', 'oci-netdev', { cniVersion: list.cniVersion, name: list.name, ...list.plugins[0], prevResult: add.result });
  t.equal(del.status, 0, 'DEL succeeds, as CNI asks, so that the chain goes on');
  t.match(del.stderr, new RegExp(`warning: .*device ${tap}: a tun device: .*left in the container's network namespace`), 'and warns why the tap stays');
  t.same(stateEntries(s.rig.stateDir).length, 1, 'the record is kept');
  t.notOk(linkIn(s.rig.simhost, tap), 'nothing is on the host under its name');

  shOk('ip', ['-n', s.rig.ctr, 'link', 'set', 'eth0', 'netns', s.rig.simhost]);
  t.equal(linkIn(s.rig.simhost, 'eth0')?.ifindex, tapIndex, 'an operator moves it home at its ifindex');
  t.notOk(chainDel(list, s.run, add.result).failed, 'DEL then finishes the restore');
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});
