// Fuzz target: the rtnetlink decoder, fed what a hostile or broken kernel could send. Each case is
// a datagram: random bytes, or well-formed replies (links with nested link info, addresses,
// routes with multipath nexthops, nexthop groups, errors with extended acks) that are then
// truncated, bit-flipped, misaligned, given lying length fields (messages, attributes, nested
// attributes longer than their parent), spliced or padded. The decoder must return or throw a
// typed error (NetdevError: DecodeError, NetlinkError), and its output must stay proportional to
// its input.

import { Rng } from './prng';
import type { CaseResult, Target } from './target';
import { NetdevError } from '../../src/errors';
import { MessageBuilder, NLMSG_HDRLEN, NLA_HDRLEN, decodeMessages, decodeAttrs, encodeIfAddr, encodeIfInfo } from '../../src/netlink/codec';
import { checkAck } from '../../src/netlink/client';
import { decodeLink } from '../../src/netlink/link';
import { decodeAddress } from '../../src/netlink/address';
import {
  NHA_GROUP, NHA_ID, NHA_OIF, NHMSG_LEN, RTA_GATEWAY, RTA_MULTIPATH, RTA_NH_ID, RTA_OIF, RTA_TABLE, RTM_NEWNEXTHOP,
  RTM_NEWROUTE, decodeNexthop, decodeRoute, decodeRouteEntry, defaultRoutesOf, encodeRtMsg, RouteInfo, NexthopInfo,
} from '../../src/netlink/route';
import { NDA_DST, NDA_LLADDR, NDA_PROTOCOL, RTM_NEWNEIGH, decodeNeighbour, encodeNdMsg } from '../../src/netlink/neighbour';
import { RTM_NEWQDISC, RTM_NEWTCLASS, RTM_NEWTFILTER, TCA_KIND, TCA_OPTIONS, decodeTcObject, encodeTcMsg } from '../../src/netlink/tc';
import {
  IFA_ADDRESS, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS, IFA_LABEL, IFA_LOCAL, IFA_PROTO, IFA_RT_PRIORITY, IFLA_ADDRESS,
  IFLA_ALT_IFNAME, IFLA_GROUP, IFLA_IFALIAS, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_INFO_SLAVE_KIND, IFLA_LINK,
  IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_PERM_ADDRESS, IFLA_PROP_LIST, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
  AF_INET, AF_INET6, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_MULTI, RTM_NEWADDR, RTM_NEWLINK,
} from '../../src/netlink/constants';


// ---------------------------------------------------------------------------------------------
// Well-formed replies.

function name(rng: Rng): string {
  return rng.pick(['eth0', 'lo', 'br0', 'veth1234567890a', 'bond0', 'x', 'é', '']) + (rng.chance(0.2) ? String(rng.int(100)) : '');
}

function ip(rng: Rng, v6: boolean): Buffer {
  return v6 ? rng.bytes(16) : rng.bytes(4);
}

function linkMessage(rng: Rng): MessageBuilder {
  const b = new MessageBuilder(RTM_NEWLINK, NLM_F_MULTI).raw(encodeIfInfo({ index: rng.range(1, 1000), flags: rng.u32(), type: 1 }));
  b.str(IFLA_IFNAME, name(rng)).u32(IFLA_MTU, rng.u32());
  if (rng.chance(0.8)) b.attr(IFLA_ADDRESS, rng.bytes(rng.pick([6, 6, 0, 20, 32])));
  if (rng.chance(0.3)) b.attr(IFLA_PERM_ADDRESS, rng.bytes(6));
  if (rng.chance(0.4)) b.attr(IFLA_IFALIAS, Buffer.from(`oci-netdev:${rng.u32().toString(16)}:eth1`));
  if (rng.chance(0.3)) b.u32(IFLA_MASTER, rng.int(50));
  if (rng.chance(0.3)) b.u32(IFLA_LINK, rng.int(50));
  if (rng.chance(0.5)) b.u32(IFLA_GROUP, rng.u32());
  if (rng.chance(0.6)) {
    b.nest(IFLA_LINKINFO, (li) => {
      li.str(IFLA_INFO_KIND, rng.pick(['veth', 'macvlan', 'bridge', 'bond', '']));
      if (rng.chance(0.5)) li.nest(IFLA_INFO_DATA, (d) => { for (let i = rng.small(4); i > 0; i--) d.u32(rng.range(1, 30), rng.u32()); });
      if (rng.chance(0.4)) li.str(IFLA_INFO_SLAVE_KIND, rng.pick(['bridge', 'bond']));
    });
  }
  if (rng.chance(0.3)) b.nest(IFLA_PROP_LIST, (p) => { for (let i = rng.range(1, 3); i > 0; i--) p.str(IFLA_ALT_IFNAME, name(rng)); });
  for (let i = rng.small(3); i > 0; i--) b.attr(rng.range(1, 70), rng.bytes(rng.small(40)));
  return b;
}

