// Created devices and the MAC/MTU extension, one kind at a time (issue 3): a veth pair whose
// container end is created directly in the container, macvlan devices on a veth master in each
// mode the kernel accepts there, and MAC/MTU on a moved host device, set and then restored.
// Every hook runs under nsenter in a simulated host; after poststop the simulated host must be
// identical to before and nothing created may remain.
import t, { Test } from 'tap';
import { uniqueId, uniqueName } from '../helpers/names';
import { nsSnapshot, shOk } from '../helpers/sandbox';
import {
  configBundle, groupedDevices, ipDetails, makeRig, nonLoopback, ociState, ping, requests, Rig, RTM, stateEntries, traced, userStderr,
} from '../helpers/netdevices';

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

/** Runs createRuntime; the caller checks the result. */
function attach(rig: Rig, netDevices: Record<string, object>, role = 'ctr') {
  const id = uniqueId(role);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'));
  return { id, bundle, r };
}

/**
 * Runs poststop and checks the simulated host is back to `before`, the container and state empty.
 * The veths' host ends go in one RTM_DELLINK by group, each macvlan in one by its ifindex.
 */
function detachAndCheck(t: Test, rig: Rig, id: string, bundle: string, before: object, deletes = 1): void {
  const r = traced(rig, 'poststop', ociState(id, bundle, 'stopped'));
  t.equal(r.status, 0, 'poststop exits 0', { stderr: r.stderr });
  t.equal(userStderr(r.stderr), '', 'poststop prints nothing but the trace');
  t.equal(requests(r.stderr, RTM.DELLINK).length, deletes, `created devices go in ${deletes} RTM_DELLINK`, { trace: r.stderr });
  t.same(nsSnapshot(rig.simhost), before, 'the simulated host is identical to before');
  t.same(groupedDevices(rig.simhost), [], 'no device of a link group remains on the host');
  t.same(nonLoopback(rig.ctr), [], 'nothing remains in the container netns');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
}

/** The ops of the link-changing requests (RTM_NEWLINK) for one device, in order. */
function newlinkOps(stderr: string, key: string): string[] {
  return requests(stderr, RTM.NEWLINK)
    .map((l) => /^trace: (.*) type=/.exec(l)![1])
    .filter((op) => op.endsWith(` ${key}`))
    .map((op) => op.slice(0, -key.length - 1));
}

t.test('veth: the container end is created in the container, MTU on both ends, MAC and addresses in the container', async (t) => {
  const rig = makeRig(t);
  const before = nsSnapshot(rig.simhost);
  const hostEnd = uniqueName('vh');
  const { id, bundle, r } = attach(rig, {
    [hostEnd]: { type: 'veth', name: 'eth5', mtu: 1400, mac: '02:0A:00:00:00:05', addresses: ['10.55.0.2/24', 'fd55::2/64'] },
  });
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.same(newlinkOps(r.stderr, hostEnd), ['create veth', 'rename', 'configure'], 'created in place and renamed; never moved');
  t.match(requests(r.stderr, RTM.NEWLINK)[0], /flags=0x605 /, 'the create request has NLM_F_CREATE|NLM_F_EXCL');

  const inside = ipDetails(rig.ctr);
  t.same(Object.keys(inside).sort(), ['eth5', 'lo'], 'the container holds the container end under its name');
  const ce = inside.eth5;
  t.equal(ce.linkinfo?.info_kind, 'veth', 'a veth');
  t.equal(ce.mtu, 1400, 'container end MTU');
  t.equal(ce.address, '02:0a:00:00:00:05', 'container end MAC, lower case');
  t.ok(ce.flags.includes('UP') && ce.flags.includes('LOWER_UP'), 'container end is up with carrier', { flags: ce.flags });
  t.not(ce.group, 'default', 'in the link group of this container');
  const v4 = ce.addr_info.find((a) => a.local === '10.55.0.2');
  t.match(v4, { family: 'inet', prefixlen: 24, scope: 'global' }, 'IPv4 address');
  const v6 = ce.addr_info.find((a) => a.local === 'fd55::2');
  t.match(v6, { family: 'inet6', prefixlen: 64, scope: 'global', nodad: true }, 'IPv6 address with nodad');
  t.notOk(v6?.tentative, 'the IPv6 address is usable at once');

  const he = ipDetails(rig.simhost)[hostEnd];
  t.ok(he, 'the host end stays on the host under the key');
  t.equal(he?.linkinfo?.info_kind, 'veth');
  t.equal(he?.mtu, 1400, 'host end MTU');
  t.ok(he?.flags.includes('UP') && he?.flags.includes('LOWER_UP'), 'host end is up with carrier', { flags: he?.flags });
  t.equal(he?.group, ce.group, 'host end is in the same group');
  t.not(he?.address, ce.address, 'the MAC applies to the container end only');
  t.match(he?.address, MAC_RE);

  // The pair works: the host end gets addresses, and the container reaches them at once.
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '10.55.0.1/24', 'dev', hostEnd]);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', 'fd55::1/64', 'dev', hostEnd, 'nodad']);
  t.equal(ping(rig.ctr, '10.55.0.1'), 0, 'IPv4 ping from the container to the host end');
  t.equal(ping(rig.ctr, 'fd55::1'), 0, 'IPv6 ping from the container to the host end');

  detachAndCheck(t, rig, id, bundle, before);
  t.notOk(hostEnd in nsSnapshot(rig.simhost), 'the host end is gone');
});

