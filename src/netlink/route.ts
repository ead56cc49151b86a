// Routes: which links carry default routes (below), and the routes of one device, read in full so
// they can be added again after a move (further below).
//
// Default routes of a namespace: which links carry them. The planner refuses to move such a
// link, whatever the policy says: it is how the host reaches the world.
//
// A default route is a unicast route with prefix length 0 in the main table. Its output device is
// RTA_OIF, each nexthop's rtnh_ifindex in RTA_MULTIPATH, or, for a route that uses a nexthop
// object (RTA_NH_ID) and comes without those (sysctl nexthop_compat_mode=0), the NHA_OIF of that
// nexthop or of each member of that nexthop group.
//
// Over 400 lines on purpose: the default-route lookup and the device routes share the RTM_*ROUTE
// codec at the top (rtmsg, the RTA_* attributes, multipath nexthops); apart, each would need it all.

import { NetlinkSocket } from './client';
import { MessageBuilder, NlMessage, attrMap, attrU32, decodeAttrs, align4, decodeIp, encodeIp, NLMSG_HDRLEN } from './codec';
import { AF_INET, AF_INET6, AF_UNSPEC, NLM_F_CREATE, NLM_F_EXCL } from './constants';
import { DecodeError, NetlinkError } from '../errors';

export const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
export const RTM_NEWNEXTHOP = 104;
const RTM_GETNEXTHOP = 106;

const RTMSG_LEN = 12;
export const NHMSG_LEN = 8;
const RTNEXTHOP_LEN = 8;
const NEXTHOP_GRP_LEN = 8;

const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_MULTIPATH = 9;
export const RTA_TABLE = 15;
export const RTA_NH_ID = 30;

export const NHA_ID = 1;
export const NHA_GROUP = 2;
export const NHA_OIF = 5;

export const RT_TABLE_MAIN = 254;
export const RTN_UNICAST = 1;

type RouteFamily = typeof AF_INET | typeof AF_INET6;

/** One route as far as we read it. */
export interface RouteInfo {
  family: number;
  dstLen: number;
  /** RTA_TABLE when present (tables above 255), else rtm_table. */
  table: number;
  type: number;
  /** RTA_OIF, or 0. */
  oif: number;
  /** rtnh_ifindex of every RTA_MULTIPATH nexthop. */
  multipath: number[];
  /** RTA_NH_ID, or 0. */
  nhId: number;
}

/** A default route and one link it goes out of. */
export interface DefaultRoute {
  family: RouteFamily;
  index: number;
}

export interface RtMsg {
  family: number;
  dstLen?: number;
  srcLen?: number;
  tos?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  flags?: number;
}

export function encodeRtMsg(m: RtMsg): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.srcLen ?? 0, 2);
  b.writeUInt8(m.tos ?? 0, 3);
  b.writeUInt8(m.table ?? 0, 4);
  b.writeUInt8(m.protocol ?? 0, 5);
  b.writeUInt8(m.scope ?? 0, 6);
  b.writeUInt8(m.type ?? 0, 7);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  return b;
}

/** The ifindexes of an RTA_MULTIPATH payload: a run of rtnexthop, each followed by its attributes. */
export function decodeMultipath(data: Buffer): number[] {
  return decodeNexthops(data).map((nh) => nh.ifindex);
}

export function decodeRoute(m: NlMessage): RouteInfo {
  if (m.payload.length < RTMSG_LEN) throw new DecodeError(`rtmsg has ${m.payload.length} bytes`);
  const p = m.payload;
  const attrs = attrMap(decodeAttrs(p, RTMSG_LEN));
  const u32 = (t: number) => { const a = attrs.get(t); return a ? attrU32(a) : undefined; };
  const mp = attrs.get(RTA_MULTIPATH);
  return {
    family: p.readUInt8(0),
    dstLen: p.readUInt8(1),
    table: u32(RTA_TABLE) ?? p.readUInt8(4),
    type: p.readUInt8(7),
    oif: u32(RTA_OIF) ?? 0,
    multipath: mp ? decodeMultipath(mp) : [],
    nhId: u32(RTA_NH_ID) ?? 0,
  };
}

/** One nexthop object: its output link, or the ids of its group's members. */
export interface NexthopInfo {
  id: number;
  oif: number;
  group: number[];
}