function addressMessage(rng: Rng): MessageBuilder {
  const v6 = rng.chance(0.5);
  const family = rng.chance(0.9) ? (v6 ? 10 : 2) : rng.int(256);
  const b = new MessageBuilder(RTM_NEWADDR, NLM_F_MULTI).raw(
    encodeIfAddr({ family, prefixlen: rng.int(256), flags: rng.int(256), scope: rng.pick([0, 253, 254, 200]), index: rng.range(1, 1000) }),
  );
  if (rng.chance(0.9)) b.attr(IFA_ADDRESS, ip(rng, rng.chance(0.9) ? v6 : !v6));
  if (rng.chance(0.5)) b.attr(IFA_LOCAL, ip(rng, v6));
  if (rng.chance(0.3)) b.attr(IFA_BROADCAST, ip(rng, v6));
  if (rng.chance(0.4)) b.str(IFA_LABEL, name(rng));
  if (rng.chance(0.5)) b.u32(IFA_FLAGS, rng.u32());
  if (rng.chance(0.5)) b.attr(IFA_CACHEINFO, rng.bytes(rng.pick([16, 8, 4, 0])));
  if (rng.chance(0.2)) b.u32(IFA_RT_PRIORITY, rng.u32());
  if (rng.chance(0.2)) b.attr(IFA_PROTO, rng.bytes(rng.pick([1, 0])));
  return b;
}

function routeMessage(rng: Rng): MessageBuilder {
  const hdr = encodeRtMsg({ family: rng.pick([2, 10, 2, 10, 7]), table: rng.pick([254, 255, 100]), type: rng.pick([1, 1, 2, 6]) });
  hdr.writeUInt8(rng.chance(0.7) ? 0 : rng.int(129), 1);
  const b = new MessageBuilder(RTM_NEWROUTE, NLM_F_MULTI).raw(hdr);
  if (rng.chance(0.5)) b.u32(RTA_TABLE, rng.pick([254, 1000, rng.u32()]));
  if (rng.chance(0.6)) b.u32(RTA_OIF, rng.int(100));
  if (rng.chance(0.3)) b.attr(RTA_GATEWAY, rng.bytes(4));
  if (rng.chance(0.3)) b.u32(RTA_NH_ID, rng.int(20));
  if (rng.chance(0.4)) {
    const hops: Buffer[] = [];
    for (let i = rng.range(1, 4); i > 0; i--) {
      const withGw = rng.chance(0.6);
      const h = Buffer.alloc(withGw ? 16 : 8);
      h.writeUInt16LE(h.length, 0);
      h.writeInt32LE(rng.int(100), 4);
      if (withGw) {
        h.writeUInt16LE(8, 8);
        h.writeUInt16LE(RTA_GATEWAY, 10);
        rng.bytes(4).copy(h, 12);
      }
      hops.push(h);
    }
    b.attr(RTA_MULTIPATH, Buffer.concat(hops));
  }
  return b;
}

