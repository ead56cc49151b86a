// oci-netdev as a CNI plugin creating devices (kind veth with host-local IPAM, kind macvlan with
// static IPAM), and the verbs that look at many attachments: GC with cni.dev/valid-attachments,
// STATUS.
import t, { Test } from 'tap';
import { chainAdd, chainCheck, chainDel, CniList, CniRun, cniPath, execPlugin, reservations } from '../helpers/cni';
import { uniqueId, uniqueName } from '../helpers/names';
import { ipDetails, makeRig, Rig, stateEntries } from '../helpers/netdevices';
import { netnsPath, settledTo, shOk, steady } from '../helpers/sandbox';

function runFor(rig: Rig, path: string[], ctr = rig.ctr, ifname = 'eth0'): CniRun {
  return { simhost: rig.simhost, containerId: uniqueId('ctr'), netns: netnsPath(ctr), ifname, path };
}

function hostLocal(dataDir: string): object {
  return { type: 'host-local', dataDir, ranges: [[{ subnet: '10.124.0.0/24' }]] };
}

const v4 = (ns: string, dev: string) => (ipDetails(ns)[dev]?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);

/** ADD, CHECK, DEL, DEL again of a one-plugin list; returns the ADD result for more checks. */
async function lifecycle(t: Test, rig: Rig, list: CniList, run: CniRun, inspect: (result: Record<string, unknown>) => void): Promise<void> {
  const before = await steady(rig.simhost);
  const add = chainAdd(list, run);
  t.notOk(add.failed, 'ADD', { failed: add.failed });
  inspect(add.result!);
  t.notOk(chainCheck(list, run, add.result).failed, 'CHECK passes');
  t.notOk(chainDel(list, run, add.result).failed, 'DEL');
  t.same(Object.keys(ipDetails(rig.ctr)), ['lo'], 'nothing left in the container');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.notOk(chainDel(list, run, add.result).failed, 'DEL again succeeds');
}

t.test('kind veth: a host end with a stable default name, the container end as CNI_IFNAME', async (t) => {
  const rig = makeRig(t);
  const ipamDir = rig.sb.tempDir('ipam');
  const list: CniList = {
    cniVersion: '1.1.0', name: uniqueId('net'),
    plugins: [{ type: 'oci-netdev', kind: 'veth', mtu: 1400, stateDir: rig.stateDir, ipam: hostLocal(ipamDir) }],
  };
  const run = runFor(rig, cniPath(rig.sb, rig.stateDir));
  const hostBefore = Object.keys(ipDetails(rig.simhost));
  await lifecycle(t, rig, list, run, (result) => {
    const added = Object.keys(ipDetails(rig.simhost)).filter((n) => !hostBefore.includes(n));
    t.equal(added.length, 1, 'one host end on the host');
    t.match(added[0], /^veth[0-9a-f]{11}$/, 'named from the container id and ifname');
    const eth0 = ipDetails(rig.ctr).eth0;
    t.equal(eth0?.linkinfo?.info_kind, 'veth', 'the container has a veth eth0');
    t.equal(eth0?.mtu, 1400, 'with the MTU asked for');
    t.same(v4(rig.ctr, 'eth0'), ['10.124.0.2/24'], 'and the IPAM address');
    t.match(result, { cniVersion: '1.1.0', interfaces: [{ name: 'eth0', mac: eth0?.address, mtu: 1400, sandbox: run.netns }], ips: [{ address: '10.124.0.2/24', interface: 0 }] }, 'the result says so');
    t.same(reservations(ipamDir, list.name), ['10.124.0.2'], 'host-local holds the address');
  });
  t.same(reservations(ipamDir, list.name), [], 'the reservation is released');
});

