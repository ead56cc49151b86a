import t from 'tap';
import { ofKind } from '../helpers/records';
import { fakeLink } from '../helpers/links';
import { addressFromCidr, isKernelLinkLocal, isLeftToKernel, isPortable, planAttach, restoreOrder, translateLabel, unprovenIdentity } from '../../src/plan/plan';
import type { Observed } from '../../src/plan/observed';
import type { LinkInfo } from '../../src/netlink/link';
import type { DeviceSpec } from '../../src/config/types';
import type { AddressInfo } from '../../src/netlink/address';
import { DeviceBusyError, PlanError, PolicyError } from '../../src/errors';
import { defaultPolicy, parsePolicy } from '../../src/config/policy';
import { thrown } from '../helpers/assert';

const link = fakeLink;

const addr = (index: number, address: string, prefixlen: number, flags: number, scope: number, extra: Partial<AddressInfo> = {}) => ({
  index, family: address.includes(':') ? 10 : 2, prefixlen, flags, scope, address,
  preferredLifetime: 0xffffffff, validLifetime: 0xffffffff, ...extra,
}) as AddressInfo & { index: number };

const host = (key: string, name = key, extra: Partial<DeviceSpec> = {}): DeviceSpec => ({ key, kind: 'host', name, source: 'config', ...extra });

const observed = (o: Partial<Observed> = {}): Observed => ({
  hostLinks: [link(1, 'lo', { flags: 0x9, kind: null }), link(5, 'nic0'), link(6, 'nic1')],
  hostAddresses: [
    addr(5, '192.0.2.1', 24, 0x80, 0, { local: '192.0.2.1', broadcast: '192.0.2.255', label: 'nic0:a' }),
    addr(5, '2001:db8::1', 64, 0x80, 0),
    addr(5, 'fe80::1', 64, 0x80, 253),
    addr(5, '10.0.0.1', 32, 0x80, 254),
    addr(5, '2001:db8::99', 64, 0x100, 0, { validLifetime: 300 }),
    addr(6, '198.51.100.1', 24, 0x80, 0),
  ],
  containerLinks: [link(1, 'lo', { flags: 0x9, kind: null })],
  containerAddresses: [],
  ...o,
});

const ctx = { group: 0x12345, claims: new Map<string, string>(), macvlanMasters: new Map<number, string>(), policy: defaultPolicy() };

t.test('a moved device gets move, addresses and configure, with an undo for the move', async (t) => {
  const plan = planAttach([host('nic0', 'eth1')], observed(), ctx);
  t.same(plan.steps, [
    { device: 'nic0', do: 'moveIn', undo: 'moveOut' },
    { device: 'nic0', do: 'copyAddresses' },
    { device: 'nic0', do: 'configure' },
  ]);
  const rec = ofKind(plan.devices[0], 'host');
  t.equal(rec.original.index, 5);
  t.equal(rec.containerIndex, 5, 'it keeps its ifindex in the container when that is free');
  t.same(rec.identity, { kind: 'veth', permanentMac: null, parentBus: null, parentDev: null }, 'no peer on the host: kind only');
  t.equal(rec.original.addresses.length, 5, 'the snapshot keeps every address for the restore');
  t.same(rec.containerAddresses.map((a) => a.address), ['192.0.2.1', '2001:db8::1'], 'only global permanent addresses go in');
  t.equal(rec.containerAddresses[0].broadcast, '192.0.2.255');
  t.equal(rec.containerAddresses[0].label, 'nic0:a');
});