function nexthopMessage(rng: Rng): MessageBuilder {
  const b = new MessageBuilder(RTM_NEWNEXTHOP, NLM_F_MULTI).raw(Buffer.alloc(NHMSG_LEN)).u32(NHA_ID, rng.int(20));
  if (rng.chance(0.5)) b.u32(NHA_OIF, rng.int(100));
  else b.attr(NHA_GROUP, rng.bytes(8 * rng.range(0, 4) + (rng.chance(0.1) ? rng.range(1, 7) : 0)));
  return b;
}

function neighbourMessage(rng: Rng): MessageBuilder {
  const v6 = rng.chance(0.5);
  const b = new MessageBuilder(RTM_NEWNEIGH, NLM_F_MULTI).raw(encodeNdMsg({ family: v6 ? AF_INET6 : AF_INET, index: rng.int(100), state: rng.pick([0x80, 0x02, 0x40]) }));
  b.attr(NDA_DST, ip(rng, v6));
  if (rng.chance(0.8)) b.attr(NDA_LLADDR, rng.bytes(rng.pick([6, 6, 20, 0])));
  if (rng.chance(0.3)) b.u8(NDA_PROTOCOL, rng.int(256));
  return b;
}

/** A qdisc, class or filter, with nested options (a u32 filter's flags and table, htb's init). */
function tcMessage(rng: Rng): MessageBuilder {
  const type = rng.pick([RTM_NEWQDISC, RTM_NEWTCLASS, RTM_NEWTFILTER]);
  const b = new MessageBuilder(type, NLM_F_MULTI).raw(encodeTcMsg({ index: rng.int(100), handle: rng.u32(), parent: rng.u32(), info: rng.u32() }));
  b.str(TCA_KIND, rng.pick(['u32', 'htb', 'pfifo', 'flower', 'clsact', '']));
  b.nest(TCA_OPTIONS, (o) => {
    for (let i = rng.range(0, 4); i > 0; i--) o.attr(rng.int(13), rng.bytes(rng.pick([4, 20, 0, 3])));
  });
  if (rng.chance(0.3)) b.attr(7, rng.bytes(rng.small(64)));
  return b;
}

/** An NLMSG_ERROR: errno, the echoed request header (capped or not), extended-ack TLVs. */
function errorMessage(rng: Rng): Buffer {
  const capped = rng.chance(0.5);
  const tlvs = rng.chance(0.7);
  const errno = rng.pick([0, -1, -2, -17, -19, -22, -95, -4095, -0x80000000, 0x7fffffff, rng.u32() | 0]);
  const orig = new MessageBuilder(RTM_NEWLINK, 5).raw(encodeIfInfo({})).str(IFLA_IFNAME, 'eth0').finish(rng.u32());
  const head = Buffer.alloc(4);
  head.writeInt32LE(errno, 0);
  const echoed = capped ? orig.subarray(0, NLMSG_HDRLEN) : orig;
  const attrs = new MessageBuilder(0, 0);
  if (tlvs) {
    if (rng.chance(0.8)) attrs.str(NLMSGERR_ATTR_MSG, rng.pick(['Invalid argument', 'Device or resource busy', '', 'x'.repeat(rng.small(300))]));
    if (rng.chance(0.5)) attrs.u32(NLMSGERR_ATTR_OFFS, rng.u32());
  }
  const payload = Buffer.concat([head, echoed, attrs.finish(0).subarray(NLMSG_HDRLEN)]);
  const msg = new MessageBuilder(NLMSG_ERROR, (capped ? NLM_F_CAPPED : 0) | (tlvs ? NLM_F_ACK_TLVS : 0)).raw(payload).finish(rng.u32());
  return msg;
}

function doneMessage(rng: Rng): Buffer {
  return new MessageBuilder(NLMSG_DONE, NLM_F_MULTI).raw(Buffer.alloc(4)).finish(rng.u32());
}

