// The journal's own records of kernel state (src/state/journal-records.ts) and their converters
// (src/apply/convert-records.ts). Netlink value -> record -> JSON -> record -> netlink value: the JSON is
// byte for byte what version-2 journals hold, and the value sends the very request the original
// would have. The inputs are what the kernel reported: test/fixtures/newaddr.json (raw replies),
// and test/fixtures/journal-v2.json, a journal written by the code before the records had their own
// types (make a rig, two stand-in NICs with routes, neighbours, tc, a veth with routes, create-runtime),
// plus hand-made values for what neither holds. That journal still loads, and reads back unchanged.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeMessages, MessageBuilder } from '../../src/netlink/codec';
import { addAddress, AddressInfo, decodeAddress } from '../../src/netlink/address';
import { decodeRouteEntry, encodeRtMsg, RouteEntry, routeMessage, RTM_NEWROUTE, RTA_CACHEINFO, RTA_MULTIPATH } from '../../src/netlink/route';
import { decodeNeighbour, NeighbourEntry, neighbourMessage, NUD_PERMANENT } from '../../src/netlink/neighbour';
import { decodeTcObject, TcObject, tcMessage, TC_H_ROOT } from '../../src/netlink/tc';
import { RTM_NEWADDR } from '../../src/netlink/constants';
import {
  addressInfo, addressRecord, indexedAddressRecord, neighbourEntry, neighbourRecord, routeEntry, routeRecord, tcObject, tcRecord,
} from '../../src/apply/convert-records';
import { encodeJournal, Journal, StateDir } from '../../src/state/statedir';
import type { DeviceRecord, DeviceState } from '../../src/state/journal-records';
import { recorder } from '../helpers/recorder';
import { REPO_ROOT } from '../helpers/sandbox';

const FIXTURE = path.join(REPO_ROOT, 'test/fixtures/journal-v2.json');
/** The journal file as the old code wrote it: its first line is the envelope (the rest was reserve). */
const fixtureLine = fs.readFileSync(FIXTURE, 'utf8');
const fixture = (JSON.parse(fixtureLine) as { journal: Journal }).journal;
const hosts = fixture.plan.devices.filter((d) => d.kind === 'host');
const states = hosts.map((d) => d.original.state).filter((s): s is DeviceState => s !== undefined);
const veths = fixture.plan.devices.filter((d) => d.kind === 'veth');

const json = (v: unknown): string => JSON.stringify(v);
const viaJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const bytes = (b: MessageBuilder): string => b.finish(1).toString('hex');

t.test('the fixture holds the awkward cases this test claims to cover', async (t) => {
  const routes = states.flatMap((s) => s.routes);
  t.ok(routes.some((r) => r.family === 2 && r.multipath?.some((nh) => nh.hops > 0)), 'an IPv4 multipath route with a weighted nexthop');
  t.ok(routes.some((r) => r.family === 10 && r.multipath), 'an IPv6 multipath route');
  t.ok(routes.some((r) => r.attrs.some((a) => a.type === 8)), 'a route with RTA_METRICS');
  t.ok(routes.some((r) => r.table > 255) && routes.some((r) => r.prefsrc) && routes.some((r) => r.flags !== 0), 'table 1000, prefsrc, onlink');
  t.ok(routes.some((r) => r.pref !== undefined && r.pref !== 0), 'an IPv6 router preference');
  const addresses = hosts.flatMap((d) => d.original.addresses);
  t.ok(addresses.some((a) => a.validLifetime !== 0xffffffff), 'an address with finite lifetimes');
  t.ok(addresses.some((a) => a.label?.includes(':')), 'a labelled alias address');
  t.ok(addresses.some((a) => a.family === 10 && a.scope === 253), 'an IPv6 link-local address');
  t.ok(states.some((s) => s.neighbours.some((n) => n.family === 10 && n.flags !== 0)), 'an IPv6 neighbour that is a router');
  const tc = states.flatMap((s) => s.tc);
  t.ok(['qdisc', 'class', 'filter'].every((o) => tc.some((x) => x.object === o)), 'qdiscs, classes and filters');
  t.ok(tc.some((x) => x.kind === 'u32' && x.attrs.length > 0), 'u32 filters with their options');
  t.ok(veths.some((v) => v.containerRoutes?.length && v.hostAddresses?.length), 'a veth with routes and host-end addresses');
});

