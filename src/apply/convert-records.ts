// The journal's records of kernel state (src/state/journal-records.ts) from what the netlink layer reads,
// and back to what it sends. Field by field: a field the codec gains does not reach the journal
// unnoticed, and one a journal lacks is not invented. Records keep the order in which the codec
// reports the fields, so a journal reads as journals of version 2 always have.

import type { AddressInfo } from '../netlink/address';
import { FLAG_GROUP_NAMES, NUMBER_GROUP_NAMES } from '../netlink/ethtool';
import type { EthtoolSettings } from '../netlink/ethtool';
import type { LinkSettings } from '../netlink/link';
import type { NeighbourEntry } from '../netlink/neighbour';
import type { NexthopObject } from '../netlink/nexthop';
import type { RouteEntry } from '../netlink/route';
import type { TcObject } from '../netlink/tc';
import type {
  AddressRecord, EthtoolRecord, LinkSettingsRecord, NeighbourRecord, NexthopObjectRecord, NexthopRecord, RawAttrRecord, RouteRecord, TcRecord,
} from '../state/journal-records';

type Nexthop = NonNullable<RouteEntry['multipath']>[number];

const rawAttrs = (attrs: RawAttrRecord[]): RawAttrRecord[] => attrs.map((a) => ({ type: a.type, hex: a.hex }));

// One copier per kind serves both ways while the two types have the same fields. A required field
// that only one of them has stops the build here; an optional one the codec gains is not copied
// until it is added here, to the record and to spec/journal.schema.json. Optional fields are set
// one by one, absent ones left absent (never undefined), by plain assignment: a device may have
// many routes, and a temporary object per field would cost more.

function address(a: AddressInfo | AddressRecord): AddressInfo & AddressRecord {
  const out: AddressInfo & AddressRecord = {
    family: a.family, prefixlen: a.prefixlen, flags: a.flags, scope: a.scope, address: a.address,
    preferredLifetime: a.preferredLifetime, validLifetime: a.validLifetime,
  };
  if (a.local !== undefined) out.local = a.local;
  if (a.broadcast !== undefined) out.broadcast = a.broadcast;
  if (a.label !== undefined) out.label = a.label;
  if (a.rtPriority !== undefined) out.rtPriority = a.rtPriority;
  if (a.proto !== undefined) out.proto = a.proto;
  return out;
}

export const addressRecord = (a: AddressInfo): AddressRecord => address(a);
export const addressInfo = (r: AddressRecord): AddressInfo => address(r);

/** An address as observed, with the ifindex of its link (what the planner reads). */
export const indexedAddressRecord = (a: AddressInfo & { index: number }): AddressRecord & { index: number } =>
  Object.assign({ index: a.index }, addressRecord(a));

function nexthop(nh: Nexthop | NexthopRecord): Nexthop & NexthopRecord {
  const out: Nexthop & NexthopRecord = { ifindex: nh.ifindex, flags: nh.flags, hops: nh.hops, attrs: rawAttrs(nh.attrs) };
  if (nh.gateway !== undefined) out.gateway = nh.gateway;
  return out;
}

function route(r: RouteEntry | RouteRecord): RouteEntry & RouteRecord {
  const out: RouteEntry & RouteRecord = {
    family: r.family, dstLen: r.dstLen, srcLen: r.srcLen, tos: r.tos, table: r.table, protocol: r.protocol,
    scope: r.scope, type: r.type, flags: r.flags, oif: r.oif, attrs: rawAttrs(r.attrs),
  };
  if (r.dst !== undefined) out.dst = r.dst;
  if (r.src !== undefined) out.src = r.src;
  if (r.gateway !== undefined) out.gateway = r.gateway;
  if (r.prefsrc !== undefined) out.prefsrc = r.prefsrc;
  if (r.priority !== undefined) out.priority = r.priority;
  if (r.pref !== undefined) out.pref = r.pref;
  if (r.multipath !== undefined) out.multipath = r.multipath.map(nexthop);
  if (r.nhId !== undefined) out.nhId = r.nhId;
  return out;
}

