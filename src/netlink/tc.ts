// Traffic control of one link: its qdiscs, classes and filters, dumped and created again after a
// move (the kernel gives a device that changes namespace its default qdisc again).
//
// An object is replayed as the kernel dumped it: kind, handle, parent, and the attributes that
// configure it (TCA_OPTIONS, TCA_STAB, TCA_CHAIN, the shared-block indexes), on the new ifindex.
// That covers every qdisc and class whose dump is in the form its creation takes (pfifo, bfifo,
// tbf, htb and its classes, ingress, clsact, ...; prio's and mq's own classes exist by themselves),
// and filters likewise, with the offload state the kernel reports in their flags cut off (u32
// hash tables and keys; flower, matchall and bpf the same way). Objects whose dump differs from
// their creation (actions with their own state, for one) may be refused: the caller names each.

import { NetlinkSocket } from './client';
import { MessageBuilder, NlMessage, NLMSG_HDRLEN, attrMap, attrString, decodeAttrs } from './codec';
import { AF_UNSPEC, NLM_F_CREATE, NLM_F_EXCL } from './constants';
import { DecodeError } from '../errors';

export const RTM_NEWQDISC = 36;
const RTM_GETQDISC = 38;
export const RTM_NEWTCLASS = 40;
const RTM_GETTCLASS = 42;
export const RTM_NEWTFILTER = 44;
const RTM_GETTFILTER = 46;
const TCMSG_LEN = 20;

export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
const TCA_STAB = 8;
const TCA_CHAIN = 11;
const TCA_INGRESS_BLOCK = 13;
const TCA_EGRESS_BLOCK = 14;
/** The attributes that configure an object; the rest (statistics, offload state) are read-only. */
const REPLAYED = [TCA_OPTIONS, TCA_STAB, TCA_CHAIN, TCA_INGRESS_BLOCK, TCA_EGRESS_BLOCK];

export const TC_H_ROOT = 0xffffffff;
/** Parent of the ingress and clsact qdiscs. */
export const TC_H_INGRESS = 0xfffffff1;
const TC_H_MIN_INGRESS = 0xfff2;
const TC_H_MIN_EGRESS = 0xfff3;
const major = (h: number): number => (h & 0xffff0000) >>> 0;
const minor = (h: number): number => h & 0xffff;

export type TcObjectKind = 'qdisc' | 'class' | 'filter';

/** One qdisc, class or filter; JSON-safe. */
export interface TcObject {
  object: TcObjectKind;
  /** TCA_KIND: "pfifo", "htb", "fw", ... */
  kind: string;
  handle: number;
  parent: number;
  /** tcm_info: for a filter, its priority (high 16 bits) and protocol (low 16, network order). */
  info: number;
  /** The configuring attributes, as hex. */
  attrs: { type: number; hex: string }[];
}

export function encodeTcMsg(m: { index: number; handle?: number; parent?: number; info?: number }): Buffer {
  const b = Buffer.alloc(TCMSG_LEN);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(m.index, 4);
  b.writeUInt32LE((m.handle ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.parent ?? 0) >>> 0, 12);
  b.writeUInt32LE((m.info ?? 0) >>> 0, 16);
  return b;
}

export function decodeTcObject(m: NlMessage, object: TcObjectKind): TcObject & { index: number } {
  const p = m.payload;
  if (p.length < TCMSG_LEN) throw new DecodeError(`tcmsg has ${p.length} bytes`);
  const all = decodeAttrs(p, TCMSG_LEN);
  const kind = attrMap(all).get(TCA_KIND);
  return {
    index: p.readInt32LE(4),
    object,
    kind: kind ? attrString(kind) : '',
    handle: p.readUInt32LE(8),
    parent: p.readUInt32LE(12),
    info: p.readUInt32LE(16),
    attrs: all.filter((a) => REPLAYED.includes(a.type)).map((a) => ({
      type: a.type,
      hex: (a.type === TCA_OPTIONS ? creatable(object, kind ? attrString(kind) : '', a.data) : a.data).toString('hex'),
    })),
  };
}