/** A well-formed datagram of one to several messages. */
export function wellFormed(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  for (let i = rng.range(1, 5); i > 0; i--) {
    const kind = rng.int(8);
    if (kind === 0) parts.push(linkMessage(rng).finish(rng.u32()));
    else if (kind === 1) parts.push(addressMessage(rng).finish(rng.u32()));
    else if (kind === 2) parts.push(routeMessage(rng).finish(rng.u32()));
    else if (kind === 3) parts.push(nexthopMessage(rng).finish(rng.u32()));
    else if (kind === 4) parts.push(errorMessage(rng));
    else if (kind === 6) parts.push(neighbourMessage(rng).finish(rng.u32()));
    else if (kind === 7) parts.push(tcMessage(rng).finish(rng.u32()));
    else parts.push(doneMessage(rng));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/** Offsets of every length field in a well-formed datagram: message headers and attribute headers, nested ones too. */
export function lengthFields(buf: Buffer): { off: number; size: 2 | 4; room: number }[] {
  const out: { off: number; size: 2 | 4; room: number }[] = [];
  const walkAttrs = (start: number, end: number, depth: number) => {
    let off = start;
    while (off + NLA_HDRLEN <= end) {
      const len = buf.readUInt16LE(off);
      if (len < NLA_HDRLEN || off + len > end) return;
      out.push({ off, size: 2, room: end - off });
      if (depth < 4 && len > NLA_HDRLEN * 2) walkAttrs(off + NLA_HDRLEN, off + len, depth + 1);
      off += (len + 3) & ~3;
    }
  };
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({ off, size: 4, room: buf.length - off });
    const type = buf.readUInt16LE(off + 4);
    const fixed = type === RTM_NEWLINK ? 16 : type === RTM_NEWADDR ? 8 : type === RTM_NEWROUTE ? 12 : type === RTM_NEWNEXTHOP ? 8 : -1;
    if (fixed >= 0) walkAttrs(off + NLMSG_HDRLEN + fixed, off + len, 0);
    off += (len + 3) & ~3;
  }
  return out;
}

function lie(rng: Rng, current: number, room: number, size: 2 | 4): number {
  const max = size === 2 ? 0xffff : 0xffffffff;
  const v = rng.pick([0, 1, 2, 3, 4, 5, 15, 16, 17, current - 1, current + 1, current + 4, room, room + 1, room + 4, room * 2, max, max - 1, 0x8000, rng.u32()]);
  return Math.max(0, Math.min(max, v)) >>> 0;
}

function mutate(rng: Rng, input: Buffer): Buffer {
  let buf = Buffer.from(input);
  for (let n = rng.range(1, 3); n > 0; n--) {
    const op = rng.int(9);
    if (op === 0 && buf.length) {
      buf = buf.subarray(0, rng.int(buf.length)); // truncated
    } else if (op === 1 && buf.length) {
      for (let i = rng.range(1, 8); i > 0; i--) buf[rng.int(buf.length)] ^= 1 << rng.int(8); // bit flips
    } else if (op <= 4) {
      const fields = lengthFields(buf); // lying length: oversized, undersized, nested overflow
      if (fields.length) {
        const f = rng.pick(fields);
        const cur = f.size === 2 ? buf.readUInt16LE(f.off) : buf.readUInt32LE(f.off);
        if (f.size === 2) buf.writeUInt16LE(lie(rng, cur, f.room, 2), f.off);
        else buf.writeUInt32LE(lie(rng, cur, f.room, 4), f.off);
      }
    } else if (op === 5) {
      const at = rng.int(buf.length + 1); // misaligned: 1 to 3 bytes slipped in
      buf = Buffer.concat([buf.subarray(0, at), rng.bytes(rng.range(1, 3)), buf.subarray(at)]);
    } else if (op === 6 && buf.length) {
      const at = rng.int(buf.length);
      buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + rng.range(1, 8))]);
    } else if (op === 7) {
      buf = Buffer.concat([buf, rng.chance(0.5) ? rng.bytes(rng.small(64)) : buf.subarray(0, rng.int(buf.length + 1))]);
    } else if (buf.length >= 4) {
      const at = rng.int(buf.length - 3) & ~3; // a random aligned word
      buf.writeUInt32LE(rng.pick([0, 0xffffffff, 0xffff, 0x10000, rng.u32()]), at);
    }
  }
  return buf;
}