t.test('kind macvlan on a host master with static IPAM, the MAC from CNI_ARGS, a 0.4.0 result', async (t) => {
  const rig = makeRig(t);
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, master, uniqueName('peer'));
  const ipam = { type: 'static', addresses: [{ address: '10.124.0.2/24', gateway: '10.124.0.1' }], routes: [{ dst: '0.0.0.0/0' }] };
  const list: CniList = {
    cniVersion: '0.4.0', name: uniqueId('net'),
    plugins: [{ type: 'oci-netdev', kind: 'macvlan', master, mode: 'bridge', stateDir: rig.stateDir, ipam }],
  };
  const run = { ...runFor(rig, cniPath(rig.sb, rig.stateDir), rig.ctr, 'net1'), args: 'IgnoreUnknown=true;MAC=02:00:5e:00:53:99;K8S_POD_NAME=x' };
  await lifecycle(t, rig, list, run, (result) => {
    const net1 = ipDetails(rig.ctr).net1;
    t.equal(net1?.linkinfo?.info_kind, 'macvlan', 'the container has a macvlan net1');
    t.equal(net1?.address, '02:00:5e:00:53:99', 'with the MAC of CNI_ARGS');
    t.same(v4(rig.ctr, 'net1'), ['10.124.0.2/24'], 'and the IPAM address');
    t.match(shOk('ip', ['-n', rig.ctr, 'route', 'show', 'default']), /default via 10\.124\.0\.1 dev net1/, 'the static route through its gateway');
    t.match(result, { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.124.0.2/24', gateway: '10.124.0.1', interface: 0 }] }, '0.4.0 results carry ips[].version');
  });
  t.ok(master in ipDetails(rig.simhost), 'the master stays on the host');
});

t.test('GC runs DEL for the attachments of its network that valid-attachments does not list', async (t) => {
  const rig = makeRig(t);
  const ipamDir = rig.sb.tempDir('ipam');
  const path = cniPath(rig.sb, rig.stateDir);
  const network = uniqueId('net');
  const plugin = { type: 'oci-netdev', kind: 'veth', stateDir: rig.stateDir, ipam: hostLocal(ipamDir) };
  const list: CniList = { cniVersion: '1.1.0', name: network, plugins: [plugin] };
  const otherList: CniList = { ...list, name: uniqueId('net') };
  const before = await steady(rig.simhost);
  const keep = runFor(rig, path);
  const stale = runFor(rig, path, rig.sb.createNetns('ctr'));
  const otherNet = runFor(rig, path, rig.sb.createNetns('ctr'));
  for (const [l, r] of [[list, keep], [list, stale], [otherList, otherNet]] as const) t.notOk(chainAdd(l, r).failed, `ADD ${r.containerId} on ${l.name}`);
  t.equal(stateEntries(rig.stateDir).length, 3, 'three attachments');

  const gc = execPlugin({ ...keep, containerId: '', ifname: '', netns: undefined }, 'GC', 'oci-netdev', {
    ...plugin, cniVersion: '1.1.0', name: network, 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }],
  });
  t.equal(gc.status, 0, 'GC exits 0', { stdout: gc.stdout, stderr: gc.stderr });
  t.equal(stateEntries(rig.stateDir).length, 2, 'one attachment is gone');
  t.same(Object.keys(ipDetails(stale.netns!.split('/').pop()!)), ['lo'], 'the stale one\'s device is gone from its container');
  t.ok(ipDetails(rig.ctr).eth0, 'the valid one keeps its device');
  t.same(reservations(ipamDir, network), ['10.124.0.2'], 'the stale one\'s address is released, the valid one\'s kept');
  t.same(reservations(ipamDir, otherList.name), ['10.124.0.2'], 'another network\'s attachment is untouched');

  const old = execPlugin(keep, 'GC', 'oci-netdev', { ...plugin, cniVersion: '1.0.0', name: network });
  t.match(old.json, { code: 1, msg: /GC/ }, 'GC below 1.1.0 is refused with code 1');
  t.notOk(chainDel(list, keep).failed, 'DEL the valid one');
  t.notOk(chainDel(otherList, otherNet).failed, 'DEL the other network\'s');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('STATUS: 0 when ADD can be served, code 50 when the IPAM plugin is missing', async (t) => {
  const rig = makeRig(t);
  const run = runFor(rig, cniPath(rig.sb, rig.stateDir));
  const conf = { cniVersion: '1.1.0', name: 'n', type: 'oci-netdev', kind: 'veth', stateDir: rig.stateDir };
  const ok = execPlugin(run, 'STATUS', 'oci-netdev', { ...conf, ipam: { type: 'host-local' } });
  t.equal(ok.status, 0, 'STATUS exits 0', { stdout: ok.stdout });
  const missing = execPlugin(run, 'STATUS', 'oci-netdev', { ...conf, ipam: { type: 'no-such-ipam' } });
  t.equal(missing.status, 1, 'without the IPAM plugin it exits 1');
  t.match(missing.json, { code: 50, msg: /no-such-ipam/ }, 'with code 50 naming the plugin');
});

t.test('DEL after the container deleted its veth end: success, the host end gone, no state left', async (t) => {
  const rig = makeRig(t);
  const before = await steady(rig.simhost);
  const list: CniList = { cniVersion: '1.0.0', name: uniqueId('net'), plugins: [{ type: 'oci-netdev', kind: 'veth', hostName: uniqueName('vh'), stateDir: rig.stateDir }] };
  const run = runFor(rig, cniPath(rig.sb, rig.stateDir));
  const add = chainAdd(list, run);
  t.notOk(add.failed, 'ADD', { failed: add.failed });
  shOk('ip', ['-n', rig.ctr, 'link', 'del', 'eth0']);
  const del = chainDel(list, run, add.result);
  t.notOk(del.failed, 'DEL succeeds', { failed: del.failed });
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.notOk(chainDel(list, run, add.result).failed, 'DEL again succeeds');
});