/** Filter kind -> its flags option; the kernel reports offload state there that it refuses on creation. */
const FILTER_FLAGS_OPTION: Record<string, number> = { u32: 11, flower: 22, matchall: 3, bpf: 9 };
/** The flags a filter may be created with (skip_hw, skip_sw); in_hw and not_in_hw are the kernel's. */
const TCA_CLS_FLAGS_SETTABLE = 0x1 | 0x2;
const TCA_HTB_INIT = 2;

/** `options` with the data of its attribute `type` changed by `edit` (on a copy), or dropped if it returns null. */
function rewriteOption(options: Buffer, type: number, edit: (data: Buffer) => Buffer | null): Buffer {
  const b = new MessageBuilder(0, 0);
  for (const a of decodeAttrs(options)) {
    const data = a.type === type ? edit(Buffer.from(a.data)) : a.data;
    if (data === null) continue;
    if (a.nested) b.nest(a.type, (n) => n.raw(data));
    else b.attr(a.type, data);
  }
  return b.finish(0).subarray(NLMSG_HDRLEN);
}

const setU32 = (edit: (v: number) => number) => (d: Buffer): Buffer => {
  if (d.length >= 4) d.writeUInt32LE(edit(d.readUInt32LE(0)) >>> 0, 0);
  return d;
};

/** TCA_OPTIONS as creation takes them, where the dump says something else. */
function creatable(object: TcObjectKind, kind: string, options: Buffer): Buffer {
  const flags = FILTER_FLAGS_OPTION[kind];
  if (object === 'filter' && flags !== undefined) {
    return rewriteOption(options, flags, setU32((v) => v & TCA_CLS_FLAGS_SETTABLE));
  }
  // htb dumps its version as 0x30011 and takes only the major number, 3, on creation.
  if (object === 'qdisc' && kind === 'htb') return rewriteOption(options, TCA_HTB_INIT, setU32((v) => v >>> 16));
  return options;
}

const TCA_U32_HASH = 2;
const u32Table = (h: number) => (h & 0xfff00000) >>> 0;
const u32Node = (h: number) => h & 0xfff;

/**
 * u32 filters as they can be replayed. u32 numbers the hash tables of one qdisc (all its
 * priorities, both sides of clsact) as they are made, and makes each priority's root table itself
 * (800:, 801:, ...), so the numbers of a replay need not match the recorded ones. A priority's root
 * table (the last table of the priority in the dump, which lists tables newest first) is therefore
 * not replayed, and its keys are sent without a table, which puts them in the root table the
 * kernel made this time. Tables one made oneself (`handle 2: u32 divisor 256`) and their keys keep
 * their numbers.
 */
export function u32ForReplay(filters: TcObject[]): TcObject[] {
  const tp = (f: TcObject) => `${f.parent}/${f.info}`;
  const rootOf = new Map<string, number>();
  for (const f of filters) if (f.kind === 'u32' && u32Node(f.handle) === 0) rootOf.set(tp(f), u32Table(f.handle));
  return filters.flatMap((f) => {
    if (f.kind !== 'u32' || u32Table(f.handle) !== rootOf.get(tp(f))) return [f];
    if (u32Node(f.handle) === 0) return [];
    const attrs = f.attrs.map((a) => (a.type === TCA_OPTIONS
      ? { type: a.type, hex: rewriteOption(Buffer.from(a.hex, 'hex'), TCA_U32_HASH, () => null).toString('hex') }
      : a));
    return [{ ...f, handle: u32Node(f.handle), attrs }];
  });
}

const PLURAL: Record<TcObjectKind, string> = { qdisc: 'qdiscs', class: 'classes', filter: 'filters' };

function dumpOf(sock: NetlinkSocket, type: number, object: TcObjectKind, index: number, parent = 0): TcObject[] {
  const req = new MessageBuilder(type, 0).raw(encodeTcMsg({ index, parent }));
  return sock.dump(req, { op: `list ${PLURAL[object]}`, device: `#${index}` })
    .filter((m) => m.type === type - 2)
    .map((m) => decodeTcObject(m, object))
    .filter((o) => o.index === index)
    .map(({ index: _i, ...o }) => o);
}

/**
 * The qdiscs, classes and filters of link `index`, parents before children. The kernel's default
 * qdiscs (handle 0: noqueue, pfifo_fast, mq and its children, a classful qdisc's default leaves)
 * come back by themselves and are left out, and so are the filter chain heads (handle 0).
 */
