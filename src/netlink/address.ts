// Typed address operations: dump, add and delete with every attribute an
// address carries (local, peer, broadcast, label, flags, lifetimes).

import { NetlinkSocket } from './client';
import {
  MessageBuilder, NlMessage, attrMap, attrString, attrU32, decodeAttrs, decodeIfAddr, encodeIfAddr, decodeIp,
  encodeIp, IFADDRMSG_LEN,
} from './codec';
import {
  AF_INET, AF_INET6, AF_UNSPEC, IFA_ADDRESS, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS, IFA_F_HOMEADDRESS,
  IFA_F_MANAGETEMPADDR, IFA_F_MCAUTOJOIN, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_OPTIMISTIC, IFA_LABEL,
  IFA_LOCAL, IFA_PROTO, IFA_RT_PRIORITY, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELADDR, RTM_GETADDR,
  RTM_NEWADDR,
} from './constants';
import { NetlinkError } from '../errors';

export const INFINITY_LIFETIME = 0xffffffff;

/** One address, JSON-safe so it can sit in the journal. */
export interface AddressInfo {
  family: typeof AF_INET | typeof AF_INET6;
  prefixlen: number;
  /** Full IFA_FLAGS value (falls back to the 8-bit ifa_flags). */
  flags: number;
  scope: number;
  /** IFA_ADDRESS: the address, or the peer for point-to-point IPv4. */
  address: string;
  local?: string;
  broadcast?: string;
  label?: string;
  preferredLifetime: number;
  validLifetime: number;
  rtPriority?: number;
  proto?: number;
}

/** The flags a caller may ask for; the rest (permanent, tentative, ...) are kernel state. */
const SETTABLE_FLAGS = IFA_F_NODAD | IFA_F_OPTIMISTIC | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR
  | IFA_F_NOPREFIXROUTE | IFA_F_MCAUTOJOIN;

export function decodeAddress(m: NlMessage): AddressInfo & { index: number } {
  const hdr = decodeIfAddr(m.payload);
  const attrs = attrMap(decodeAttrs(m.payload, IFADDRMSG_LEN));
  const ip = (t: number) => { const a = attrs.get(t); return a ? decodeIp(a) : undefined; };
  const cache = attrs.get(IFA_CACHEINFO);
  const label = attrs.get(IFA_LABEL);
  const flags = attrs.get(IFA_FLAGS);
  const prio = attrs.get(IFA_RT_PRIORITY);
  const proto = attrs.get(IFA_PROTO);
  const address = ip(IFA_ADDRESS) ?? ip(IFA_LOCAL);
  if (hdr.family !== AF_INET && hdr.family !== AF_INET6) throw new NetlinkError(97, 'EAFNOSUPPORT', `address family ${hdr.family}`, { op: 'decode address' });
  if (!address) throw new NetlinkError(22, 'EINVAL', 'address without IFA_ADDRESS', { op: 'decode address' });
  const out: AddressInfo & { index: number } = {
    index: hdr.index,
    family: hdr.family,
    prefixlen: hdr.prefixlen,
    flags: flags ? attrU32(flags) : hdr.flags,
    scope: hdr.scope,
    address,
    preferredLifetime: cache && cache.length >= 8 ? cache.readUInt32LE(0) : INFINITY_LIFETIME,
    validLifetime: cache && cache.length >= 8 ? cache.readUInt32LE(4) : INFINITY_LIFETIME,
  };
  const local = ip(IFA_LOCAL);
  if (local !== undefined) out.local = local;
  const broadcast = ip(IFA_BROADCAST);
  if (broadcast !== undefined) out.broadcast = broadcast;
  if (label) out.label = attrString(label);
  if (prio) out.rtPriority = attrU32(prio);
  if (proto && proto.length) out.proto = proto.readUInt8(0);
  return out;
}

/** Addresses of one link (index) or of all links (index 0). */
export function listAddresses(sock: NetlinkSocket, index = 0): (AddressInfo & { index: number })[] {
  const req = new MessageBuilder(RTM_GETADDR, 0).raw(encodeIfAddr({ family: AF_UNSPEC, prefixlen: 0, flags: 0, scope: 0, index }));
  return sock.dump(req, { op: 'list addresses' })
    .filter((m) => m.type === RTM_NEWADDR)
    .map(decodeAddress)
    .filter((a) => index === 0 || a.index === index);
}

function addressMessage(type: number, flags: number, index: number, a: AddressInfo): MessageBuilder {
  const req = new MessageBuilder(type, flags).raw(
    encodeIfAddr({ family: a.family, prefixlen: a.prefixlen, flags: a.flags & SETTABLE_FLAGS & 0xff, scope: a.scope, index }),
  );
  if (a.local !== undefined) req.attr(IFA_LOCAL, encodeIp(a.local));
  req.attr(IFA_ADDRESS, encodeIp(a.address));
  return req;
}

/** Adds an address with all its attributes. EEXIST is an error: callers decide. */
export function addAddress(sock: NetlinkSocket, index: number, a: AddressInfo, ctx: { op: string; device: string }): void {
  sock.request(newAddress(NLM_F_CREATE | NLM_F_EXCL, index, a), { ...ctx, op: `${ctx.op} ${a.address}/${a.prefixlen}` });
}

/**
 * Sets the flags, lifetimes and other attributes of an address the link has already. For IPv6
 * this changes the address in place (the kernel's inet6_addr_modify): no duplicate address detection.
 */
export function replaceAddress(sock: NetlinkSocket, index: number, a: AddressInfo, ctx: { op: string; device: string }): void {
  sock.request(newAddress(NLM_F_REPLACE, index, a), { ...ctx, op: `${ctx.op} ${a.address}/${a.prefixlen}` });
}

function newAddress(flags: number, index: number, a: AddressInfo): MessageBuilder {
  const req = addressMessage(RTM_NEWADDR, flags, index, a);
  if (a.broadcast !== undefined) req.attr(IFA_BROADCAST, encodeIp(a.broadcast));
  if (a.label !== undefined) req.str(IFA_LABEL, a.label);
  req.u32(IFA_FLAGS, a.flags & SETTABLE_FLAGS);
  if (a.preferredLifetime !== INFINITY_LIFETIME || a.validLifetime !== INFINITY_LIFETIME) {
    const ci = Buffer.alloc(16);
    ci.writeUInt32LE(a.preferredLifetime, 0);
    ci.writeUInt32LE(a.validLifetime, 4);
    req.attr(IFA_CACHEINFO, ci);
  }
  if (a.rtPriority !== undefined) req.u32(IFA_RT_PRIORITY, a.rtPriority);
  if (a.proto !== undefined) req.u8(IFA_PROTO, a.proto);
  return req;
}

export function deleteAddress(sock: NetlinkSocket, index: number, a: AddressInfo, ctx: { op: string; device: string }): void {
  sock.request(addressMessage(RTM_DELADDR, 0, index, a), { ...ctx, op: `${ctx.op} ${a.address}/${a.prefixlen}` });
}