export function decodeNexthop(m: NlMessage): NexthopInfo {
  if (m.payload.length < NHMSG_LEN) throw new DecodeError(`nhmsg has ${m.payload.length} bytes`);
  const attrs = attrMap(decodeAttrs(m.payload, NHMSG_LEN));
  const id = attrs.get(NHA_ID);
  const oif = attrs.get(NHA_OIF);
  const grp = attrs.get(NHA_GROUP);
  if (grp && grp.length % NEXTHOP_GRP_LEN !== 0) throw new DecodeError(`nexthop group of ${grp.length} bytes`);
  const group: number[] = [];
  for (let off = 0; grp && off < grp.length; off += NEXTHOP_GRP_LEN) group.push(grp.readUInt32LE(off));
  return { id: id ? attrU32(id) : 0, oif: oif ? attrU32(oif) : 0, group };
}

/** The output links of the default routes among `routes`, resolving nexthop objects through `nexthops`. */
export function defaultRoutesOf(routes: RouteInfo[], nexthops: NexthopInfo[] = []): DefaultRoute[] {
  const byId = new Map(nexthops.map((n) => [n.id, n]));
  const out: DefaultRoute[] = [];
  const seen = new Set<string>();
  const add = (family: RouteFamily, index: number) => {
    const key = `${family}:${index}`;
    if (index > 0 && !seen.has(key)) {
      seen.add(key);
      out.push({ family, index });
    }
  };
  for (const r of routes) {
    if (r.family !== AF_INET && r.family !== AF_INET6) continue;
    if (r.dstLen !== 0 || r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST) continue;
    const family = r.family;
    add(family, r.oif);
    for (const i of r.multipath) add(family, i);
    const nh = r.nhId ? byId.get(r.nhId) : undefined;
    if (nh) {
      add(family, nh.oif);
      // Groups hold plain nexthops only (the kernel refuses nested groups).
      for (const member of nh.group) add(family, byId.get(member)?.oif ?? 0);
    }
  }
  return out;
}

/** The main table's unicast routes out of link `index` (the kernel filters, under NETLINK_GET_STRICT_CHK). */
function dumpRoutesOf(sock: NetlinkSocket, family: RouteFamily, index: number): RouteInfo[] {
  // Older kernels send everything and defaultRoutesOf filters again.
  const req = new MessageBuilder(RTM_GETROUTE, 0).raw(encodeRtMsg({ family, table: RT_TABLE_MAIN, type: RTN_UNICAST })).u32(RTA_OIF, index);
  try {
    return sock.dump(req, { op: `list IPv${family === AF_INET ? 4 : 6} routes`, device: `#${index}` })
      .filter((m) => m.type === RTM_NEWROUTE)
      .map(decodeRoute);
  } catch (err) {
    // A namespace that never had an IPv4 route has no main table yet; the dump ends with ENOENT.
    if (err instanceof NetlinkError && err.errnoName === 'ENOENT') return [];
    throw err;
  }
}

const EOPNOTSUPP = 95;
const EAFNOSUPPORT = 97;

function dumpNexthops(sock: NetlinkSocket): NexthopInfo[] {
  return dumpNexthopMessages(sock).map(decodeNexthop);
}

/** Every nexthop object of the socket's namespace, as the kernel dumps them; none on a kernel without them. */
export function dumpNexthopMessages(sock: NetlinkSocket): NlMessage[] {
  const req = new MessageBuilder(RTM_GETNEXTHOP, 0).raw(Buffer.alloc(NHMSG_LEN, AF_UNSPEC));
  try {
    return sock.dump(req, { op: 'list nexthops' }).filter((m) => m.type === RTM_NEWNEXTHOP);
  } catch (err) {
    // A kernel without nexthop objects has no routes that use them either.
    // (By number: errno 95 is named ENOTSUP as well as EOPNOTSUPP.)
    if (err instanceof NetlinkError && (err.errno === EOPNOTSUPP || err.errno === EAFNOSUPPORT)) return [];
    throw err;
  }
}

/** RTM_GETROUTE: answer with the routing table entry the lookup matched, not a route made from it. */
const RTM_F_FIB_MATCH = 0x2000;
const EHOSTUNREACH = 113;
const ENETUNREACH = 101;
/**
 * Per family, a destination that in practice only a default route covers: the last address below
 * the IPv4 limited broadcast, and the IPv6 unspecified address (IPv4's, 0.0.0.0, is looked up as
 * a local address).
 */
const PROBE = { [AF_INET]: '255.255.255.254', [AF_INET6]: '::' } as const;