t.test('veth: a host end that already exists is refused before anything changes', async (t) => {
  const rig = makeRig(t);
  const taken = uniqueName('vh');
  rig.sb.createVethPair(rig.simhost, taken, uniqueName('peer'));
  const before = nsSnapshot(rig.simhost);
  const { r } = attach(rig, { [taken]: { type: 'veth', name: 'eth0' } });
  t.not(r.status, 0, 'createRuntime fails');
  t.equal(userStderr(r.stderr), `oci-netdev: device ${taken}: the veth host end already exists on the host`);
  t.same([RTM.NEWLINK, RTM.DELLINK, RTM.NEWADDR].map((ty) => requests(r.stderr, ty).length), [0, 0, 0], 'no change was requested');
  t.same(nsSnapshot(rig.simhost), before, 'host unchanged');
  t.same(nonLoopback(rig.ctr), [], 'container unchanged');
  t.same(stateEntries(rig.stateDir), [], 'no state');
});

const MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;

for (const mode of MODES) {
  t.test(`macvlan mode ${mode} on a veth master, created in the container`, async (t) => {
    const rig = makeRig(t);
    const master = uniqueName('mst');
    rig.sb.createVethPair(rig.simhost, master, uniqueName('mpeer'));
    const before = nsSnapshot(rig.simhost);
    const mac = mode === 'passthru' ? undefined : '02:0B:00:00:00:07';
    const { id, bundle, r } = attach(rig, {
      mv0: { type: 'macvlan', master, mode, name: 'eth7', mtu: 1400, ...(mac && { mac }), addresses: ['10.77.0.2/24', 'fd77::2/64'] },
    });
    t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
    t.same(newlinkOps(r.stderr, 'mv0'), ['create macvlan', 'rename', 'configure'], 'created in place and renamed; never moved');

    const inside = ipDetails(rig.ctr);
    t.same(Object.keys(inside).sort(), ['eth7', 'lo'], 'the container holds the macvlan under its name');
    const mv = inside.eth7;
    t.equal(mv.linkinfo?.info_kind, 'macvlan');
    t.equal(mv.linkinfo?.info_data?.mode, mode, `mode ${mode}`);
    t.equal(mv.mtu, 1400, 'MTU');
    if (mac) t.equal(mv.address, mac.toLowerCase(), 'MAC');
    else t.equal(mv.address, before[master].mac, 'passthru takes the master MAC');
    t.ok(mv.flags.includes('UP'), 'up', { flags: mv.flags });
    t.not(mv.group, 'default', 'in the link group of this container');
    t.match(mv.addr_info.find((a) => a.local === '10.77.0.2'), { prefixlen: 24, scope: 'global' }, 'IPv4 address');
    t.match(mv.addr_info.find((a) => a.local === 'fd77::2'), { prefixlen: 64, scope: 'global', nodad: true }, 'IPv6 address with nodad');
    t.same(nonLoopback(rig.simhost), [master, Object.keys(before).find((n) => n !== 'lo' && n !== master)].sort(), 'nothing was created on the host');
    t.same(nsSnapshot(rig.simhost)[master].mtu, before[master].mtu, 'the master MTU is not touched');

    detachAndCheck(t, rig, id, bundle, before);
  });
}

/** The ops of the RTM_DELLINK requests of a trace, in order, each followed by the sends that carried it. */
function deletes(stderr: string): string[] {
  return stderr.split('\n').flatMap((l) => {
    if (/ requests? sent in one datagram$/.test(l)) return [l.slice('trace: '.length)];
    return requests(l, RTM.DELLINK).map((r) => /^trace: (.*) type=/.exec(r)![1]);
  });
}

/** Three macvlans on one master in the rig's container, created; their link group there. */
function threeMacvlans(t: Test, rig: Rig): { id: string; bundle: string; group: string; before: ReturnType<typeof nsSnapshot> } {
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, master, uniqueName('mpeer'));
  const before = nsSnapshot(rig.simhost);
  const { id, bundle, r } = attach(rig, Object.fromEntries([1, 2, 3].map((i) => [`mv${i}`, { type: 'macvlan', master, mode: 'bridge', name: `eth${i}`, addresses: [`10.78.${i}.2/24`] }])));
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  const inside = ipDetails(rig.ctr);
  t.same(nonLoopback(rig.ctr), ['eth1', 'eth2', 'eth3'], 'the three are in the container');
  t.same(new Set(['eth1', 'eth2', 'eth3'].map((n) => inside[n].group)).size, 1, 'in one link group');
  return { id, bundle, group: inside.eth1.group, before };
}

