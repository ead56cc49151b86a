// Default routes of a namespace: which links carry them. The planner refuses to move such a
// link, whatever the policy says: it is how the host reaches the world.
//
// A default route is a unicast route with prefix length 0 in the main table. Its output device is
// RTA_OIF, each nexthop's rtnh_ifindex in RTA_MULTIPATH, or, for a route that uses a nexthop
// object (RTA_NH_ID) and comes without those (sysctl nexthop_compat_mode=0), the NHA_OIF of that
// nexthop or of each member of that nexthop group.

import { NetlinkSocket } from './client';
import { MessageBuilder, NlMessage, attrMap, attrU32, decodeAttrs, align4 } from './codec';
import { AF_INET, AF_INET6, AF_UNSPEC } from './constants';
import { DecodeError, NetlinkError } from '../errors';

export const RTM_NEWROUTE = 24;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEXTHOP = 104;
export const RTM_GETNEXTHOP = 106;

export const RTMSG_LEN = 12;
export const NHMSG_LEN = 8;
export const RTNEXTHOP_LEN = 8;
export const NEXTHOP_GRP_LEN = 8;

export const RTA_DST = 1;
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

export type RouteFamily = typeof AF_INET | typeof AF_INET6;

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

export function encodeRtMsg(m: { family: number; table?: number; type?: number }): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.table ?? 0, 4);
  b.writeUInt8(m.type ?? 0, 7);
  return b;
}

/** The ifindexes of an RTA_MULTIPATH payload: a run of rtnexthop, each followed by its attributes. */
export function decodeMultipath(data: Buffer): number[] {
  const out: number[] = [];
  let off = 0;
  while (off + RTNEXTHOP_LEN <= data.length) {
    const len = data.readUInt16LE(off);
    if (len < RTNEXTHOP_LEN || off + len > data.length) {
      throw new DecodeError(`rtnexthop length ${len} at offset ${off} overruns ${data.length} bytes`);
    }
    out.push(data.readInt32LE(off + 4));
    // Its attributes (RTA_GATEWAY, ...) must be well-formed too.
    decodeAttrs(data.subarray(off + RTNEXTHOP_LEN, off + len));
    off += align4(len);
  }
  return out;
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
    const family = r.family as RouteFamily;
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

function dumpRoutes(sock: NetlinkSocket, family: RouteFamily): RouteInfo[] {
  // With NETLINK_GET_STRICT_CHK the kernel filters by table and type itself; older kernels send
  // everything and defaultRoutesOf filters again.
  const req = new MessageBuilder(RTM_GETROUTE, 0).raw(encodeRtMsg({ family, table: RT_TABLE_MAIN, type: RTN_UNICAST }));
  try {
    return sock.dump(req, { op: `list IPv${family === AF_INET ? 4 : 6} routes` })
      .filter((m) => m.type === RTM_NEWROUTE)
      .map(decodeRoute);
  } catch (err) {
    // A namespace that never had an IPv4 route has no main table yet; the dump ends with ENOENT.
    if (err instanceof NetlinkError && err.code === 'ENOENT') return [];
    throw err;
  }
}

const EOPNOTSUPP = 95;
const EAFNOSUPPORT = 97;

function dumpNexthops(sock: NetlinkSocket): NexthopInfo[] {
  const req = new MessageBuilder(RTM_GETNEXTHOP, 0).raw(Buffer.alloc(NHMSG_LEN, AF_UNSPEC));
  try {
    return sock.dump(req, { op: 'list nexthops' }).filter((m) => m.type === RTM_NEWNEXTHOP).map(decodeNexthop);
  } catch (err) {
    // A kernel without nexthop objects has no routes that use them either.
    // (By number: errno 95 is named ENOTSUP as well as EOPNOTSUPP.)
    if (err instanceof NetlinkError && (err.errno === EOPNOTSUPP || err.errno === EAFNOSUPPORT)) return [];
    throw err;
  }
}

/** Every (family, link) pair that carries a default route in the socket's namespace. */
export function listDefaultRoutes(sock: NetlinkSocket): DefaultRoute[] {
  const routes = [...dumpRoutes(sock, AF_INET), ...dumpRoutes(sock, AF_INET6)];
  const unresolved = routes.some((r) => r.dstLen === 0 && r.nhId && !r.oif && !r.multipath.length);
  return defaultRoutesOf(routes, unresolved ? dumpNexthops(sock) : []);
}