/**
 * Which of the links `indexes` carry a default route in the socket's namespace, without reading
 * the routing table: a host with a million routes pays for a lookup per link and family, not for
 * the table. The kernel's own lookup (RTM_GETROUTE, RTM_F_FIB_MATCH) of the probe, out of that
 * link only (RTA_OIF), names the entry it matched. A default route of the main table there is the
 * answer; a miss (EHOSTUNREACH, ENETUNREACH) means none. Anything else (a more specific route that
 * covers the probe, a rule that looks in another table first, an older kernel without
 * RTM_F_FIB_MATCH) is read from the main table's routes out of that link, which the kernel filters.
 * A lookup stops at a reject route (unreachable, blackhole), so a default route behind one of a
 * lower metric is not seen; the kernel would not route through it either.
 */
export function defaultRoutesThrough(sock: NetlinkSocket, indexes: number[]): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  for (const index of new Set(indexes)) {
    for (const family of [AF_INET, AF_INET6] as const) {
      const req = new MessageBuilder(RTM_GETROUTE, 0)
        .raw(encodeRtMsg({ family, dstLen: family === AF_INET ? 32 : 128, flags: RTM_F_FIB_MATCH }))
        .attr(RTA_DST, encodeIp(PROBE[family]))
        .u32(RTA_OIF, index);
      let matched: RouteInfo | undefined;
      try {
        matched = sock.request(req, { op: `look up the default route (IPv${family === AF_INET ? 4 : 6})`, device: `#${index}` })
          .filter((m) => m.type === RTM_NEWROUTE).map(decodeRoute)[0];
      } catch (err) {
        if (!(err instanceof NetlinkError)) throw err;
        if (err.errno === EHOSTUNREACH || err.errno === ENETUNREACH) continue;
      }
      if (matched && matched.dstLen === 0 && matched.table === RT_TABLE_MAIN && matched.type === RTN_UNICAST) {
        out.push({ family, index });
        continue;
      }
      const routes = dumpRoutesOf(sock, family, index);
      const unresolved = routes.some((r) => r.dstLen === 0 && r.nhId && !r.oif && !r.multipath.length);
      for (const d of defaultRoutesOf(routes, unresolved ? dumpNexthops(sock) : [])) {
        if (!out.some((o) => o.family === d.family && o.index === d.index)) out.push(d);
      }
    }
  }
  return out;
}

// ---- The routes of one device, in every table and both families ----

const RTA_SRC = 2;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_CACHEINFO = 12;
const RTA_MFC_STATS = 17;
const RTA_PREF = 20;
const RTA_EXPIRES = 23;
const RTA_PAD = 24;

const RTPROT_KERNEL = 2;
/** Installed by an administrator: the routes a config asks for. */
export const RTPROT_STATIC = 4;
const RTPROT_RA = 9;
/** rtm_table for a table above 255, which then goes in RTA_TABLE. */
const RT_TABLE_COMPAT = 252;
const RTM_F_CLONED = 0x200;
/** The one rtm_flags / rtnh_flags bit a caller may set; the others (dead, linkdown, offload) are kernel state. */
const RTNH_F_ONLINK = 0x4;
export const NLM_F_APPEND = 0x800;

/** An attribute kept as it came, to send back unchanged. */
interface RawAttr {
  type: number;
  hex: string;
}

/** One nexthop of a multipath route. */
interface RouteNexthop {
  ifindex: number;
  flags: number;
  hops: number;
  gateway?: string;
  /** Its other attributes (RTA_VIA, RTA_FLOW, RTA_ENCAP, ...). */
  attrs: RawAttr[];
}

/** One route with everything needed to add it again; JSON-safe so it fits in the journal. */
export interface RouteEntry {
  family: RouteFamily;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
  dst?: string;
  src?: string;
  gateway?: string;
  prefsrc?: string;
  /** RTA_PRIORITY: the metric. */
  priority?: number;
  /** RTA_PREF: IPv6 router preference. */
  pref?: number;
  /** RTA_OIF, or 0. */
  oif: number;
  multipath?: RouteNexthop[];
  nhId?: number;
  /** RTA_METRICS (mtu, window, congestion control, ...) and any other attribute, as they came. */
  attrs: RawAttr[];
}

/** Attributes that only describe the route's current life, never sent back. */
const DUMP_ONLY = new Set([RTA_CACHEINFO, RTA_MFC_STATS, RTA_EXPIRES, RTA_PAD]);
const TYPED = new Set([RTA_DST, RTA_SRC, RTA_GATEWAY, RTA_PREFSRC, RTA_PRIORITY, RTA_PREF, RTA_OIF, RTA_TABLE, RTA_MULTIPATH, RTA_NH_ID]);