function poststopLeavesNothing(t: Test, rig: Rig, id: string, bundle: string, before: object, containerKeeps: string[] = []): string {
  const r = traced(rig, 'poststop', ociState(id, bundle, 'stopped'));
  t.equal(r.status, 0, 'poststop exits 0', { stderr: r.stderr });
  t.equal(userStderr(r.stderr), '', 'poststop prints nothing but the trace');
  t.same(nsSnapshot(rig.simhost), before, 'the simulated host is identical to before');
  t.same(nonLoopback(rig.ctr), containerKeeps, containerKeeps.length ? 'the container keeps its own device' : 'nothing remains in the container netns');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
  return r.stderr;
}

t.test('macvlans: several on one master go at poststop in one RTM_DELLINK by their link group, which holds exactly them', async (t) => {
  const rig = makeRig(t);
  const { id, bundle, group, before } = threeMacvlans(t, rig);
  const stderr = poststopLeavesNothing(t, rig, id, bundle, before);
  t.same(deletes(stderr), [`delete created macvlans group ${Number(group)}`], 'one request by group');
});

t.test('macvlans: a link of the container\'s in their group, or one of them taken out of it: each goes by its ifindex, in one send, and the container\'s link stays', async (t) => {
  const rig = makeRig(t);
  const { id, bundle, group, before } = threeMacvlans(t, rig);
  const own = uniqueName('own');
  shOk('ip', ['-n', rig.ctr, 'link', 'add', own, 'group', group, 'type', 'bridge']);
  const stderr = poststopLeavesNothing(t, rig, id, bundle, before, [own]);
  t.same(deletes(stderr).sort(), ['3 requests sent in one datagram', 'delete macvlan mv1', 'delete macvlan mv2', 'delete macvlan mv3'], 'an RTM_DELLINK each, in one send');
  t.equal(deletes(stderr).at(-1), '3 requests sent in one datagram', 'sent together');

  const again = makeRig(t);
  const second = threeMacvlans(t, again);
  shOk('ip', ['-n', again.ctr, 'link', 'set', 'eth2', 'group', 'default']);
  const stderr2 = poststopLeavesNothing(t, again, second.id, second.bundle, second.before);
  t.same(deletes(stderr2), [`delete created macvlans group ${Number(second.group)}`, 'delete macvlan mv2', '1 request sent in one datagram'],
    'the two left in the group by group, the one taken out by its ifindex');
});

t.test('macvlan: passthru on a master that already carries a macvlan is a clean error, rolled back', async (t) => {
  const rig = makeRig(t);
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, master, uniqueName('mpeer'));
  shOk('ip', ['-n', rig.simhost, 'link', 'add', uniqueName('omv'), 'link', master, 'type', 'macvlan', 'mode', 'bridge']);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const before = nsSnapshot(rig.simhost);
  const { r } = attach(rig, {
    [nic]: { name: 'eth1', mtu: 1300 },
    [uniqueName('vh')]: { type: 'veth', name: 'eth2' },
    mvp: { type: 'macvlan', master, mode: 'passthru', name: 'eth3' },
  });
  t.not(r.status, 0, 'createRuntime fails');
  const err = userStderr(r.stderr);
  t.equal(err.split('\n').length, 1, 'one line on stderr', { err });
  t.match(err, /^oci-netdev: create macvlan device mvp: EINVAL \(Invalid argument\): mode passthru needs a master that carries no other macvlan/, 'names the step, the device and the cause');
  t.equal(requests(r.stderr, RTM.DELLINK).length, 1, 'the rollback deletes the created veth in one request');
  t.same(nsSnapshot(rig.simhost), before, 'the simulated host is identical to before');
  t.same(nonLoopback(rig.ctr), [], 'the container holds nothing');
  t.same(stateEntries(rig.stateDir), [], 'no state');
});

t.test('macvlan: a second macvlan on a passthru master is refused and rolled back', async (t) => {
  const rig = makeRig(t);
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, master, uniqueName('mpeer'));
  const before = nsSnapshot(rig.simhost);
  const { r } = attach(rig, {
    mvp: { type: 'macvlan', master, mode: 'passthru', name: 'eth3' },
    mvb: { type: 'macvlan', master, name: 'eth4' },
  });
  t.not(r.status, 0, 'createRuntime fails');
  t.match(userStderr(r.stderr), /^oci-netdev: create macvlan device mvb: EINVAL \(Invalid argument\): master \S+ may carry a passthru macvlan/);
  t.same(nsSnapshot(rig.simhost), before, 'the master is as before (promiscuity, MAC, MTU)');
  t.same(nonLoopback(rig.ctr), [], 'the container holds nothing');
  t.same(stateEntries(rig.stateDir), [], 'no state');
});