/** The datagram of case `rng`. */
export function generate(rng: Rng): Buffer {
  const kind = rng.int(10);
  if (kind === 0) return rng.bytes(rng.small(256));
  if (kind === 1) {
    // A header that claims more than is there, or a huge reply.
    const b = rng.bytes(rng.range(16, 64));
    b.writeUInt32LE(rng.pick([0xffffffff, 0x10000, b.length + 1, 15]), 0);
    return b;
  }
  if (kind === 2) {
    // Many tiny attributes: attribute counts are bounded by the bytes.
    const n = rng.range(1, 4000);
    const attrs = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) {
      attrs.writeUInt16LE(4, i * 4);
      attrs.writeUInt16LE(rng.int(60) | (rng.chance(0.3) ? 0x8000 : 0), i * 4 + 2);
    }
    return new MessageBuilder(RTM_NEWLINK, 0).raw(encodeIfInfo({ index: 1 })).raw(attrs).finish(1);
  }
  const valid = wellFormed(rng);
  return kind === 3 ? valid : mutate(rng, valid);
}

/** What `decode` returns, or the message of the typed error it throws (a route of another family, say). */
function typedOrMessage(decode: () => unknown): unknown {
  try {
    return decode();
  } catch (err) {
    if (!(err instanceof NetdevError)) throw err;
    return err.message;
  }
}

/** Decodes a datagram as the client and the typed decoders would; returns what came out. */
export function decode(buf: Buffer): unknown[] {
  const out: unknown[] = [];
  const routes: RouteInfo[] = [];
  const nexthops: NexthopInfo[] = [];
  for (const m of decodeMessages(buf)) {
    if (m.type === RTM_NEWLINK) out.push(decodeLink(m));
    else if (m.type === RTM_NEWADDR) out.push(decodeAddress(m));
    else if (m.type === RTM_NEWROUTE) {
      routes.push(decodeRoute(m));
      out.push(typedOrMessage(() => decodeRouteEntry(m)));
    } else if (m.type === RTM_NEWNEIGH) out.push(decodeNeighbour(m));
    else if (m.type === RTM_NEWQDISC || m.type === RTM_NEWTCLASS || m.type === RTM_NEWTFILTER) {
      out.push(decodeTcObject(m, m.type === RTM_NEWQDISC ? 'qdisc' : m.type === RTM_NEWTCLASS ? 'class' : 'filter'));
    }
    else if (m.type === RTM_NEWNEXTHOP) nexthops.push(decodeNexthop(m));
    else if (m.type === NLMSG_ERROR) {
      try {
        checkAck(m, { op: 'fuzz' });
        out.push('ack');
      } catch (err) {
        if (!(err instanceof NetdevError)) throw err;
        out.push(err.message);
      }
    } else if (m.type === NLMSG_DONE) out.push('done'); // its payload is an int, not attributes
    else out.push(decodeAttrs(m.payload).length);
  }
  out.push(routes, nexthops, defaultRoutesOf(routes, nexthops));
  return out;
}

export const netlinkTarget: Target = {
  name: 'netlink',
  runCase(rng: Rng): CaseResult {
    const input = generate(rng);
    const show = () => input.toString('hex');
    try {
      const out = decode(input);
      // Bounded output: nothing is amplified beyond a constant factor of the input.
      const size = JSON.stringify(out).length;
      if (size > 64 * input.length + 4096) return { ok: false, kind: 'oversized-output', message: `${size} characters of output from ${input.length} bytes`, input: show() };
      return { ok: true, outcome: 'decoded' };
    } catch (err) {
      if (err instanceof NetdevError) return { ok: true, outcome: err.constructor.name };
      return { ok: false, kind: 'untyped-error', message: String((err as Error)?.stack ?? err), input: show() };
    }
  },
};