export const routeRecord = (r: RouteEntry): RouteRecord => route(r);
export const routeEntry = (r: RouteRecord): RouteEntry => route(r);

function neighbour(n: NeighbourEntry | NeighbourRecord): NeighbourEntry & NeighbourRecord {
  const out: NeighbourEntry & NeighbourRecord = { family: n.family, dst: n.dst, state: n.state, flags: n.flags, type: n.type };
  if (n.lladdr !== undefined) out.lladdr = n.lladdr;
  if (n.protocol !== undefined) out.protocol = n.protocol;
  if (n.extFlags !== undefined) out.extFlags = n.extFlags;
  return out;
}

export const neighbourRecord = (n: NeighbourEntry): NeighbourRecord => neighbour(n);

function nexthopObject(n: NexthopObject | NexthopObjectRecord): NexthopObject & NexthopObjectRecord {
  const out: NexthopObject & NexthopObjectRecord = {
    id: n.id, family: n.family, protocol: n.protocol, flags: n.flags, attrs: rawAttrs(n.attrs),
  };
  if (n.oif !== undefined) out.oif = n.oif;
  if (n.group !== undefined) out.group = n.group.map((m) => ({ id: m.id, weight: m.weight }));
  return out;
}

export const nexthopObjectRecord = (n: NexthopObject): NexthopObjectRecord => nexthopObject(n);
export const nexthopObjectOf = (r: NexthopObjectRecord): NexthopObject => nexthopObject(r);
export const neighbourEntry = (r: NeighbourRecord): NeighbourEntry => neighbour(r);

function tc(o: TcObject | TcRecord): TcObject & TcRecord {
  return { object: o.object, kind: o.kind, handle: o.handle, parent: o.parent, info: o.info, attrs: rawAttrs(o.attrs) };
}

export const tcRecord = (o: TcObject): TcRecord => tc(o);
export const tcObject = (r: TcRecord): TcObject => tc(r);

function linkSettings(l: LinkSettings | LinkSettingsRecord): LinkSettings & LinkSettingsRecord {
  const out: LinkSettings & LinkSettingsRecord = { flags: l.flags, txqlen: l.txqlen, xdp: { ...l.xdp } };
  if (l.linkMode !== undefined) out.linkMode = l.linkMode;
  if (l.broadcast !== undefined) out.broadcast = l.broadcast;
  if (l.gsoMaxSize !== undefined) out.gsoMaxSize = l.gsoMaxSize;
  if (l.gsoMaxSegs !== undefined) out.gsoMaxSegs = l.gsoMaxSegs;
  if (l.groMaxSize !== undefined) out.groMaxSize = l.groMaxSize;
  if (l.gsoIpv4MaxSize !== undefined) out.gsoIpv4MaxSize = l.gsoIpv4MaxSize;
  if (l.groIpv4MaxSize !== undefined) out.groIpv4MaxSize = l.groIpv4MaxSize;
  if (l.protoDown !== undefined) out.protoDown = l.protoDown;
  if (l.protoDownReason !== undefined) out.protoDownReason = l.protoDownReason;
  return out;
}

export const linkSettingsRecord = (l: LinkSettings): LinkSettingsRecord => linkSettings(l);
export const linkSettingsOf = (r: LinkSettingsRecord): LinkSettings => linkSettings(r);

function ethtool(e: EthtoolSettings | EthtoolRecord): EthtoolSettings & EthtoolRecord {
  const out: EthtoolSettings & EthtoolRecord = {};
  if (e.features) out.features = { wanted: { ...e.features.wanted }, active: { ...e.features.active } };
  for (const g of NUMBER_GROUP_NAMES) {
    const values = e[g];
    if (values) out[g] = { ...values };
  }
  for (const g of FLAG_GROUP_NAMES) {
    const flags = e[g];
    if (flags) out[g] = { ...flags };
  }
  return out;
}

export const ethtoolRecord = (e: EthtoolSettings): EthtoolRecord => ethtool(e);
export const ethtoolSettings = (r: EthtoolRecord): EthtoolSettings => ethtool(r);
