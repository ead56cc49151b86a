// The codecs of what a move destroys (src/netlink/route.ts device routes, neighbour.ts, tc.ts):
// a record encoded as the request that adds it again decodes to the same record, and the kernel's
// dump quirks are handled (dump-only attributes, offload flags, htb's version, creation order).
import t from 'tap';
import { MessageBuilder, decodeMessages } from '../../src/netlink/codec';
import {
  NLM_F_APPEND, RTA_CACHEINFO, RTA_METRICS, RTM_NEWROUTE, RouteEntry, decodeRouteEntry, describeRoute, encodeRtMsg,
  isKernelRoute, routeMessage,
} from '../../src/netlink/route';
import { NeighbourEntry, NUD_PERMANENT, decodeNeighbour, neighbourMessage } from '../../src/netlink/neighbour';
import { decodeNexthopObject, describeNexthop, NexthopObject, nexthopMessage } from '../../src/netlink/nexthop';
import { TC_H_INGRESS, TC_H_ROOT, TcObject, decodeTcObject, describeTc, inCreationOrder, tcMessage, u32ForReplay } from '../../src/netlink/tc';
import { NLM_F_CREATE, NLM_F_EXCL } from '../../src/netlink/constants';

const roundTrip = (b: MessageBuilder) => decodeMessages(b.finish(1))[0];

const base: RouteEntry = {
  family: 2, dstLen: 24, srcLen: 0, tos: 0, table: 254, protocol: 3, scope: 0, type: 1, flags: 0, oif: 7, attrs: [],
};

t.test('a route with every typed attribute survives encode then decode', async (t) => {
  const metrics = Buffer.from('08000200140500000800040000000000', 'hex'); // RTAX_MTU 1300, RTAX_WINDOW 0
  const r: RouteEntry = {
    ...base, dst: '198.51.100.0', gateway: '192.0.2.1', prefsrc: '192.0.2.10', priority: 50, table: 1000,
    attrs: [{ type: RTA_METRICS, hex: metrics.toString('hex') }],
  };
  const m = roundTrip(routeMessage(r, 7, 7));
  t.equal(m.flags, NLM_F_CREATE | NLM_F_EXCL, 'created, never replacing a route that is there');
  t.same(decodeRouteEntry(m), r, 'the same route, table 1000 through RTA_TABLE');
  t.equal(m.payload.readUInt8(4), 252, 'rtm_table says "see RTA_TABLE" for a table above 255');
  t.equal(describeRoute(r), '198.51.100.0/24 via 192.0.2.1 table 1000 metric 50');
});

t.test('IPv6 with pref, the new ifindex, and kernel-only bits dropped', async (t) => {
  const r: RouteEntry = { ...base, family: 10, dstLen: 48, dst: '2001:db8:c::', priority: 300, pref: 1, flags: 0x4 | 0x10 };
  const back = decodeRouteEntry(roundTrip(routeMessage(r, 7, 12)));
  t.equal(back.oif, 12, 'the recorded ifindex is mapped to today\'s');
  t.equal(back.flags, 0x4, 'onlink kept, linkdown (kernel state) dropped');
  t.equal(back.pref, 1, 'router preference kept');
});

t.test('dump-only attributes are not kept; unknown ones are, as they came', async (t) => {
  const b = new MessageBuilder(RTM_NEWROUTE, 0).raw(encodeRtMsg({ family: 2, dstLen: 16, table: 254, protocol: 4, type: 1 }));
  b.attr(1, Buffer.from([10, 9, 0, 0])).u32(4, 3).attr(RTA_CACHEINFO, Buffer.alloc(32)).u32(11, 0x10001);
  const r = decodeRouteEntry(roundTrip(b));
  t.same(r.attrs, [{ type: 11, hex: '01000100' }], 'RTA_FLOW kept, RTA_CACHEINFO not');
});

