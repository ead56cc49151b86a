// The netlink wire format: nlmsghdr, attributes (TLVs, nested), ifinfomsg and
// ifaddrmsg. Pure byte work, no sockets. Decoding never trusts a length field:
// anything that runs past its container raises DecodeError.

import { DecodeError } from '../errors';
import { NLA_F_NESTED, NLA_TYPE_MASK } from './constants';
import { formatIp, parseIp } from '../model/ip';

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;

/** Rounds up to a multiple of 4; exact for any length up to 2^53 (a bitwise form wraps past 2^31). */
export const align4 = (n: number): number => n + 3 - ((n + 3) % 4);

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

export interface Attr {
  type: number;
  nested: boolean;
  data: Buffer;
}

/** Splits a received datagram into netlink messages. */
export function decodeMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new DecodeError(`netlink message length ${len} at offset ${off} does not fit in ${buf.length} bytes`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  if (off < buf.length) {
    throw new DecodeError(`truncated netlink header: ${buf.length - off} bytes at offset ${off}`);
  }
  return out;
}

/** Decodes a run of attributes. A truncated final attribute is an error. */
export function decodeAttrs(buf: Buffer, start = 0): Attr[] {
  if (!Number.isSafeInteger(start) || start < 0) throw new DecodeError(`attributes start at offset ${start}`);
  const out: Attr[] = [];
  let off = start;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN || off + len > buf.length) {
      throw new DecodeError(`attribute ${rawType & NLA_TYPE_MASK} length ${len} at offset ${off} overruns ${buf.length} bytes`);
    }
    out.push({ type: rawType & NLA_TYPE_MASK, nested: (rawType & NLA_F_NESTED) !== 0, data: buf.subarray(off + NLA_HDRLEN, off + len) });
    off += align4(len);
  }
  // Attributes are padded to 4 bytes, so 1 to 3 bytes left over are a header cut short.
  if (off < buf.length) throw new DecodeError(`truncated attribute header: ${buf.length - off} bytes at offset ${off}`);
  return out;
}

/** Attributes by type; the last occurrence wins, as in the kernel's nla_parse. */
export function attrMap(attrs: Attr[]): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const a of attrs) m.set(a.type, a.data);
  return m;
}

/** A NUL-terminated (or not) string attribute. */
export function attrString(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.toString('utf8', 0, nul === -1 ? data.length : nul);
}

export function attrU8(data: Buffer): number {
  if (data.length < 1) throw new DecodeError('u8 attribute has 0 bytes');
  return data.readUInt8(0);
}

export function attrU32(data: Buffer): number {
  if (data.length < 4) throw new DecodeError(`u32 attribute has ${data.length} bytes`);
  return data.readUInt32LE(0);
}

/** Builds one netlink request. Attributes are appended in order; nest() wraps a group. */
export class MessageBuilder {
  private chunks: Buffer[] = [];
  private length = NLMSG_HDRLEN;
  private readonly nestStarts: number[] = [];

  constructor(readonly type: number, readonly flags: number) {}

  /** Appends a fixed header (ifinfomsg, ifaddrmsg, ...), padded to 4 bytes. */
  raw(bytes: Buffer): this {
    this.push(bytes);
    const pad = align4(bytes.length) - bytes.length;
    if (pad) this.push(Buffer.alloc(pad));
    return this;
  }

  attr(type: number, data: Buffer): this {
    const hdr = Buffer.alloc(NLA_HDRLEN);
    hdr.writeUInt16LE(NLA_HDRLEN + data.length, 0);
    hdr.writeUInt16LE(type, 2);
    this.push(hdr);
    return this.raw(data);
  }

  u8(type: number, v: number): this {
    return this.attr(type, Buffer.from([v & 0xff]));
  }

  u32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.attr(type, b);
  }

  s32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.attr(type, b);
  }

  /** A NUL-terminated string attribute. */
  str(type: number, s: string): this {
    return this.attr(type, Buffer.from(s + '\0', 'utf8'));
  }

  nest(type: number, body: (b: this) => void): this {
    const hdr = Buffer.alloc(NLA_HDRLEN);
    hdr.writeUInt16LE(type | NLA_F_NESTED, 2);
    this.nestStarts.push(this.length);
    this.push(hdr);
    body(this);
    hdr.writeUInt16LE(this.length - this.nestStarts.pop()!, 0);
    return this;
  }

  /** The finished message with its header filled in. */
  finish(seq: number): Buffer {
    const hdr = Buffer.alloc(NLMSG_HDRLEN);
    hdr.writeUInt32LE(this.length, 0);
    hdr.writeUInt16LE(this.type, 4);
    hdr.writeUInt16LE(this.flags, 6);
    hdr.writeUInt32LE(seq, 8);
    return Buffer.concat([hdr, ...this.chunks], this.length);
  }

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
}

export interface IfInfoMsg {
  family: number;
  type: number;
  index: number;
  flags: number;
  change: number;
}

export function encodeIfInfo(m: Partial<IfInfoMsg>): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(m.family ?? 0, 0);
  b.writeUInt16LE(m.type ?? 0, 2);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return b;
}

export function decodeIfInfo(payload: Buffer): IfInfoMsg {
  if (payload.length < IFINFOMSG_LEN) throw new DecodeError(`ifinfomsg has ${payload.length} bytes`);
  return {
    family: payload.readUInt8(0),
    type: payload.readUInt16LE(2),
    index: payload.readInt32LE(4),
    flags: payload.readUInt32LE(8),
    change: payload.readUInt32LE(12),
  };
}

export interface IfAddrMsg {
  family: number;
  prefixlen: number;
  flags: number;
  scope: number;
  index: number;
}

export function encodeIfAddr(m: IfAddrMsg): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.prefixlen, 1);
  b.writeUInt8(m.flags & 0xff, 2);
  b.writeUInt8(m.scope, 3);
  b.writeUInt32LE(m.index, 4);
  return b;
}

export function decodeIfAddr(payload: Buffer): IfAddrMsg {
  if (payload.length < IFADDRMSG_LEN) throw new DecodeError(`ifaddrmsg has ${payload.length} bytes`);
  return {
    family: payload.readUInt8(0),
    prefixlen: payload.readUInt8(1),
    flags: payload.readUInt8(2),
    scope: payload.readUInt8(3),
    index: payload.readUInt32LE(4),
  };
}

/** An address attribute's bytes as text (src/model/ip.ts formatIp). */
export function decodeIp(b: Buffer): string {
  if (b.length !== 4 && b.length !== 16) throw new DecodeError(`address attribute has ${b.length} bytes`);
  return formatIp(b);
}

/** An address's text as an attribute's bytes; a DecodeError when it is none (src/model/ip.ts parseIp). */
export function encodeIp(text: string): Buffer {
  const ip = parseIp(text);
  if (!ip) throw new DecodeError(`bad IPv${text.includes(':') ? 6 : 4} address ${text}`);
  return ip;
}

export function formatMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function parseMac(text: string): Buffer {
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}