t.test('addresses the kernel reported: the same JSON as before, the same request back', async (t) => {
  const replies = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/newaddr.json'), 'utf8')) as { replies: string[] }).replies;
  const decoded = replies.flatMap((r) => decodeMessages(Buffer.from(r, 'hex'))).filter((m) => m.type === RTM_NEWADDR).map(decodeAddress);
  t.ok(decoded.length >= 6, 'the captured dump has its addresses');
  const fromJournal = [...hosts.flatMap((d) => [...d.original.addresses, ...d.containerAddresses]), ...veths.flatMap((v) => v.hostAddresses ?? [])];
  for (const { index, ...a } of decoded) {
    const rec = addressRecord(a);
    t.equal(json(rec), json(a), `${a.address}: the record's JSON is the netlink value's`);
    t.same(indexedAddressRecord({ index, ...a }), { index, ...a }, 'observed, it keeps its link');
  }
  for (const a of [...decoded.map(({ index: _i, ...a }) => a), ...(fromJournal as AddressInfo[])]) {
    const back = addressInfo(viaJson(addressRecord(a)));
    t.same(back, a, `${a.address}: back from the journal unchanged`);
    const sent = recorder();
    addAddress(sent.sock, 7, a, { op: 'add', device: 'd' });
    addAddress(sent.sock, 7, back, { op: 'add', device: 'd' });
    t.equal(sent.sent[1].toString('hex'), sent.sent[0].toString('hex'), `${a.address}: the same request`);
  }
});

/** Routes the fixture lacks: a nexthop object, kernel-only flag bits, RTA_FLOW on a nexthop, a source prefix, dump-only RTA_CACHEINFO. */
function handMadeRoutes(): RouteEntry[] {
  const base: RouteEntry = { family: 10, dstLen: 64, srcLen: 0, tos: 0, table: 254, protocol: 4, scope: 0, type: 1, flags: 0, oif: 7, attrs: [] };
  const made: RouteEntry[] = [
    { ...base, family: 2, dstLen: 16, dst: '10.50.0.0', nhId: 5, oif: 0 },
    { ...base, dst: '2001:db8:e::', src: '2001:db8:1::', srcLen: 48, flags: 0x4 | 0x10, priority: 1, pref: 3, attrs: [{ type: 11, hex: '01000100' }] },
    { ...base, family: 2, dstLen: 24, dst: '198.51.100.0', oif: 0, tos: 0x10, multipath: [
      { ifindex: 7, flags: 0x4, hops: 3, gateway: '192.0.2.1', attrs: [{ type: 11, hex: '02000000' }] },
      { ifindex: 9, flags: 0, hops: 0, attrs: [] },
    ] },
  ];
  // As a dump shows them: the request's attributes under a header with the kernel's flag bits, and RTA_CACHEINFO.
  return made.map((r) => {
    const attrs = decodeMessages(routeMessage(r, 7, 7).finish(1))[0].payload.subarray(12);
    const hdr = encodeRtMsg({
      family: r.family, dstLen: r.dstLen, srcLen: r.srcLen, tos: r.tos, table: 254, protocol: r.protocol, scope: r.scope, type: r.type, flags: r.flags,
    });
    const dump = new MessageBuilder(RTM_NEWROUTE, 0).raw(Buffer.concat([hdr, attrs])).attr(RTA_CACHEINFO, Buffer.alloc(32));
    return decodeRouteEntry(decodeMessages(dump.finish(1))[0]);
  });
}

t.test('routes: the same JSON as before, the same request back', async (t) => {
  const made = handMadeRoutes();
  t.ok(made.some((r) => r.flags & 0x10) && made.some((r) => r.nhId) && made.some((r) => r.multipath?.some((nh) => nh.gateway === undefined)),
    'the hand-made routes are what they say');
  t.ok(made.every((r) => !r.attrs.some((a) => a.type === RTA_CACHEINFO || a.type === RTA_MULTIPATH)), 'decoded as from a dump');
  const all: RouteEntry[] = [...states.flatMap((s) => s.routes), ...veths.flatMap((v) => v.containerRoutes ?? []), ...made];
  for (const r of all) {
    const rec = routeRecord(r);
    t.equal(json(rec), json(r), `${r.dst ?? 'default'}/${r.dstLen}: the record's JSON is the netlink value's`);
    const back = routeEntry(viaJson(rec));
    t.same(back, r, 'back from the journal unchanged');
    t.equal(bytes(routeMessage(back, 7, 12)), bytes(routeMessage(r, 7, 12)), 'the same request, on a new ifindex too');
  }
  const mp = made[2];
  t.not(routeRecord(mp).multipath, mp.multipath, 'a copy: the record shares no array with the netlink value');
});