t.test('multipath: IPv4 is added whole, IPv6 only its own nexthops, appended', async (t) => {
  const r: RouteEntry = {
    ...base, oif: 0, multipath: [
      { ifindex: 7, flags: 0, hops: 0, gateway: '192.0.2.1', attrs: [] },
      { ifindex: 9, flags: 0, hops: 1, gateway: '192.0.2.2', attrs: [{ type: 11, hex: '02000000' }] },
    ],
  };
  const v4 = roundTrip(routeMessage(r, 7, 12));
  t.same(decodeRouteEntry(v4).multipath, [{ ...r.multipath![0], ifindex: 12 }, r.multipath![1]], 'both nexthops, ours on its new ifindex');
  const v6r: RouteEntry = { ...r, family: 10, multipath: r.multipath!.map((nh, i) => ({ ...nh, gateway: `fe80::${i + 1}` })) };
  const v6 = roundTrip(routeMessage(v6r, 7, 12));
  t.equal(v6.flags, NLM_F_CREATE | NLM_F_APPEND, 'appended to the nexthops IPv6 kept');
  t.same(decodeRouteEntry(v6).multipath, [{ ...v6r.multipath![0], ifindex: 12 }], 'only the nexthop on our device');
});

t.test('routes the kernel makes itself are recognised', async (t) => {
  t.ok(isKernelRoute({ ...base, protocol: 2 }), 'proto kernel');
  t.ok(isKernelRoute({ ...base, protocol: 9 }), 'proto ra');
  t.ok(isKernelRoute({ ...base, flags: 0x200 }), 'a cached clone');
  t.notOk(isKernelRoute({ ...base, protocol: 4 }), 'proto static is ours to restore');
  t.notOk(isKernelRoute({ ...base, protocol: 3 }), 'proto boot (ip route add) too');
});

t.test('a configured neighbour survives encode then decode', async (t) => {
  const n: NeighbourEntry = { family: 10, dst: '2001:db8:a::50', lladdr: '02:00:5e:00:53:51', state: NUD_PERMANENT, flags: 0x80, type: 1, protocol: 4 };
  t.same(decodeNeighbour(roundTrip(neighbourMessage(n, 5))), { ...n, index: 5 });
  const learned = { ...n, state: 0x04, flags: 0x10 };
  t.same(decodeNeighbour(roundTrip(neighbourMessage(learned, 5))), { ...learned, index: 5 }, 'externally learned, stale: as it was');
  const proxy = decodeNeighbour(roundTrip(neighbourMessage({ ...n, flags: 0x08 | 0x80 | 0x40 | 0x02 }, 5)));
  t.equal(proxy.flags, 0x08 | 0x80, 'proxy and router flags are sent, the kernel\'s own (offloaded, in use) are not');
  const managed = decodeNeighbour(roundTrip(neighbourMessage({ ...n, state: 0x20, extFlags: 0x01 }, 5)));
  t.same([managed.state, managed.lladdr, managed.extFlags], [0, undefined, 0x01], 'managed: no state nor link-layer address, the kernel finds them');
});

const q = (o: Partial<TcObject>): TcObject => ({ object: 'qdisc', kind: 'htb', handle: 0x10000, parent: TC_H_ROOT, info: 0, attrs: [], ...o });

t.test('a tc object survives encode then decode; htb version and filter offload flags are made creatable', async (t) => {
  const pfifo = q({ kind: 'pfifo', handle: 0x80010000, attrs: [{ type: 2, hex: '64000000' }] });
  t.same(decodeTcObject(roundTrip(tcMessage(pfifo, 4)), 'qdisc'), { ...pfifo, index: 4 });
  t.equal(describeTc(pfifo), 'qdisc pfifo 8001:0 parent root');

  // htb: TCA_OPTIONS { TCA_HTB_INIT (version 0x30011, r2q 10, default 0x10, 0, 0), TCA_HTB_DIRECT_QLEN 1000 }
  const init = Buffer.alloc(20);
  init.writeUInt32LE(0x30011, 0); init.writeUInt32LE(10, 4); init.writeUInt32LE(0x10, 8);
  const htb = new MessageBuilder(36, 0).raw(Buffer.alloc(20)).str(1, 'htb').nest(2, (o) => o.attr(2, init).u32(3, 1000)).u32(7, 0);
  const decoded = decodeTcObject(roundTrip(htb), 'qdisc');
  const opts = Buffer.from(decoded.attrs[0].hex, 'hex');
  t.equal(decoded.attrs.length, 1, 'statistics (TCA_STATS2) are not kept');
  t.equal(opts.readUInt32LE(4), 3, 'htb version cut to its major number, which creation takes');
  t.equal(opts.readUInt32LE(12), 0x10, 'the rest of the options as they came');

  // u32 with TCA_U32_FLAGS = not_in_hw | skip_hw
  const u32 = new MessageBuilder(44, 0).raw(Buffer.alloc(20)).str(1, 'u32').nest(2, (o) => o.u32(1, 0x1000a).u32(11, 0x8 | 0x1));
  const f = decodeTcObject(roundTrip(u32), 'filter');
  t.equal(Buffer.from(f.attrs[0].hex, 'hex').readUInt32LE(12), 0x1, 'skip_hw kept, not_in_hw dropped');
  t.equal(Buffer.from(f.attrs[0].hex, 'hex').readUInt32LE(4), 0x1000a, 'classid untouched');
});