t.test('address rules', async (t) => {
  t.ok(isPortable(addr(1, '192.0.2.1', 24, 0x80, 0)));
  t.notOk(isPortable(addr(1, '10.0.0.1', 32, 0x80, 254)), 'host scope stays');
  t.notOk(isPortable(addr(1, '2001:db8::9', 64, 0x100, 0)), 'not permanent stays');
  t.ok(isKernelLinkLocal(addr(1, 'fe80::1', 64, 0x80, 253, { proto: 3 })), 'a link-local the kernel made (proto kernel_ll) is left to the kernel');
  t.notOk(isKernelLinkLocal(addr(1, 'fe80::1', 64, 0x80, 253)), 'one the host added is restored');
  t.notOk(isKernelLinkLocal(addr(1, '169.254.0.1', 16, 0x80, 253, { proto: 3 })), 'IPv4 link-local is always restored');
  t.ok(isLeftToKernel(addr(1, 'fe80::1', 64, 0x880, 253, { proto: 3 })), "the kernel's stable-privacy link-local is made again by the kernel");
  t.notOk(isLeftToKernel(addr(1, 'fe80::1', 64, 0x80, 253, { proto: 3 })), 'its EUI-64 one is added as recorded');
  const v4a = addr(1, '192.0.2.1', 24, 0x80, 0);
  const v4b = addr(1, '192.0.2.2', 24, 0x80, 0);
  const [g2, g1, l1] = [addr(1, '2001:db8::2', 64, 0x80, 0), addr(1, '2001:db8::1', 64, 0x80, 0), addr(1, 'fe80::1', 64, 0x80, 253)];
  t.same(restoreOrder([v4a, g2, v4b, g1, l1]), [v4a, v4b, l1, g1, g2], 'IPv4 as listed, IPv6 oldest first (the kernel lists it newest first)');
  t.equal(translateLabel('nic0', 'nic0', 'eth1'), 'eth1');
  t.equal(translateLabel('nic0:a', 'nic0', 'eth1'), 'eth1:a');
  t.equal(translateLabel('other', 'nic0', 'eth1'), 'other');
  t.equal(translateLabel(undefined, 'nic0', 'eth1'), undefined);
});

t.test('a target name already in the container is refused before anything runs', async (t) => {
  const obs = observed({ containerLinks: [link(1, 'lo'), link(2, 'eth1')] });
  const err = thrown(() => planAttach([host('nic0', 'eth1')], obs, ctx));
  t.ok(err instanceof PlanError, 'a PlanError');
  t.match((err).message, /device nic0: name eth1 already exists in the container/);
  t.doesNotThrow(() => planAttach([host('nic0', 'eth%d')], obs, ctx), 'a %d template is left to the kernel');
});

t.test('the name lo is refused even where the container namespace is not observed yet', async (t) => {
  const veth: DeviceSpec = { key: 'vh0', kind: 'veth', name: 'lo', source: 'config' };
  const msg = /^device vh0: name lo is taken by the loopback device every network namespace has$/;
  t.throws(() => planAttach([veth], observed(), ctx), msg, 'with lo observed');
  t.throws(() => planAttach([veth], observed({ containerLinks: [] }), ctx), msg, 'and with no container namespace yet');
  t.throws(() => planAttach([host('nic0', 'lo')], observed(), ctx), /device nic0: name lo is taken/, 'a moved device too');
});

t.test('an MTU outside the host device\'s own range is refused at planning', async (t) => {
  const obs = observed({ hostLinks: [link(1, 'lo', { flags: 0x9, kind: null }), link(5, 'nic0', { minMtu: 68, maxMtu: 9000 })] });
  t.throws(() => planAttach([host('nic0', 'eth1', { mtu: 9001 })], obs, ctx), /^device nic0: mtu 9001 is above the maximum 9000 that nic0 accepts$/);
  const low = observed({ hostLinks: [link(5, 'nic0', { minMtu: 1280, maxMtu: null })] });
  t.throws(() => planAttach([host('nic0', 'eth1', { mtu: 1000 })], low, ctx), /^device nic0: mtu 1000 is below the minimum 1280 that nic0 accepts$/);
  t.equal(planAttach([host('nic0', 'eth1', { mtu: 9000 })], obs, ctx).devices[0].mtu, 9000, 'the maximum itself is fine');
  t.doesNotThrow(() => planAttach([host('nic0', 'eth1', { mtu: 65535 })], observed({ hostLinks: [link(5, 'nic0', { minMtu: null, maxMtu: null })] }), ctx), 'no bound reported: no check');
});

