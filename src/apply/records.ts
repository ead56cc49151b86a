// The journal's records of kernel state (src/state/records.ts) from what the netlink layer reads,
// and back to what it sends. Field by field: a field the codec gains does not reach the journal
// unnoticed, and one a journal lacks is not invented. Records keep the order in which the codec
// reports the fields, so a journal reads as journals of version 2 always have.

import type { AddressInfo } from '../netlink/address';
import type { NeighbourEntry } from '../netlink/neighbour';
import type { RouteEntry } from '../netlink/route';
import type { TcObject } from '../netlink/tc';
import type { AddressRecord, NeighbourRecord, NexthopRecord, RawAttrRecord, RouteRecord, TcRecord } from '../state/records';

type Nexthop = NonNullable<RouteEntry['multipath']>[number];

/** `{ [key]: value }` when the value is there, `{}` when not: optional fields stay absent, never undefined. */
const opt = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

const rawAttrs = (attrs: RawAttrRecord[]): RawAttrRecord[] => attrs.map((a) => ({ type: a.type, hex: a.hex }));

// One copier per kind serves both ways while the two types have the same fields. A required field
// that only one of them has stops the build here; an optional one the codec gains is not copied
// until it is added here, to the record and to spec/journal.schema.json.

function address(a: AddressInfo | AddressRecord): AddressInfo & AddressRecord {
  return {
    family: a.family, prefixlen: a.prefixlen, flags: a.flags, scope: a.scope, address: a.address,
    preferredLifetime: a.preferredLifetime, validLifetime: a.validLifetime,
    ...opt('local', a.local), ...opt('broadcast', a.broadcast), ...opt('label', a.label),
    ...opt('rtPriority', a.rtPriority), ...opt('proto', a.proto),
  };
}

export const addressRecord = (a: AddressInfo): AddressRecord => address(a);
export const addressInfo = (r: AddressRecord): AddressInfo => address(r);

/** An address as observed, with the ifindex of its link (what the planner reads). */
export const indexedAddressRecord = (a: AddressInfo & { index: number }): AddressRecord & { index: number } =>
  ({ index: a.index, ...addressRecord(a) });

function nexthop(nh: Nexthop | NexthopRecord): Nexthop & NexthopRecord {
  return { ifindex: nh.ifindex, flags: nh.flags, hops: nh.hops, attrs: rawAttrs(nh.attrs), ...opt('gateway', nh.gateway) };
}

function route(r: RouteEntry | RouteRecord): RouteEntry & RouteRecord {
  return {
    family: r.family, dstLen: r.dstLen, srcLen: r.srcLen, tos: r.tos, table: r.table, protocol: r.protocol,
    scope: r.scope, type: r.type, flags: r.flags, oif: r.oif, attrs: rawAttrs(r.attrs),
    ...opt('dst', r.dst), ...opt('src', r.src), ...opt('gateway', r.gateway), ...opt('prefsrc', r.prefsrc),
    ...opt('priority', r.priority), ...opt('pref', r.pref), ...opt('multipath', r.multipath?.map(nexthop)),
    ...opt('nhId', r.nhId),
  };
}

export const routeRecord = (r: RouteEntry): RouteRecord => route(r);
export const routeEntry = (r: RouteRecord): RouteEntry => route(r);

function neighbour(n: NeighbourEntry | NeighbourRecord): NeighbourEntry & NeighbourRecord {
  return {
    family: n.family, dst: n.dst, state: n.state, flags: n.flags, type: n.type,
    ...opt('lladdr', n.lladdr), ...opt('protocol', n.protocol),
  };
}

export const neighbourRecord = (n: NeighbourEntry): NeighbourRecord => neighbour(n);
export const neighbourEntry = (r: NeighbourRecord): NeighbourEntry => neighbour(r);

function tc(o: TcObject | TcRecord): TcObject & TcRecord {
  return { object: o.object, kind: o.kind, handle: o.handle, parent: o.parent, info: o.info, attrs: rawAttrs(o.attrs) };
}

export const tcRecord = (o: TcObject): TcRecord => tc(o);
export const tcObject = (r: TcRecord): TcObject => tc(r);
