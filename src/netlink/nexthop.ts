// Nexthop objects (`ip nexthop`) of one link, read in full so they can be made again after a move:
// the kernel deletes a nexthop whose output link leaves the namespace, takes it out of the groups
// that hold it (a group left empty goes too) and deletes the routes through what it deleted.

import { NetlinkSocket } from './client';
import { MessageBuilder, NlMessage, NLMSG_HDRLEN, attrMap, attrU32, decodeAttrs } from './codec';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE } from './constants';
import { DecodeError } from '../errors';
import { dumpNexthopMessages, NHA_GROUP, NHA_ID, NHA_OIF, NHMSG_LEN, RTM_NEWNEXTHOP } from './route';

const NHA_GROUPS = 9;
const NHA_MASTER = 10;
const NHA_RES_GROUP = 12;
const NHA_RES_BUCKET = 13;
const NHA_OP_FLAGS = 14;
const NHA_GROUP_STATS = 15;
const NHA_HW_STATS_USED = 17;
/** Attributes of a dump (filters, counters, a resilient group's buckets), never sent back. */
const DUMP_ONLY = new Set([NHA_GROUPS, NHA_MASTER, NHA_RES_BUCKET, NHA_OP_FLAGS, NHA_GROUP_STATS, NHA_HW_STATS_USED]);
/** The settable attributes of NHA_RES_GROUP (buckets, idle timer, unbalanced timer); the rest is state. */
const RES_GROUP_SETTABLE = 3;
/** The one nh_flags bit a caller may set; the others (dead, linkdown, offload) are kernel state. */
const RTNH_F_ONLINK = 0x4;
/** struct nexthop_grp: id (u32), weight (u8), weight_high (u8), reserved (u16). */
const NEXTHOP_GRP_LEN = 8;

/** One member of a nexthop group: its id and weight as the kernel keeps it (weight_high << 8 | weight). */
export interface GroupMember {
  id: number;
  weight: number;
}

/** One nexthop object with everything needed to make it again; JSON-safe. */
export interface NexthopObject {
  id: number;
  family: number;
  protocol: number;
  flags: number;
  /** NHA_OIF: the output link; absent for a group. */
  oif?: number;
  /** NHA_GROUP: the members of a group. */
  group?: GroupMember[];
  /** Its other attributes (gateway, encapsulation, group type, fdb, ...), as they came. */
  attrs: { type: number; hex: string }[];
}

function decodeGroup(data: Buffer): GroupMember[] {
  if (data.length % NEXTHOP_GRP_LEN !== 0) throw new DecodeError(`nexthop group of ${data.length} bytes`);
  const out: GroupMember[] = [];
  for (let off = 0; off < data.length; off += NEXTHOP_GRP_LEN) out.push({ id: data.readUInt32LE(off), weight: data.readUInt16LE(off + 4) });
  return out;
}

function encodeGroup(members: GroupMember[]): Buffer {
  const b = Buffer.alloc(members.length * NEXTHOP_GRP_LEN);
  members.forEach((m, i) => {
    b.writeUInt32LE(m.id, i * NEXTHOP_GRP_LEN);
    b.writeUInt16LE(m.weight, i * NEXTHOP_GRP_LEN + 4);
  });
  return b;
}

/** A resilient group's settings without its state (NHA_RES_GROUP_UNBALANCED_TIME). */
function settableResGroup(data: Buffer): Buffer {
  const b = new MessageBuilder(0, 0);
  for (const a of decodeAttrs(data)) if (a.type <= RES_GROUP_SETTABLE) b.attr(a.type, a.data);
  return b.finish(0).subarray(NLMSG_HDRLEN);
}

export function decodeNexthopObject(m: NlMessage): NexthopObject {
  const p = m.payload;
  if (p.length < NHMSG_LEN) throw new DecodeError(`nhmsg has ${p.length} bytes`);
  const all = decodeAttrs(p, NHMSG_LEN);
  const attrs = attrMap(all);
  const id = attrs.get(NHA_ID);
  if (!id) throw new DecodeError('nexthop without NHA_ID');
  // nh_scope is the kernel's to work out (it refuses one in a request).
  const out: NexthopObject = { id: attrU32(id), family: p.readUInt8(0), protocol: p.readUInt8(2), flags: p.readUInt32LE(4), attrs: [] };
  const oif = attrs.get(NHA_OIF);
  if (oif) out.oif = attrU32(oif);
  const group = attrs.get(NHA_GROUP);
  if (group) out.group = decodeGroup(group);
  for (const a of all) {
    if (a.type === NHA_ID || a.type === NHA_OIF || a.type === NHA_GROUP || DUMP_ONLY.has(a.type)) continue;
    out.attrs.push({ type: a.type, hex: (a.type === NHA_RES_GROUP ? settableResGroup(a.data) : a.data).toString('hex') });
  }
  return out;
}

/**
 * The nexthop objects that go out of link `index`, then the groups that hold any of them: what the
 * kernel deletes, or changes, when the link leaves. [] on a kernel without nexthop objects.
 */
export function listDeviceNexthops(sock: NetlinkSocket, index: number): NexthopObject[] {
  const all = dumpNexthopMessages(sock).map(decodeNexthopObject);
  const own = all.filter((n) => n.oif === index);
  const ids = new Set(own.map((n) => n.id));
  return [...own, ...all.filter((n) => n.group?.some((m) => ids.has(m.id)))];
}

/** Every nexthop object of the socket's namespace, by id. */
export function nexthopsById(sock: NetlinkSocket): Map<number, NexthopObject> {
  return new Map(dumpNexthopMessages(sock).map(decodeNexthopObject).map((n) => [n.id, n]));
}

/**
 * The request that makes `n` again, out of link `own` where it went out of `recordedIndex` (the
 * device may come back under another ifindex); a group with `members` (what is there now and the
 * recorded ones, for a group that lived on without them), replacing the group of that id.
 */
export function nexthopMessage(n: NexthopObject, recordedIndex: number, own: number, members?: GroupMember[]): MessageBuilder {
  const replace = members !== undefined;
  const hdr = Buffer.alloc(NHMSG_LEN);
  hdr.writeUInt8(n.family, 0);
  hdr.writeUInt8(n.protocol, 2);
  hdr.writeUInt32LE(n.flags & RTNH_F_ONLINK, 4);
  const req = new MessageBuilder(RTM_NEWNEXTHOP, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL)).raw(hdr).u32(NHA_ID, n.id);
  if (n.oif !== undefined) req.u32(NHA_OIF, n.oif === recordedIndex ? own : n.oif);
  const group = members ?? n.group;
  if (group) req.attr(NHA_GROUP, encodeGroup(group));
  for (const a of n.attrs) req.attr(a.type, Buffer.from(a.hex, 'hex'));
  return req;
}

/** "nexthop 5", "nexthop group 7", for messages. */
export const describeNexthop = (n: NexthopObject): string => `nexthop ${n.group ? 'group ' : ''}${n.id}`;

/** Makes `n` again (see nexthopMessage). EEXIST is the caller's to judge. */
export function addNexthop(sock: NetlinkSocket, n: NexthopObject, recordedIndex: number, own: number, ctx: { op: string; device: string }, members?: GroupMember[]): void {
  sock.request(nexthopMessage(n, recordedIndex, own, members), { ...ctx, op: `${ctx.op} ${describeNexthop(n)}` });
}