const raw = (type: number, data: Buffer): RawAttr => ({ type, hex: data.toString('hex') });

/** An RTA_MULTIPATH payload in full. */
function decodeNexthops(data: Buffer): RouteNexthop[] {
  const out: RouteNexthop[] = [];
  let off = 0;
  while (off + RTNEXTHOP_LEN <= data.length) {
    const len = data.readUInt16LE(off);
    if (len < RTNEXTHOP_LEN || off + len > data.length) {
      throw new DecodeError(`rtnexthop length ${len} at offset ${off} overruns ${data.length} bytes`);
    }
    const nh: RouteNexthop = { ifindex: data.readInt32LE(off + 4), flags: data.readUInt8(off + 2), hops: data.readUInt8(off + 3), attrs: [] };
    for (const a of decodeAttrs(data.subarray(off + RTNEXTHOP_LEN, off + len))) {
      if (a.type === RTA_GATEWAY) nh.gateway = decodeIp(a.data);
      else nh.attrs.push(raw(a.type, a.data));
    }
    out.push(nh);
    off += align4(len);
  }
  return out;
}

export function decodeRouteEntry(m: NlMessage): RouteEntry {
  if (m.payload.length < RTMSG_LEN) throw new DecodeError(`rtmsg has ${m.payload.length} bytes`);
  const p = m.payload;
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) throw new DecodeError(`route of address family ${family}`);
  const all = decodeAttrs(p, RTMSG_LEN);
  const attrs = attrMap(all);
  const ip = (t: number) => { const a = attrs.get(t); return a ? decodeIp(a) : undefined; };
  const u32 = (t: number) => { const a = attrs.get(t); return a ? attrU32(a) : undefined; };
  const r: RouteEntry = {
    family,
    dstLen: p.readUInt8(1),
    srcLen: p.readUInt8(2),
    tos: p.readUInt8(3),
    table: u32(RTA_TABLE) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
    flags: p.readUInt32LE(8),
    oif: u32(RTA_OIF) ?? 0,
    attrs: all.filter((a) => !TYPED.has(a.type) && !DUMP_ONLY.has(a.type)).map((a) => raw(a.type, a.data)),
  };
  const set = <K extends keyof RouteEntry>(k: K, v: RouteEntry[K] | undefined) => { if (v !== undefined) r[k] = v; };
  set('dst', ip(RTA_DST));
  set('src', ip(RTA_SRC));
  set('gateway', ip(RTA_GATEWAY));
  set('prefsrc', ip(RTA_PREFSRC));
  set('priority', u32(RTA_PRIORITY));
  const pref = attrs.get(RTA_PREF);
  if (pref?.length) r.pref = pref.readUInt8(0);
  const mp = attrs.get(RTA_MULTIPATH);
  if (mp) r.multipath = decodeNexthops(mp);
  set('nhId', u32(RTA_NH_ID));
  return r;
}

/**
 * Whether the kernel made the route itself and makes it again once the device is home and up:
 * prefix routes of addresses, local/broadcast/anycast/multicast entries, fe80::/64 and ff00::/8
 * (all proto kernel), routes learned from router advertisements, and cached clones.
 */
export function isKernelRoute(r: RouteEntry): boolean {
  return r.protocol === RTPROT_KERNEL || r.protocol === RTPROT_RA || (r.flags & RTM_F_CLONED) !== 0;
}

/** Whether the route goes out of link `index`: RTA_OIF or any multipath nexthop. */
const routeUses = (r: RouteEntry, index: number): boolean =>
  r.oif === index || (r.multipath ?? []).some((nh) => nh.ifindex === index);

/**
 * The routes of link `index`, every table, both families, without the ones the kernel makes itself.
 * The kernel filters by RTA_OIF (multipath nexthops included) under NETLINK_GET_STRICT_CHK, so a
 * large routing table is not read whole; older kernels send everything and we filter again.
 */
export function listDeviceRoutes(sock: NetlinkSocket, index: number): RouteEntry[] {
  const out: RouteEntry[] = [];
  for (const family of [AF_INET, AF_INET6] as const) {
    const req = new MessageBuilder(RTM_GETROUTE, 0).raw(encodeRtMsg({ family })).u32(RTA_OIF, index);
    for (const m of sock.dump(req, { op: `list IPv${family === AF_INET ? 4 : 6} routes`, device: `#${index}` })) {
      if (m.type !== RTM_NEWROUTE) continue;
      const r = decodeRouteEntry(m);
      if (routeUses(r, index) && !isKernelRoute(r)) out.push(r);
    }
  }
  return out;
}

