// Permanent neighbour entries (ARP and NDP) of one link: dump, and add again after a move.

import { NetlinkSocket } from './client';
import { MessageBuilder, NlMessage, attrMap, decodeAttrs, decodeIp, formatMac, encodeIp, parseMac } from './codec';
import { AF_INET, AF_INET6, AF_UNSPEC, NLM_F_CREATE, NLM_F_EXCL } from './constants';
import { DecodeError } from '../errors';

export const RTM_NEWNEIGH = 28;
const RTM_GETNEIGH = 30;
const NDMSG_LEN = 12;

export const NDA_DST = 1;
export const NDA_LLADDR = 2;
const NDA_IFINDEX = 8;
export const NDA_PROTOCOL = 12;

export const NUD_PERMANENT = 0x80;
/** The one ndm_flags bit kept: an IPv6 neighbour that is a router. The rest is kernel state or proxy/fdb. */
const NTF_ROUTER = 0x80;

/** One permanent neighbour entry; JSON-safe. */
export interface NeighbourEntry {
  family: typeof AF_INET | typeof AF_INET6;
  dst: string;
  /** Link-layer address as colon-separated hex; absent for an entry without one. */
  lladdr?: string;
  state: number;
  flags: number;
  type: number;
  protocol?: number;
}

export function encodeNdMsg(m: { family: number; index?: number; state?: number; flags?: number; type?: number }): Buffer {
  const b = Buffer.alloc(NDMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt16LE(m.state ?? 0, 8);
  b.writeUInt8(m.flags ?? 0, 10);
  b.writeUInt8(m.type ?? 0, 11);
  return b;
}

export function decodeNeighbour(m: NlMessage): NeighbourEntry & { index: number } {
  const p = m.payload;
  if (p.length < NDMSG_LEN) throw new DecodeError(`ndmsg has ${p.length} bytes`);
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) throw new DecodeError(`neighbour of address family ${family}`);
  const attrs = attrMap(decodeAttrs(p, NDMSG_LEN));
  const dst = attrs.get(NDA_DST);
  if (!dst) throw new DecodeError('neighbour without NDA_DST');
  const out: NeighbourEntry & { index: number } = {
    index: p.readInt32LE(4),
    family,
    dst: decodeIp(dst),
    state: p.readUInt16LE(8),
    flags: p.readUInt8(10),
    type: p.readUInt8(11),
  };
  const ll = attrs.get(NDA_LLADDR);
  if (ll?.length) out.lladdr = formatMac(ll);
  const proto = attrs.get(NDA_PROTOCOL);
  if (proto?.length) out.protocol = proto.readUInt8(0);
  return out;
}

/** The permanent entries of link `index`, both families (the kernel filters by NDA_IFINDEX; we check again). */
export function listPermanentNeighbours(sock: NetlinkSocket, index: number): NeighbourEntry[] {
  const req = new MessageBuilder(RTM_GETNEIGH, 0).raw(encodeNdMsg({ family: AF_UNSPEC })).u32(NDA_IFINDEX, index);
  return sock.dump(req, { op: 'list neighbours', device: `#${index}` })
    .filter((m) => m.type === RTM_NEWNEIGH)
    .map(decodeNeighbour)
    .filter((n) => n.index === index && (n.state & NUD_PERMANENT) !== 0)
    .map(({ index: _i, ...n }) => n);
}

export function neighbourMessage(n: NeighbourEntry, index: number): MessageBuilder {
  const req = new MessageBuilder(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL).raw(
    encodeNdMsg({ family: n.family, index, state: NUD_PERMANENT, flags: n.flags & NTF_ROUTER, type: n.type }),
  );
  req.attr(NDA_DST, encodeIp(n.dst));
  if (n.lladdr !== undefined) req.attr(NDA_LLADDR, parseMac(n.lladdr));
  if (n.protocol !== undefined) req.u8(NDA_PROTOCOL, n.protocol);
  return req;
}

/** Adds a permanent entry on link `index`. EEXIST is the caller's to judge. */
export function addNeighbour(sock: NetlinkSocket, n: NeighbourEntry, index: number, ctx: { op: string; device: string }): void {
  sock.request(neighbourMessage(n, index), { ...ctx, op: `${ctx.op} ${n.dst}` });
}