t.test('macvlan: a master that is down is fine; an absent one, or an MTU above its own, fails before anything changes', async (t) => {
  const rig = makeRig(t);
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, master, uniqueName('mpeer'));
  shOk('ip', ['-n', rig.simhost, 'link', 'set', master, 'down']);
  const before = nsSnapshot(rig.simhost);

  const absent = uniqueName('gone');
  const bad = attach(rig, { [uniqueName('vh')]: { type: 'veth' }, mv1: { type: 'macvlan', master: absent } });
  t.not(bad.r.status, 0, 'an absent master fails');
  t.equal(userStderr(bad.r.stderr), `oci-netdev: device mv1: macvlan master ${absent} does not exist on the host`);
  t.same([RTM.NEWLINK, RTM.DELLINK, RTM.NEWADDR].map((ty) => requests(bad.r.stderr, ty).length), [0, 0, 0], 'no change was requested');
  t.same(nsSnapshot(rig.simhost), before);
  t.same(stateEntries(rig.stateDir), [], 'no state');

  const big = attach(rig, { [uniqueName('vh')]: { type: 'veth' }, mv2: { type: 'macvlan', master, mtu: 9000 } });
  t.not(big.r.status, 0, 'an MTU above the master MTU fails');
  t.equal(userStderr(big.r.stderr), `oci-netdev: device mv2: mtu 9000 is above the MTU 1500 of macvlan master ${master}`);
  t.same([RTM.NEWLINK, RTM.DELLINK, RTM.NEWADDR].map((ty) => requests(big.r.stderr, ty).length), [0, 0, 0], 'no change was requested');
  t.same(nsSnapshot(rig.simhost), before);
  t.same(stateEntries(rig.stateDir), [], 'no state');

  const { id, bundle, r } = attach(rig, { mv0: { type: 'macvlan', master, name: 'mv%d' }, [uniqueName('vh')]: { type: 'veth', name: 'mv%d' } });
  t.equal(r.status, 0, 'a master that is down is fine', { stderr: r.stderr });
  t.same(nonLoopback(rig.ctr), ['mv0', 'mv1'], 'created devices take %d names the kernel picks');
  const mv = ipDetails(rig.ctr).mv0;
  t.equal(mv?.linkinfo?.info_data?.mode, 'bridge', 'bridge is the default mode');
  t.ok(mv?.flags.includes('UP'), 'the macvlan is up', { flags: mv?.flags });
  t.notOk(nsSnapshot(rig.simhost)[master].up, 'the master stays down');
  detachAndCheck(t, rig, id, bundle, before, 2);
});

t.test('MAC and MTU on a moved host device: set after the move, restored at poststop', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.10/24', 'dev', nic]);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '2001:db8::10/64', 'dev', nic, 'nodad']);
  const before = nsSnapshot(rig.simhost);
  const { id, bundle, r } = attach(rig, { [nic]: { name: 'eth1', mtu: 1280, mac: '02:CC:00:00:00:01' } });
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.same(newlinkOps(r.stderr, nic), ['move into container: take down', 'move into container', 'configure'], 'taken down, moved, then configured');
  t.same(nonLoopback(rig.ctr), ['eth1']);
  const dev = nsSnapshot(rig.ctr).eth1;
  t.equal(dev.mtu, 1280, 'MTU in the container');
  t.equal(dev.mac, '02:cc:00:00:00:01', 'MAC in the container');
  t.ok(dev.up, 'up');
  t.same(dev.addresses.map((a) => `${a.local}/${a.prefixlen}`).sort(), ['192.0.2.10/24', '2001:db8::10/64'], 'addresses kept');
  t.not(before[nic].mac, dev.mac, 'the MAC did change');

  const r2 = traced(rig, 'poststop', ociState(id, bundle, 'stopped'));
  t.equal(r2.status, 0, 'poststop exits 0', { stderr: r2.stderr });
  const ops = newlinkOps(r2.stderr, nic);
  t.same(ops.slice(0, 3), ['restore in container: take down', 'restore in container', 'move to host'],
    'taken down first (a NIC refuses a MAC change while up), MTU and MAC restored in the container, then moved out');
  t.same(requests(r2.stderr, RTM.DELLINK), [], 'nothing to delete: nothing was created');
  t.same(nsSnapshot(rig.simhost), before, 'name, MTU, MAC, addresses and state are back');
  t.same(stateEntries(rig.stateDir), [], 'no state');
});