t.test('qdiscs and classes come in creation order whatever the dump order', async (t) => {
  const leaf = q({ kind: 'pfifo', handle: 0x20000, parent: 0x10010 });
  const child = q({ object: 'class', handle: 0x10010, parent: 0x10001 });
  const top = q({ object: 'class', handle: 0x10001, parent: TC_H_ROOT });
  const root = q({});
  const ingress = q({ kind: 'ingress', handle: 0xffff0000, parent: TC_H_INGRESS });
  t.same(inCreationOrder([leaf, child, top, ingress, root]), [ingress, root, top, child, leaf]);
  const orphan = q({ object: 'class', handle: 0x30001, parent: TC_H_ROOT });
  t.same(inCreationOrder([orphan, root]), [root, orphan], 'what hangs off nothing recorded is tried last');
});

t.test('u32: a priority\'s root table is left to the kernel and its keys go in without a table number', async (t) => {
  const opts = (hash: number) => new MessageBuilder(0, 0).u32(1, 0x10001).u32(2, hash).finish(0).subarray(16).toString('hex');
  const f = (handle: number, hash?: number): TcObject =>
    q({ object: 'filter', kind: 'u32', handle, parent: 0xfffffff2, info: (3 << 16) | 8, attrs: hash === undefined ? [] : [{ type: 2, hex: opts(hash) }] });
  // Dump order: the table made by hand (2:) and its key, then the root table 801: and its key.
  const own = f(0x00200000);
  const ownKey = f(0x00200800, 0x00200000);
  const root = f(0x80100000);
  const rootKey = f(0x80100800, 0x80100000);
  const replay = u32ForReplay([own, ownKey, root, rootKey]);
  t.same(replay.slice(0, 2), [own, ownKey], 'a table of one\'s own and its keys keep their numbers');
  t.equal(replay.length, 3, 'the root table is not replayed');
  t.equal(replay[2].handle, 0x800, 'the root key keeps only its node number');
  t.equal(replay[2].attrs[0].hex, new MessageBuilder(0, 0).u32(1, 0x10001).finish(0).subarray(16).toString('hex'), 'and no table (TCA_U32_HASH)');
});

t.test('a route through a nexthop object names only the object', async (t) => {
  const r: RouteEntry = { ...base, gateway: '192.0.2.1', nhId: 5, dst: '10.50.0.0', dstLen: 16 };
  const back = decodeRouteEntry(roundTrip(routeMessage(r, 7, 7)));
  t.equal(back.nhId, 5);
  t.equal(back.oif, 0, 'no output link');
  t.equal(back.gateway, undefined, 'no gateway');
});

t.test('a nexthop object survives encode then decode, on the device\'s new ifindex; a group with the members given', async (t) => {
  const nh: NexthopObject = { id: 101, family: 2, protocol: 4, flags: 0x4, oif: 7, attrs: [{ type: 6, hex: 'c0000201' }] };
  t.same(decodeNexthopObject(roundTrip(nexthopMessage(nh, 7, 9))), { ...nh, oif: 9 }, 'the output link mapped, onlink kept');
  t.equal(decodeNexthopObject(roundTrip(nexthopMessage({ ...nh, flags: 0x1 | 0x10 }, 7, 7))).flags, 0, 'dead and linkdown are the kernel\'s');
  const group: NexthopObject = { id: 110, family: 0, protocol: 0, flags: 0, group: [{ id: 101, weight: 0 }, { id: 102, weight: 2 }], attrs: [{ type: 3, hex: '0000' }] };
  t.same(decodeNexthopObject(roundTrip(nexthopMessage(group, 7, 9))), group, 'a group as recorded');
  const members = [{ id: 104, weight: 0 }, ...group.group!];
  t.same(decodeNexthopObject(roundTrip(nexthopMessage(group, 7, 9, members))).group, members, 'or with the members it is given');
  t.equal(describeNexthop(group), 'nexthop group 110');
});
