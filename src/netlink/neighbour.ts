// The neighbour entries (ARP and NDP) of one link that someone configured, the kernel's own
// learning aside: permanent, noarp, externally learned and managed entries, and proxy entries.
// Dumped before a move, which deletes them all, and added again after.

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
/** u32 of NTF_EXT_* flags (Linux 5.16). */
const NDA_FLAGS_EXT = 15;

const NUD_NONE = 0;
const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
/** ndm_flags: a proxy entry (answered for, not resolved), in a table of its own. */
const NTF_PROXY = 0x08;
/** ndm_flags: set by a control plane (a routing daemon, EVPN), never aged out by the kernel. */
const NTF_EXT_LEARNED = 0x10;
/** ndm_flags: an IPv6 neighbour that is a router. */
const NTF_ROUTER = 0x80;
/** The ndm_flags bits an entry is added again with; the rest is kernel state. */
const KEPT_FLAGS = NTF_PROXY | NTF_EXT_LEARNED | NTF_ROUTER;
/** NDA_FLAGS_EXT: the kernel keeps the entry resolved itself (`ip neigh add ... managed`). */
const NTF_EXT_MANAGED = 0x01;

/** One neighbour entry; JSON-safe. */
export interface NeighbourEntry {
  family: typeof AF_INET | typeof AF_INET6;
  dst: string;
  /** Link-layer address as colon-separated hex; absent for an entry without one. */
  lladdr?: string;
  state: number;
  flags: number;
  type: number;
  protocol?: number;
  /** NDA_FLAGS_EXT, where the kernel reported any. */
  extFlags?: number;
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
  const ext = attrs.get(NDA_FLAGS_EXT);
  if (ext && ext.length >= 4) out.extFlags = ext.readUInt32LE(0);
  return out;
}

/** Whether a link-layer address is a group one (multicast, broadcast): the kernel's mapping of a multicast or broadcast destination. */
const groupAddress = (lladdr: string | undefined) => lladdr !== undefined && (parseInt(lladdr.slice(0, 2), 16) & 1) === 1;

/**
 * Whether someone configured the entry: permanent, noarp (but for the ones the kernel makes for
 * multicast and broadcast destinations), externally learned, managed or proxy. Entries the kernel
 * resolved by itself (reachable, stale, ...) are learned again after the move.
 */
function configured(n: NeighbourEntry): boolean {
  if (n.state & NUD_PERMANENT || n.flags & (NTF_PROXY | NTF_EXT_LEARNED) || (n.extFlags ?? 0) & NTF_EXT_MANAGED) return true;
  return (n.state & NUD_NOARP) !== 0 && !groupAddress(n.lladdr);
}

/**
 * The configured entries of link `index` (see configured()), both families, proxy entries too (a
 * dump of their own). The kernel filters by NDA_IFINDEX; we check again.
 */
export function listConfiguredNeighbours(sock: NetlinkSocket, index: number): NeighbourEntry[] {
  const dump = (flags: number) => {
    const req = new MessageBuilder(RTM_GETNEIGH, 0).raw(encodeNdMsg({ family: AF_UNSPEC, flags })).u32(NDA_IFINDEX, index);
    return sock.dump(req, { op: flags ? 'list proxy neighbours' : 'list neighbours', device: `#${index}` })
      .filter((m) => m.type === RTM_NEWNEIGH)
      .map(decodeNeighbour)
      .filter((n) => n.index === index && configured(n))
      .map(({ index: _i, ...n }) => n);
  };
  return [...dump(0), ...dump(NTF_PROXY)];
}

/**
 * The request that adds `n` again on link `index`: with its state (a managed entry with none, and
 * without its link-layer address, both the kernel's to find), the flags in KEPT_FLAGS and managed.
 */
export function neighbourMessage(n: NeighbourEntry, index: number): MessageBuilder {
  const managed = ((n.extFlags ?? 0) & NTF_EXT_MANAGED) !== 0;
  const req = new MessageBuilder(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL).raw(
    encodeNdMsg({ family: n.family, index, state: managed ? NUD_NONE : n.state, flags: n.flags & KEPT_FLAGS, type: n.type }),
  );
  req.attr(NDA_DST, encodeIp(n.dst));
  if (n.lladdr !== undefined && !managed) req.attr(NDA_LLADDR, parseMac(n.lladdr));
  if (n.protocol !== undefined) req.u8(NDA_PROTOCOL, n.protocol);
  if (managed) req.u32(NDA_FLAGS_EXT, NTF_EXT_MANAGED);
  return req;
}

/** "neighbour 192.0.2.1", "proxy neighbour 2001:db8::9", for messages. */
export const describeNeighbour = (n: NeighbourEntry): string => `${n.flags & NTF_PROXY ? 'proxy ' : ''}neighbour ${n.dst}`;

/** Adds an entry on link `index`. EEXIST is the caller's to judge. */
export function addNeighbour(sock: NetlinkSocket, n: NeighbourEntry, index: number, ctx: { op: string; device: string }): void {
  sock.request(neighbourMessage(n, index), { ...ctx, op: `${ctx.op} ${n.dst}` });
}