t.test('a missing host device is an error unless the runtime already moved it, and only hardware is adopted', async (t) => {
  t.throws(() => planAttach([host('gone0', 'eth1')], observed(), ctx), /gone0: no such device/);
  const lo = link(1, 'lo', { flags: 0x9, kind: null });
  // The host is namespace 3 as the container sees it.
  const inside = (eth1: Partial<LinkInfo>) => observed({
    containerLinks: [lo, link(9, 'eth1', { mtu: 9000, ...eth1 })],
    containerAddresses: [addr(9, '203.0.113.5', 24, 0x80, 0, { label: 'eth1' })],
    hostNsidInContainer: 3,
  });
  const nic = inside({ kind: null, permanentMac: '00:11:22:33:44:55', parentBus: 'pci', parentDev: '0000:3b:00.1' });
  const rec = ofKind(planAttach([host('gone0', 'eth1')], nic, ctx).devices[0], 'host');
  t.ok(rec.adopted, 'a hardware NIC is adopted: its bus device is what no container can make');
  t.same(rec.identity, { kind: null, permanentMac: '00:11:22:33:44:55', parentBus: 'pci', parentDev: '0000:3b:00.1' }, 'and found again by it');
  t.equal(rec.original.name, 'gone0', 'restored under the key');
  t.equal(rec.original.mtu, 9000);
  t.equal(rec.containerName, 'eth1');
  t.same(rec.containerAddresses, [], 'the runtime already copied the addresses');
  t.equal(rec.containerIndex, 9, 'found again by its ifindex in the container');
  t.throws(() => planAttach([host('gone0', 'eth1', { source: 'annotation' })], nic, ctx),
    /device gone0: no such device in the host network namespace \(annotation entries never adopt/, 'annotation entries never adopt');
  t.throws(() => planAttach([host('gone0', 'lo')], nic, ctx), /the container's loopback device lo is never adopted/);
  t.throws(() => planAttach([host('gone0', 'eth1')], nic, { ...ctx, claimedInContainer: new Map([[9, 'other-ctr']]) }),
    /eth1 in the container is held by container other-ctr/, "another container's device is never adopted");

  // A tie to the host is no tie to the name: a pod's own CNI eth0 is a veth whose peer is on the host.
  const refusal = (what: string) => new RegExp(`^device gone0: no such device in the host network namespace, and eth1 in the container cannot be shown to be it: ${what}, ` +
    "and nothing the kernel reports of it ties it to the host's gone0 \\(only hardware, whose bus device no container can make, is adopted\\); nothing is adopted$");
  const cases: [string, Partial<LinkInfo>][] = [
    ['a veth whose peer is on the host', { linkIndex: 30, linkNetnsid: 3 }],
    ["a veth whose peer is in the pod", { linkIndex: 10, linkNetnsid: null }],
    ['a macvlan on a host master', { kind: 'macvlan', linkIndex: 30, linkNetnsid: 3 }],
    ['a macvlan on a lower device of the pod', { kind: 'macvlan', linkIndex: 10, linkNetnsid: null }],
    ["a vxlan tied to the host's namespace", { kind: 'vxlan', linkIndex: 9, linkNetnsid: 3, vxlan: { id: 4, port: 4789, underlay: 0 } }],
    ['a vxlan made in the pod', { kind: 'vxlan', linkIndex: 9, linkNetnsid: null, vxlan: { id: 4, port: 4789, underlay: 0 } }],
    ['a tap', { kind: 'tun' }],
    ['a NIC-like device with a permanent MAC but no bus device', { kind: null, permanentMac: '00:11:22:33:44:55' }],
  ];
  for (const [what, eth1] of cases) {
    const kind = eth1.kind === undefined ? 'a veth device' : eth1.kind === null ? 'a device without a kind' : `a ${eth1.kind} device`;
    t.throws(() => planAttach([host('gone0', 'eth1')], inside(eth1), ctx), refusal(kind), `${what} is never adopted`);
  }
});

t.test('identity: what the container cannot change, recorded per device', async (t) => {
  const hw = link(7, 'nic7', { kind: null, permanentMac: '00:11:22:33:44:55', parentBus: 'pci', parentDev: '0000:3b:00.1' });
  const peered = link(8, 'nic8', { linkIndex: 18 });
  const obs = observed({ hostLinks: [...observed().hostLinks, hw, peered, link(18, 'peer8', { linkIndex: 8 })] });
  const plan = planAttach([host('nic7'), host('nic8'), { key: 'vh0', kind: 'veth', name: 'eth9', source: 'config' },
    { key: 'mv', kind: 'macvlan', name: 'eth2', master: 'nic1', source: 'config' }], obs, { ...ctx, indexBase: 100 });
  const [a, b] = plan.devices;
  const veth = ofKind(plan.devices[2], 'veth');
  const mv = plan.devices[3];
  t.same(a.identity, { kind: null, permanentMac: '00:11:22:33:44:55', parentBus: 'pci', parentDev: '0000:3b:00.1' }, 'a NIC: permanent MAC and bus device');
  t.equal(b.identity.hostPeerIndex, 18, "a veth whose peer is on the host: the peer's ifindex");
  t.equal(veth.identity.kind, 'veth');
  t.equal(veth.hostIndex, 100, 'the host end gets a chosen ifindex');
  t.equal(veth.identity.hostPeerIndex, 100, 'the container end is proved by its host end');
  t.equal(veth.containerIndex, 100, 'the container end gets a chosen ifindex');
  t.equal(mv.identity.hostLowerIndex, 6, "a macvlan is proved by its master's ifindex");
  t.equal(mv.containerIndex, 101, 'indexes are not handed out twice in one namespace');
  const tunnels = observed({ hostLinks: [...observed().hostLinks, link(20, 'vx0', { kind: 'vxlan', vxlan: { id: 42, port: 4789, underlay: 0 } }), link(21, 'tap0', { kind: 'tun' })] });
  const [vx, tap] = planAttach([host('vx0'), host('tap0')], tunnels, ctx).devices;
  t.same(vx.identity, { kind: 'vxlan', permanentMac: null, parentBus: null, parentDev: null, hostLinkNet: true, vxlan: { id: 42, port: 4789, underlay: 0 } },
    'a vxlan: tied to the host\'s namespace, with its VNI, port and underlay');
  t.equal(unprovenIdentity(vx.identity), undefined, 'which proves it');
  t.same(tap.identity, { kind: 'tun', permanentMac: null, parentBus: null, parentDev: null }, 'a tap: its kind only');
  t.equal(unprovenIdentity(tap.identity), 'a tun device: the kernel reports nothing of it that a container cannot forge (kind, MAC, ifindex, owner, group, flags)',
    'which proves nothing');
  const taken = planAttach([host('nic0')], observed({ containerLinks: [link(1, 'lo', { flags: 0x9, kind: null }), link(5, 'x')] }), { ...ctx, indexBase: 40 });
  t.equal(taken.devices[0].containerIndex, 40, 'a device whose ifindex is taken in the container gets another');
});

t.test('loopback and held devices are refused', async (t) => {
  t.throws(() => planAttach([host('lo', 'x0')], observed(), ctx), /loopback/);
  const claims = new Map([['nic1', 'other-ctr']]);
  const err = thrown(() => planAttach([host('nic0'), host('nic1')], observed(), { ...ctx, claims }));
  t.ok(err instanceof DeviceBusyError, 'a DeviceBusyError');
  t.equal((err as DeviceBusyError).owner, 'other-ctr');
  t.match((err).message, /device nic1 is held by container other-ctr/);
});

t.test('veth and macvlan are created under temporary names, then renamed', async (t) => {
  const specs: DeviceSpec[] = [
    { key: 'vh0', kind: 'veth', name: 'eth1', mtu: 1400, addresses: ['10.1.0.2/24', 'fd00::2/64'], source: 'config' },
    { key: 'mv', kind: 'macvlan', name: 'eth2', master: 'nic1', source: 'config' },
  ];
  const plan = planAttach(specs, observed(), ctx);
  t.same(plan.steps.map((s) => `${s.device}:${s.do}${s.undo ? `/${s.undo}` : ''}`), [
    'vh0:createVeth/deleteCreated', 'vh0:renameInContainer', 'vh0:copyAddresses', 'vh0:configure',
    'mv:createMacvlan/deleteCreated', 'mv:renameInContainer', 'mv:copyAddresses', 'mv:configure',
  ]);
  const veth = ofKind(plan.devices[0], 'veth');
  const mv = ofKind(plan.devices[1], 'macvlan');
  t.not(veth.tempName, mv.tempName);
  t.ok(veth.tempName.length <= 15 && mv.tempName.length <= 15);
  t.equal(mv.mode, 'bridge');
  t.same(veth.containerAddresses.map((a) => [a.address, a.broadcast, a.flags]), [['10.1.0.2', '10.1.0.255', 0], ['fd00::2', undefined, 0x02]],
    'IPv4 gets its broadcast, IPv6 is nodad');
  t.throws(() => planAttach([{ ...specs[1], master: 'absent0' }], observed(), ctx), /master absent0 does not exist/);
  t.throws(() => planAttach([{ ...specs[0], key: 'nic0' }], observed(), ctx), /veth host end already exists/);
});

t.test('addressFromCidr computes the IPv4 broadcast and leaves /31 and /32 without one', async (t) => {
  t.equal(addressFromCidr('10.0.0.5/8').broadcast, '10.255.255.255');
  t.equal(addressFromCidr('10.0.0.5/31').broadcast, undefined);
  t.equal(addressFromCidr('10.0.0.5/32').broadcast, undefined);
  t.equal(addressFromCidr('0.0.0.0/0').broadcast, '255.255.255.255');
});

// ---------------------------------------------------------------------------------------------
// The always-refused rules that need the host's topology (src/plan/refusals.ts).

const macvlanSpec = (key: string, master: string, mode: DeviceSpec['mode'] = 'bridge'): DeviceSpec =>
  ({ key, kind: 'macvlan', name: key, master, mode, source: 'annotation' });

/**
 * A host with stacked devices: mv0 (macvlan on nic) and v-a (veth, peer v-b) carry default
 * routes, so does br1, whose port vl is a vlan on base; team0 is the master of up0, which carries
 * one too. lower0 has a macvlan mv1 on it; addr0 has an address; far0's macvlan lives elsewhere.
 */
const topology = (): Observed => ({
  hostLinks: [
    link(1, 'lo', { flags: 0x9, kind: null }),
    link(10, 'nic', { kind: null }), link(11, 'mv0', { kind: 'macvlan', linkIndex: 10 }),
    link(20, 'base', { kind: null }), link(21, 'vl', { kind: 'vlan', linkIndex: 20, masterIndex: 22, slaveKind: 'bridge' }),
    link(22, 'br1', { kind: 'bridge' }),
    link(30, 'team0', { kind: null }), link(31, 'up0', { kind: null, masterIndex: 30, slaveKind: 'team' }),
    link(40, 'v-a', { linkIndex: 41 }), link(41, 'v-b', { linkIndex: 40 }),
    link(50, 'far0', { kind: null }), link(51, 'mvx', { kind: 'macvlan', linkIndex: 50, linkNetnsid: 3 }),
    link(60, 'lower0', { kind: null }), link(61, 'mv1', { kind: 'macvlan', linkIndex: 60 }),
    link(70, 'addr0', { kind: null }), link(71, 'll0', { kind: null }), link(72, 'free0', { linkIndex: 73 }), link(73, 'free1', { linkIndex: 72 }),
    link(80, 'br9', { kind: 'bridge' }), link(81, 'told0', { netnsImmutable: true }), link(82, 'br8', { kind: 'bridge', netnsImmutable: false }),
    link(83, 'tunl0', { kind: 'ipip' }), link(84, 'tunl1', { kind: 'ipip' }), link(85, 'gre0', { kind: null }),
  ],
  hostAddresses: [addr(70, '192.0.2.7', 24, 0x80, 0), addr(70, '2001:db8::7', 64, 0x80, 0), addr(71, 'fe80::71', 64, 0x80, 253)],
  containerLinks: [link(1, 'lo', { flags: 0x9, kind: null })],
  containerAddresses: [],
  hostDefaultRoutes: [{ family: 2, index: 11 }, { family: 10, index: 22 }, { family: 2, index: 31 }, { family: 2, index: 40 }],
});

const refusal = (specs: DeviceSpec[], c: Partial<typeof ctx> = {}): PolicyError => {
  const err = thrown(() => planAttach(specs, topology(), { ...ctx, ...c }));
  if (!(err instanceof PolicyError)) throw new Error(`expected a PolicyError, got ${String(err)}`);
  return err;
};
const POLICY = '/etc/oci-netdev/policy.json';

t.test('default-route-lower: what a default-route device stands on, transitively', async (t) => {
  const err = refusal([host('nic')]);
  t.equal(err.message, `device nic: host device nic is refused by always-refused: default-route-lower, whatever the default policy (${POLICY} does not exist) says: ` +
    'it is the lower device of macvlan mv0, which carries a default route (IPv4) in the host network namespace');
  t.equal(err.rule, 'always-refused: default-route-lower');
  t.equal(err.device, 'nic');
  t.match(refusal([host('base')]).message,
    /: it is the lower device of vlan vl, which is a port of br1, which carries a default route \(IPv6\) in the host network namespace$/, 'lower of a port of the bridge');
  t.match(refusal([host('vl')]), { rule: 'always-refused: default-route-lower', message: /: it is a port of br1, which carries a default route/ });
  t.match(refusal([host('team0')]).message, /default-route-lower, .*: it is the master of up0, which carries a default route \(IPv4\)/, 'the master');
  t.match(refusal([host('v-b')]).message, /: it is the veth peer of v-a, which carries a default route \(IPv4\)/, 'the veth peer');
  t.match(refusal([host('mv0')]), { rule: 'always-refused: default-route' }, 'the device itself');
  t.doesNotThrow(() => planAttach([host('free0')], topology(), ctx), 'a veth whose peer carries nothing moves');
});

t.test('upper-devices: a device with a macvlan or ports on the host', async (t) => {
  t.match(refusal([host('lower0')]), {
    rule: 'always-refused: upper-devices',
    message: /: host device lower0 is refused by always-refused: upper-devices, .*: it has upper devices in the host network namespace: macvlan mv1$/,
  });
  t.doesNotThrow(() => planAttach([host('mv1')], topology(), ctx), 'the macvlan itself may move');
  t.doesNotThrow(() => planAttach([host('far0')], topology(), ctx), 'an IFLA_LINK from another namespace (link-netnsid) is no upper here');
});

t.test('netns-immutable: the kernel\'s word when it gives it, else the kinds and fallback tunnels', async (t) => {
  t.match(refusal([host('br9')]), { rule: 'always-refused: netns-immutable', message: /: it is a bridge, which the kernel keeps in its network namespace$/ });
  t.match(refusal([host('told0')]), { message: /: the kernel keeps it in its network namespace \(netns-immutable\)$/ });
  t.doesNotThrow(() => planAttach([host('br8')], topology(), ctx), 'IFLA_NETNS_IMMUTABLE 0 is the kernel\'s answer');
  t.match(refusal([host('tunl0')]), { message: /: it is a fallback tunnel device, which the kernel keeps in its network namespace$/ });
  t.doesNotThrow(() => planAttach([host('tunl1')], topology(), ctx), 'another ipip tunnel moves');
  t.doesNotThrow(() => planAttach([host('gre0')], topology(), ctx), 'a device merely named gre0 moves');
});

t.test('macvlan-master: the master of another container\'s macvlan', async (t) => {
  t.match(refusal([host('free0')], { macvlanMasters: new Map([[72, 'ctr-b']]) }), {
    rule: 'always-refused: macvlan-master',
    message: /: host device free0 is refused by always-refused: macvlan-master, .*: it is the master of a macvlan of container ctr-b$/,
  });
  t.doesNotThrow(() => planAttach([host('free1')], topology(), { ...ctx, macvlanMasters: new Map([[72, 'ctr-b']]) }), 'another device moves');
});

t.test('passthru-host-master: passthru on a master the host uses', async (t) => {
  const err = refusal([macvlanSpec('m0', 'mv0', 'passthru')]);
  t.equal(err.message, `device m0: macvlan mode passthru on master mv0 is refused by always-refused: passthru-host-master, whatever the default policy (${POLICY} does not exist) says: ` +
    'mv0 carries a default route (IPv4) in the host network namespace');
  t.equal(err.source, 'annotation');
  t.match(refusal([macvlanSpec('m0', 'addr0', 'passthru')]), { message: /: addr0 has addresses in the host network namespace \(192\.0\.2\.7\/24 and 1 more\)$/ });
  t.match(refusal([macvlanSpec('m0', 'nic', 'passthru')]), { message: /: nic is the lower device of macvlan mv0, which carries a default route/ });
  t.match(refusal([macvlanSpec('m0', 'base', 'passthru')]), { rule: 'always-refused: passthru-host-master' });
  t.doesNotThrow(() => planAttach([macvlanSpec('m0', 'll0', 'passthru')], topology(), ctx), 'IPv6 link-local alone is no use by the host');
  t.doesNotThrow(() => planAttach([macvlanSpec('m0', 'free0', 'passthru')], topology(), ctx), 'an unused master');
  t.doesNotThrow(() => planAttach([macvlanSpec('m0', 'addr0', 'bridge')], topology(), ctx), 'other modes leave the master to the host');
});

t.test('the rules name the policy file they override', async (t) => {
  const policy = parsePolicy('{"config": {"allowDevices": ["*"]}}', '/etc/strict.json');
  const err = refusal([host('br9')], { policy });
  t.match(err.message, /is refused by always-refused: netns-immutable, whatever policy \/etc\/strict\.json says: /);
  t.equal(err.policyFile, '/etc/strict.json');
});