function encodeNexthops(nexthops: RouteNexthop[], ifindex: (i: number) => number): Buffer {
  return Buffer.concat(nexthops.map((nh) => {
    const b = new MessageBuilder(0, 0);
    if (nh.gateway !== undefined) b.attr(RTA_GATEWAY, encodeIp(nh.gateway));
    for (const a of nh.attrs) b.attr(a.type, Buffer.from(a.hex, 'hex'));
    const body = b.finish(0).subarray(NLMSG_HDRLEN);
    const hdr = Buffer.alloc(RTNEXTHOP_LEN);
    hdr.writeUInt16LE(RTNEXTHOP_LEN + body.length, 0);
    hdr.writeUInt8(nh.flags & RTNH_F_ONLINK, 2);
    hdr.writeUInt8(nh.hops, 3);
    hdr.writeInt32LE(ifindex(nh.ifindex), 4);
    return Buffer.concat([hdr, body]);
  }));
}

/**
 * The request that adds `r` again on link `own`, today's index of the link it was recorded on as
 * `recordedIndex` (a device that comes back may get a new index). IPv4 deletes a whole multipath
 * route when one of its links leaves, so it is added whole; IPv6 keeps the nexthops on other links,
 * so only the nexthops on `own` are sent, appended to what is left.
 */
export function routeMessage(r: RouteEntry, recordedIndex: number, own: number): MessageBuilder {
  const ifindex = (i: number) => (i === recordedIndex ? own : i);
  const v6Multipath = r.family === AF_INET6 && r.multipath !== undefined;
  const req = new MessageBuilder(RTM_NEWROUTE, NLM_F_CREATE | (v6Multipath ? NLM_F_APPEND : NLM_F_EXCL)).raw(encodeRtMsg({
    family: r.family, dstLen: r.dstLen, srcLen: r.srcLen, tos: r.tos, table: r.table > 255 ? RT_TABLE_COMPAT : r.table,
    protocol: r.protocol, scope: r.scope, type: r.type, flags: r.flags & RTNH_F_ONLINK,
  }));
  req.u32(RTA_TABLE, r.table);
  if (r.dst !== undefined) req.attr(RTA_DST, encodeIp(r.dst));
  if (r.src !== undefined) req.attr(RTA_SRC, encodeIp(r.src));
  // A route through a nexthop object names only the object: the kernel refuses it with the
  // output link and gateway it reports alongside (nexthop_compat_mode).
  const viaObject = r.nhId !== undefined;
  if (r.oif && !viaObject) req.u32(RTA_OIF, ifindex(r.oif));
  if (r.gateway !== undefined && !viaObject) req.attr(RTA_GATEWAY, encodeIp(r.gateway));
  if (r.prefsrc !== undefined) req.attr(RTA_PREFSRC, encodeIp(r.prefsrc));
  if (r.priority !== undefined) req.u32(RTA_PRIORITY, r.priority);
  if (r.pref !== undefined) req.u8(RTA_PREF, r.pref);
  if (r.nhId !== undefined) req.u32(RTA_NH_ID, r.nhId);
  if (r.multipath && !viaObject) {
    const hops = v6Multipath ? r.multipath.filter((nh) => nh.ifindex === recordedIndex) : r.multipath;
    req.attr(RTA_MULTIPATH, encodeNexthops(hops, ifindex));
  }
  for (const a of r.attrs) req.attr(a.type, Buffer.from(a.hex, 'hex'));
  return req;
}

/** "10.1.0.0/16 via 192.0.2.1 table 100 metric 10", to name a route in messages. */
export function describeRoute(r: RouteEntry): string {
  const dst = r.dst !== undefined ? `${r.dst}/${r.dstLen}` : 'default';
  const via = r.gateway ?? r.multipath?.map((nh) => nh.gateway).filter(Boolean).join(',');
  return [
    dst, via ? `via ${via}` : '', r.table !== RT_TABLE_MAIN ? `table ${r.table}` : '', r.priority !== undefined ? `metric ${r.priority}` : '',
  ].filter(Boolean).join(' ');
}

/** Adds a recorded route on link `own` (today's index of the device it was recorded on). EEXIST is the caller's to judge. */
export function addRoute(sock: NetlinkSocket, r: RouteEntry, recordedIndex: number, own: number, ctx: { op: string; device: string }): void {
  sock.request(routeMessage(r, recordedIndex, own), { ...ctx, op: `${ctx.op} ${describeRoute(r)}` });
}