export function listTc(sock: NetlinkSocket, index: number): TcObject[] {
  const qdiscs = dumpOf(sock, RTM_GETQDISC, 'qdisc', index).filter((q) => q.handle !== 0);
  if (!qdiscs.length) return [];
  const classes = dumpOf(sock, RTM_GETTCLASS, 'class', index);
  // Filters hang off a qdisc, a class, or the ingress/egress side of an ingress or clsact qdisc.
  const parents = new Set<number>();
  for (const q of qdiscs) {
    if (q.parent === TC_H_INGRESS) {
      parents.add(q.handle | TC_H_MIN_INGRESS);
      if (q.kind === 'clsact') parents.add(q.handle | TC_H_MIN_EGRESS);
    } else parents.add(q.handle);
  }
  for (const c of classes) parents.add(c.handle);
  const filters = u32ForReplay([...parents].flatMap((parent) => dumpOf(sock, RTM_GETTFILTER, 'filter', index, parent)).filter((f) => f.handle !== 0));
  return [...inCreationOrder([...qdiscs, ...classes]), ...filters];
}

/**
 * Qdiscs and classes ordered so that each comes after what it hangs off: a qdisc after the class it
 * is attached to (none for root and ingress); a class after its qdisc and its parent class. A
 * top-level class names TC_H_ROOT as its parent, and its qdisc only in its handle's major number.
 */
export function inCreationOrder(objects: TcObject[]): TcObject[] {
  const top = (p: number) => p === TC_H_ROOT || p === TC_H_INGRESS;
  const needs = (o: TcObject): number[] => {
    if (o.object === 'qdisc') return top(o.parent) ? [] : [minor(o.parent) ? o.parent : major(o.parent)];
    return [major(o.handle), ...(top(o.parent) || !minor(o.parent) ? [] : [o.parent])];
  };
  const ready = new Set<number>();
  const out: TcObject[] = [];
  let rest = objects;
  while (rest.length) {
    const next = rest.filter((o) => needs(o).every((h) => ready.has(h)));
    // Whatever hangs off something we did not record is tried last; the kernel will say what is wrong.
    const batch = next.length ? next : rest;
    for (const o of batch) {
      out.push(o);
      ready.add(o.object === 'qdisc' ? major(o.handle) : o.handle);
    }
    rest = rest.filter((o) => !batch.includes(o));
  }
  return out;
}

export function tcMessage(o: TcObject, index: number): MessageBuilder {
  const type = o.object === 'qdisc' ? RTM_NEWQDISC : o.object === 'class' ? RTM_NEWTCLASS : RTM_NEWTFILTER;
  const req = new MessageBuilder(type, NLM_F_CREATE | NLM_F_EXCL).raw(encodeTcMsg({ index, handle: o.handle, parent: o.parent, info: o.info }));
  req.str(TCA_KIND, o.kind);
  for (const a of o.attrs) req.attr(a.type, Buffer.from(a.hex, 'hex'));
  return req;
}

const hexHandle = (h: number) => `${(h >>> 16).toString(16)}:${minor(h).toString(16)}`;

/** "qdisc pfifo 1:0 parent root", "filter u32 handle 0x80000800 parent 1:0 pref 1", to name an object in messages. */
export function describeTc(o: TcObject): string {
  const parent = o.parent === TC_H_ROOT ? 'root' : o.parent === TC_H_INGRESS ? 'ingress' : hexHandle(o.parent);
  // A filter's handle is its classifier's own number, not major:minor.
  const handle = o.object === 'filter' ? `handle 0x${o.handle.toString(16)}` : hexHandle(o.handle);
  const prio = o.object === 'filter' ? ` pref ${o.info >>> 16}` : '';
  return `${o.object} ${o.kind} ${handle} parent ${parent}${prio}`;
}

/** Creates one recorded object on link `index`. EEXIST is the caller's to judge. */
export function addTc(sock: NetlinkSocket, o: TcObject, index: number, ctx: { op: string; device: string }): void {
  sock.request(tcMessage(o, index), { ...ctx, op: `${ctx.op} ${describeTc(o)}` });
}

/** The classes of link `index` now: the caller checks whether one it could not add exists anyway. */
export function listClasses(sock: NetlinkSocket, index: number): TcObject[] {
  return dumpOf(sock, RTM_GETTCLASS, 'class', index);
}