t.test('neighbours: the same JSON as before, the same request back', async (t) => {
  const bare: NeighbourEntry = { family: 2, dst: '192.0.2.99', state: NUD_PERMANENT | 0x40, flags: 0x08, type: 1 };
  const made = decodeNeighbour(decodeMessages(neighbourMessage(bare, 4).finish(1))[0]);
  const { index: _i, ...noLladdr } = made;
  t.equal(noLladdr.lladdr, undefined, 'an entry without a link-layer address');
  for (const n of [...states.flatMap((s) => s.neighbours), noLladdr]) {
    const rec = neighbourRecord(n);
    t.equal(json(rec), json(n), `${n.dst}: the record's JSON is the netlink value's`);
    const back = neighbourEntry(viaJson(rec));
    t.same(back, n, 'back from the journal unchanged');
    t.equal(bytes(neighbourMessage(back, 4)), bytes(neighbourMessage(n, 4)), 'the same request');
  }
});

t.test('traffic control: the same JSON as before, the same request back', async (t) => {
  // A qdisc with a size table (TCA_STAB), as the kernel dumps it.
  const stab = new MessageBuilder(36, 0).raw(Buffer.alloc(20)).str(1, 'pfifo').attr(2, Buffer.from('64000000', 'hex'))
    .nest(8, (s) => s.attr(1, Buffer.from('0000000000000000000000000000000000000000000000', 'hex').subarray(0, 20)));
  const { index: _i, ...withStab } = decodeTcObject(decodeMessages(stab.finish(1))[0], 'qdisc');
  t.equal(withStab.attrs.length, 2, 'TCA_OPTIONS and TCA_STAB kept');
  const objects: TcObject[] = [...states.flatMap((s) => s.tc), { ...withStab, handle: 0x10000, parent: TC_H_ROOT }];
  for (const o of objects) {
    const rec = tcRecord(o);
    t.equal(json(rec), json(o), `${o.object} ${o.kind}: the record's JSON is the netlink value's`);
    const back = tcObject(viaJson(rec));
    t.same(back, o, 'back from the journal unchanged');
    t.equal(bytes(tcMessage(back, 4)), bytes(tcMessage(o, 4)), 'the same request');
  }
});

/** `d` with every record of kernel state taken to the netlink value and back to a record. */
function throughNetlink(d: DeviceRecord): DeviceRecord {
  const addresses = (list: DeviceRecord['containerAddresses']) => list.map((a) => addressRecord(addressInfo(a)));
  const out = {
    ...d,
    containerAddresses: addresses(d.containerAddresses),
    ...(d.containerRoutes ? { containerRoutes: d.containerRoutes.map((r) => routeRecord(routeEntry(r))) } : {}),
  };
  if (out.kind === 'veth' && out.hostAddresses) out.hostAddresses = addresses(out.hostAddresses);
  if (out.kind === 'host') {
    const s = out.original.state;
    out.original = {
      ...out.original,
      addresses: addresses(out.original.addresses),
      ...(s ? {
        state: {
          routes: s.routes.map((r) => routeRecord(routeEntry(r))),
          neighbours: s.neighbours.map((n) => neighbourRecord(neighbourEntry(n))),
          sysctls: s.sysctls,
          tc: s.tc.map((o) => tcRecord(tcObject(o))),
        },
      } : {}),
    };
  }
  return out;
}

t.test('a version-2 journal written before the records had their own types loads, and is written again byte for byte', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-records-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const store = new StateDir(root);
  store.lockContainer(fixture.containerId).release();
  fs.writeFileSync(path.join(store.containerDir(fixture.containerId), 'journal.json'), fixtureLine, { mode: 0o600 });
  const loaded = store.readJournal(fixture.containerId);
  t.ok(loaded, 'it loads: version, checksum and schema hold');
  const again = { ...loaded!, plan: { ...loaded!.plan, devices: loaded!.plan.devices.map(throughNetlink) } };
  t.equal(encodeJournal(again).toString('utf8'), fixtureLine, 'every record through netlink and back: the same file');
});
