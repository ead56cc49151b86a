// Typed link operations over the client: read links, change them, create veth
// and macvlan devices, delete by group.

import { NetlinkSocket } from './client';
import {
  MessageBuilder, NlMessage, attrMap, attrString, attrU8, attrU32, decodeAttrs, decodeIfInfo, encodeIfInfo, decodeIp, formatMac,
  encodeIp, parseMac, IFINFOMSG_LEN,
} from './codec';
import {
  IFF_SETTABLE, IFF_UP, IFLA_BROADCAST, IFLA_GRO_IPV4_MAX_SIZE, IFLA_GRO_MAX_SIZE, IFLA_GSO_IPV4_MAX_SIZE, IFLA_GSO_MAX_SEGS,
  IFLA_GSO_MAX_SIZE, IFLA_LINKMODE, IFLA_PROTO_DOWN, IFLA_PROTO_DOWN_REASON, IFLA_PROTO_DOWN_REASON_MASK,
  IFLA_PROTO_DOWN_REASON_VALUE, IFLA_TXQLEN, IFLA_XDP, IFLA_XDP_DRV_PROG_ID, IFLA_XDP_FD, IFLA_XDP_FLAGS, IFLA_XDP_HW_PROG_ID,
  IFLA_XDP_SKB_PROG_ID, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE, XDP_FLAGS_SKB_MODE, IFLA_ADDRESS, IFLA_ALT_IFNAME, IFLA_GROUP, IFLA_IFALIAS, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND,
  IFLA_INFO_SLAVE_KIND, IFLA_LINK, IFLA_LINK_NETNSID, IFLA_LINKINFO, IFLA_MACVLAN_MACADDR_COUNT, IFLA_MACVLAN_MODE, IFLA_MASTER, IFLA_MAX_MTU, IFLA_MIN_MTU, IFLA_MTU, IFLA_NET_NS_FD,
  IFLA_NETNS_IMMUTABLE, IFLA_NEW_IFINDEX, IFLA_PARENT_DEV_BUS_NAME, IFLA_PARENT_DEV_NAME, IFLA_PERM_ADDRESS, IFLA_PROP_LIST,
  IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_AF_SPEC, IFLA_INET6_TOKEN, AF_INET6, IFLA_VXLAN_PORT, NLM_F_CREATE, NLM_F_EXCL, RTM_DELLINK, RTM_DELLINKPROP, RTM_GETLINK, RTM_NEWLINK, RTM_NEWLINKPROP,
} from './constants';
import { NetlinkError } from '../errors';
import * as libc from '../../native/libc';

/** How an XDP program is attached: in the driver, generic (skb), or offloaded to the NIC. */
export type XdpMode = 'drv' | 'skb' | 'hw';
export const XDP_MODES: Record<XdpMode, { idAttr: number; flag: number }> = {
  drv: { idAttr: IFLA_XDP_DRV_PROG_ID, flag: XDP_FLAGS_DRV_MODE },
  skb: { idAttr: IFLA_XDP_SKB_PROG_ID, flag: XDP_FLAGS_SKB_MODE },
  hw: { idAttr: IFLA_XDP_HW_PROG_ID, flag: XDP_FLAGS_HW_MODE },
};

/**
 * What user space sets on a link with RTM_NEWLINK and the kernel keeps with it when it changes
 * namespace (do_setlink), besides name, MTU, MAC, alias, group and up/down. A size the kernel does
 * not report (an older kernel) is absent.
 */
export interface LinkSettings {
  /** The IFF_SETTABLE bits of the link's flags. */
  flags: number;
  txqlen: number;
  /** IFLA_LINKMODE: 0 default, 1 dormant. */
  linkMode?: number;
  broadcast?: string;
  gsoMaxSize?: number;
  gsoMaxSegs?: number;
  groMaxSize?: number;
  gsoIpv4MaxSize?: number;
  groIpv4MaxSize?: number;
  /** IFLA_PROTO_DOWN, reported by every kernel since 4.3; settable only where the driver supports it. */
  protoDown?: boolean;
  /** IFLA_PROTO_DOWN_REASON's value, where the kernel reports one. */
  protoDownReason?: number;
  /** The id of the XDP program attached in each mode; none attached: {}. */
  xdp: Partial<Record<XdpMode, number>>;
}

function decodeSettings(flags: number, attrs: Map<number, Buffer>): LinkSettings {
  const out: LinkSettings = { flags: flags & IFF_SETTABLE, txqlen: 0, xdp: {} };
  const u32 = (t: number) => { const a = attrs.get(t); return a ? attrU32(a) : undefined; };
  const numbers: ['gsoMaxSize' | 'gsoMaxSegs' | 'groMaxSize' | 'gsoIpv4MaxSize' | 'groIpv4MaxSize', number][] = [
    ['gsoMaxSize', IFLA_GSO_MAX_SIZE], ['gsoMaxSegs', IFLA_GSO_MAX_SEGS], ['groMaxSize', IFLA_GRO_MAX_SIZE],
    ['gsoIpv4MaxSize', IFLA_GSO_IPV4_MAX_SIZE], ['groIpv4MaxSize', IFLA_GRO_IPV4_MAX_SIZE],
  ];
  out.txqlen = u32(IFLA_TXQLEN) ?? 0;
  for (const [key, type] of numbers) {
    const v = u32(type);
    if (v !== undefined) out[key] = v;
  }
  const mode = attrs.get(IFLA_LINKMODE);
  if (mode) out.linkMode = attrU8(mode);
  const broadcast = attrs.get(IFLA_BROADCAST);
  if (broadcast && broadcast.length) out.broadcast = formatMac(broadcast);
  const protoDown = attrs.get(IFLA_PROTO_DOWN);
  if (protoDown) out.protoDown = attrU8(protoDown) !== 0;
  const reason = attrs.get(IFLA_PROTO_DOWN_REASON);
  const reasonValue = reason ? attrMap(decodeAttrs(reason)).get(IFLA_PROTO_DOWN_REASON_VALUE) : undefined;
  if (reasonValue) out.protoDownReason = attrU32(reasonValue);
  const xdp = attrs.get(IFLA_XDP);
  if (xdp) {
    const x = attrMap(decodeAttrs(xdp));
    for (const [m, { idAttr }] of Object.entries(XDP_MODES) as [XdpMode, typeof XDP_MODES[XdpMode]][]) {
      const id = x.get(idAttr);
      if (id && attrU32(id)) out.xdp[m] = attrU32(id);
    }
  }
  return out;
}

export interface LinkInfo {
  index: number;
  name: string;
  flags: number;
  up: boolean;
  mtu: number;
  /** IFLA_MIN_MTU and IFLA_MAX_MTU: the MTUs the device accepts; null when the kernel sets no bound (0) or does not say. */
  minMtu: number | null;
  maxMtu: number | null;
  mac: string | null;
  permanentMac: string | null;
  alias: string;
  /** IFLA_INFO_KIND: "veth", "macvlan", ... ; null for physical devices. */
  kind: string | null;
  /** Set when the link is a port of a bridge or bond. */
  masterIndex: number | null;
  slaveKind: string | null;
  /** IFLA_LINK: the peer or parent index (veth peer, macvlan master). */
  linkIndex: number | null;
  /** IFLA_LINK_NETNSID: the namespace (its id as seen from this one) that linkIndex is in; null: this one. */
  linkNetnsid: number | null;
  /** The bus device behind a hardware NIC (IFLA_PARENT_DEV_BUS_NAME and _NAME, e.g. "pci", "0000:3b:00.1"). */
  parentBus: string | null;
  parentDev: string | null;
  /** IFLA_NETNS_IMMUTABLE: the kernel never lets the device change namespace; null when the kernel does not say (before 6.15). */
  netnsImmutable: boolean | null;
  group: number;
  altNames: string[];
  settings: LinkSettings;
  /**
   * A vxlan's VNI and UDP port, which the kernel never lets change (IFLA_VXLAN_ID, IFLA_VXLAN_PORT),
   * and its underlay's ifindex in its link namespace (0: none); null for other kinds.
   */
  vxlan: { id: number; port: number; underlay: number } | null;
  /** A macvlan's mode (MACVLAN_MODE_*) and how many source MACs it has; null for other kinds. */
  macvlan: { mode: number; sourceMacs: number } | null;
  /** The IPv6 token (`ip token`, "::" when none); null where the device has no IPv6. */
  ipv6Token: string | null;
}

/** IFLA_AF_SPEC's IPv6 token, or null when the device has no IPv6 settings. */
function tokenOf(afSpec: Buffer | undefined): string | null {
  const inet6 = afSpec ? attrMap(decodeAttrs(afSpec)).get(AF_INET6) : undefined;
  const token = inet6 ? attrMap(decodeAttrs(inet6)).get(IFLA_INET6_TOKEN) : undefined;
  return token && token.length === 16 ? decodeIp(token) : null;
}

/** The kind-specific data oci-netdev reads: a vxlan's identity, a macvlan's mode. */
function kindData(kind: string | null, data: Buffer | undefined): Pick<LinkInfo, 'vxlan' | 'macvlan'> {
  const attrs = data ? attrMap(decodeAttrs(data)) : new Map<number, Buffer>();
  const u32 = (t: number) => { const a = attrs.get(t); return a ? attrU32(a) : undefined; };
  const id = u32(IFLA_VXLAN_ID);
  const port = attrs.get(IFLA_VXLAN_PORT);
  const mode = u32(IFLA_MACVLAN_MODE);
  return {
    vxlan: kind === 'vxlan' && id !== undefined && port && port.length >= 2 ? { id, port: port.readUInt16BE(0), underlay: u32(IFLA_VXLAN_LINK) ?? 0 } : null,
    macvlan: kind === 'macvlan' && mode !== undefined ? { mode, sourceMacs: u32(IFLA_MACVLAN_MACADDR_COUNT) ?? 0 } : null,
  };
}

export function decodeLink(m: NlMessage): LinkInfo {
  const hdr = decodeIfInfo(m.payload);
  const attrs = attrMap(decodeAttrs(m.payload, IFINFOMSG_LEN));
  const info = attrs.get(IFLA_LINKINFO);
  const infoAttrs = info ? attrMap(decodeAttrs(info)) : undefined;
  const str = (t: number) => { const a = attrs.get(t); return a ? attrString(a) : undefined; };
  const u32 = (t: number) => { const a = attrs.get(t); return a ? attrU32(a) : undefined; };
  const mac = (t: number) => { const a = attrs.get(t); return a && a.length ? formatMac(a) : null; };
  const props = attrs.get(IFLA_PROP_LIST);
  const kind = infoAttrs?.get(IFLA_INFO_KIND);
  const slaveKind = infoAttrs?.get(IFLA_INFO_SLAVE_KIND);
  const netnsid = u32(IFLA_LINK_NETNSID);
  const immutable = attrs.get(IFLA_NETNS_IMMUTABLE);
  const kindName = kind ? attrString(kind) : null;
  return {
    index: hdr.index,
    name: str(IFLA_IFNAME) ?? '',
    flags: hdr.flags,
    up: (hdr.flags & IFF_UP) !== 0,
    mtu: u32(IFLA_MTU) ?? 0,
    // The kernel checks a bound only when it is not 0 (dev_validate_mtu).
    minMtu: u32(IFLA_MIN_MTU) || null,
    maxMtu: u32(IFLA_MAX_MTU) || null,
    mac: mac(IFLA_ADDRESS),
    permanentMac: mac(IFLA_PERM_ADDRESS),
    alias: str(IFLA_IFALIAS) ?? '',
    kind: kindName,
    masterIndex: u32(IFLA_MASTER) ?? null,
    slaveKind: slaveKind ? attrString(slaveKind) : null,
    linkIndex: u32(IFLA_LINK) ?? null,
    linkNetnsid: netnsid === undefined ? null : netnsid | 0,
    netnsImmutable: immutable === undefined ? null : attrU8(immutable) !== 0,
    parentBus: str(IFLA_PARENT_DEV_BUS_NAME) ?? null,
    parentDev: str(IFLA_PARENT_DEV_NAME) ?? null,
    group: u32(IFLA_GROUP) ?? 0,
    altNames: props ? decodeAttrs(props).filter((a) => a.type === IFLA_ALT_IFNAME).map((a) => attrString(a.data)) : [],
    settings: decodeSettings(hdr.flags, attrs),
    ipv6Token: tokenOf(attrs.get(IFLA_AF_SPEC)),
    ...kindData(kindName, infoAttrs?.get(IFLA_INFO_DATA)),
  };
}

export function listLinks(sock: NetlinkSocket): LinkInfo[] {
  const req = new MessageBuilder(RTM_GETLINK, 0).raw(encodeIfInfo({}));
  return sock.dump(req, { op: 'list links' }).filter((m) => m.type === RTM_NEWLINK).map(decodeLink);
}

/** One link by name or index, or null when there is none. */
export function getLink(sock: NetlinkSocket, by: { name: string } | { index: number }): LinkInfo | null {
  const req = new MessageBuilder(RTM_GETLINK, 0).raw(encodeIfInfo({ index: 'index' in by ? by.index : 0 }));
  if ('name' in by) req.str(IFLA_IFNAME, by.name);
  try {
    const reply = sock.request(req, { op: 'get link', device: 'name' in by ? by.name : `#${by.index}` });
    const link = reply.find((m) => m.type === RTM_NEWLINK);
    return link ? decodeLink(link) : null;
  } catch (err) {
    if (err instanceof NetlinkError && err.errnoName === 'ENODEV') return null;
    throw err;
  }
}

interface LinkBasics {
  name?: string;
  up?: boolean;
  /** Move into the namespace this fd refers to. */
  netnsFd?: number;
  /** With netnsFd: the ifindex the device takes there (EBUSY if taken). */
  newIndex?: number;
  mtu?: number;
  mac?: string;
  /** "" removes the alias. */
  alias?: string;
  group?: number;
}

/** Changes to a link: LinkChanges, and link settings (flags: the IFF_SETTABLE ones these on, the others off). */
export type LinkChanges = LinkBasics & Partial<Omit<LinkSettings, 'xdp'>>;

/** Applies changes to an existing link in one RTM_NEWLINK. */
export function setLink(sock: NetlinkSocket, index: number, changes: LinkChanges, ctx: { op: string; device: string }): void {
  const up = changes.up;
  const flags = (up ? IFF_UP : 0) | ((changes.flags ?? 0) & IFF_SETTABLE);
  const change = (up === undefined ? 0 : IFF_UP) | (changes.flags === undefined ? 0 : IFF_SETTABLE);
  const req = new MessageBuilder(RTM_NEWLINK, 0).raw(encodeIfInfo({ index, flags, change }));
  if (changes.netnsFd !== undefined) req.u32(IFLA_NET_NS_FD, changes.netnsFd);
  if (changes.newIndex !== undefined) req.s32(IFLA_NEW_IFINDEX, changes.newIndex);
  if (changes.name !== undefined) req.str(IFLA_IFNAME, changes.name);
  if (changes.mtu !== undefined) req.u32(IFLA_MTU, changes.mtu);
  if (changes.mac !== undefined) req.attr(IFLA_ADDRESS, parseMac(changes.mac));
  if (changes.alias !== undefined) req.attr(IFLA_IFALIAS, Buffer.from(changes.alias, 'utf8'));
  if (changes.group !== undefined) req.u32(IFLA_GROUP, changes.group);
  if (changes.txqlen !== undefined) req.u32(IFLA_TXQLEN, changes.txqlen);
  if (changes.linkMode !== undefined) req.u8(IFLA_LINKMODE, changes.linkMode);
  if (changes.broadcast !== undefined) req.attr(IFLA_BROADCAST, parseMac(changes.broadcast));
  // The kernel lowers the IPv4 sizes with the general ones (netif_set_gso_max_size): general first.
  if (changes.gsoMaxSize !== undefined) req.u32(IFLA_GSO_MAX_SIZE, changes.gsoMaxSize);
  if (changes.gsoMaxSegs !== undefined) req.u32(IFLA_GSO_MAX_SEGS, changes.gsoMaxSegs);
  if (changes.groMaxSize !== undefined) req.u32(IFLA_GRO_MAX_SIZE, changes.groMaxSize);
  if (changes.gsoIpv4MaxSize !== undefined) req.u32(IFLA_GSO_IPV4_MAX_SIZE, changes.gsoIpv4MaxSize);
  if (changes.groIpv4MaxSize !== undefined) req.u32(IFLA_GRO_IPV4_MAX_SIZE, changes.groIpv4MaxSize);
  if (changes.protoDown !== undefined) req.u8(IFLA_PROTO_DOWN, changes.protoDown ? 1 : 0);
  if (changes.protoDownReason !== undefined) {
    const reason = changes.protoDownReason;
    req.nest(IFLA_PROTO_DOWN_REASON, (r) => r.u32(IFLA_PROTO_DOWN_REASON_MASK, 0xffffffff).u32(IFLA_PROTO_DOWN_REASON_VALUE, reason));
  }
  sock.request(req, ctx);
}

/** Detaches the XDP program attached to link `index` in `mode`. */
export function detachXdp(sock: NetlinkSocket, index: number, mode: XdpMode, ctx: { op: string; device: string }): void {
  const req = new MessageBuilder(RTM_NEWLINK, 0).raw(encodeIfInfo({ index }));
  req.nest(IFLA_XDP, (x) => x.s32(IFLA_XDP_FD, -1).u32(IFLA_XDP_FLAGS, XDP_MODES[mode].flag));
  sock.request(req, ctx);
}

/**
 * Sets the IPv6 token of link `index` (`ip token set`). The kernel takes one only on a device that
 * accepts router advertisements, solicits routers and does ARP (EINVAL otherwise).
 */
export function setIpv6Token(sock: NetlinkSocket, index: number, token: string, ctx: { op: string; device: string }): void {
  const req = new MessageBuilder(RTM_NEWLINK, 0).raw(encodeIfInfo({ index }));
  req.nest(IFLA_AF_SPEC, (af) => af.nest(AF_INET6, (v6) => v6.attr(IFLA_INET6_TOKEN, encodeIp(token))));
  sock.request(req, ctx);
}

/**
 * Adds a static link-layer multicast address (`ip maddr add`) to the device named `name` in the
 * socket's namespace. The kernel offers this through an ioctl only (SIOCADDMULTI), which any
 * socket hands to the device layer; the netlink socket is in the right namespace already.
 */
export function addStaticMulticast(sock: NetlinkSocket, name: string, address: string): void {
  libc.addLinkMulticast(sock.fd, name, parseMac(address));
}

export interface NewLinkCommon {
  name: string;
  /** The ifindex the device takes in its namespace, chosen by us so that we know it before it exists. */
  index: number;
  /** Namespace to create the device in (for veth: the peer's namespace). */
  netnsFd: number;
  mtu?: number;
  mac?: string;
  group: number;
}

/** The end of a veth that stays in the socket's namespace. */
export interface VethHostEnd {
  name: string;
  index: number;
  /** ifindex of a bridge (or other master) it joins as it is created. */
  master?: number;
  mac?: string;
}

/** A veth pair: `host` here and up, the peer `peer.name` directly in peer.netnsFd; one request. */
export function createVeth(sock: NetlinkSocket, host: VethHostEnd, peer: NewLinkCommon, ctx: { op: string; device: string }): void {
  const VETH_INFO_PEER = 1;
  const req = new MessageBuilder(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).raw(encodeIfInfo({ index: host.index, flags: IFF_UP, change: IFF_UP }));
  req.str(IFLA_IFNAME, host.name).u32(IFLA_GROUP, peer.group);
  if (peer.mtu !== undefined) req.u32(IFLA_MTU, peer.mtu);
  if (host.mac !== undefined) req.attr(IFLA_ADDRESS, parseMac(host.mac));
  if (host.master !== undefined) req.u32(IFLA_MASTER, host.master);
  req.nest(IFLA_LINKINFO, (li) => {
    li.str(IFLA_INFO_KIND, 'veth');
    li.nest(IFLA_INFO_DATA, (d) => d.nest(VETH_INFO_PEER, (p) => {
      p.raw(encodeIfInfo({ index: peer.index }));
      p.str(IFLA_IFNAME, peer.name).u32(IFLA_NET_NS_FD, peer.netnsFd).u32(IFLA_GROUP, peer.group);
      if (peer.mtu !== undefined) p.u32(IFLA_MTU, peer.mtu);
      if (peer.mac !== undefined) p.attr(IFLA_ADDRESS, parseMac(peer.mac));
    }));
  });
  sock.request(req, ctx);
}

export const MACVLAN_MODES = { private: 1, vepa: 2, bridge: 4, passthru: 8 } as const;
/** Modes a macvlan can be changed to after creation, beyond those it can be created in. */
export const MACVLAN_MODE_SOURCE = 16;

/** A macvlan on `masterIndex` (in the socket's namespace), created directly in spec.netnsFd. */
export function createMacvlan(
  sock: NetlinkSocket, masterIndex: number, mode: keyof typeof MACVLAN_MODES, spec: NewLinkCommon,
  ctx: { op: string; device: string },
): void {
  const req = new MessageBuilder(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).raw(encodeIfInfo({ index: spec.index }));
  req.str(IFLA_IFNAME, spec.name).u32(IFLA_LINK, masterIndex).u32(IFLA_NET_NS_FD, spec.netnsFd).u32(IFLA_GROUP, spec.group);
  if (spec.mtu !== undefined) req.u32(IFLA_MTU, spec.mtu);
  if (spec.mac !== undefined) req.attr(IFLA_ADDRESS, parseMac(spec.mac));
  req.nest(IFLA_LINKINFO, (li) => {
    li.str(IFLA_INFO_KIND, 'macvlan');
    li.nest(IFLA_INFO_DATA, (d) => d.u32(IFLA_MACVLAN_MODE, MACVLAN_MODES[mode]));
  });
  sock.request(req, ctx);
}

export function deleteLink(sock: NetlinkSocket, index: number, ctx: { op: string; device: string }): void {
  sock.request(new MessageBuilder(RTM_DELLINK, 0).raw(encodeIfInfo({ index })), ctx);
}

/**
 * Deletes links by ifindex with one send (an RTM_DELLINK each); each link's refusal, or undefined
 * when it was deleted, in the order given.
 */
export function deleteLinks(sock: NetlinkSocket, links: { index: number; ctx: { op: string; device: string } }[]): (NetlinkError | undefined)[] {
  return sock.requestEach(links.map(({ index, ctx }) => ({ msg: new MessageBuilder(RTM_DELLINK, 0).raw(encodeIfInfo({ index })), ctx })));
}

/** Deletes every link of `group` in the socket's namespace in one request; false if there was none. */
export function deleteLinkGroup(sock: NetlinkSocket, group: number, ctx: { op: string; device: string }): boolean {
  const req = new MessageBuilder(RTM_DELLINK, 0).raw(encodeIfInfo({ index: 0 })).u32(IFLA_GROUP, group);
  try {
    sock.request(req, ctx);
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && err.errnoName === 'ENODEV') return false;
    throw err;
  }
}

/** Adds (add) or removes one alternative name of a link. */
export function changeAltName(sock: NetlinkSocket, index: number, altName: string, add: boolean, ctx: { op: string; device: string }): void {
  const req = new MessageBuilder(add ? RTM_NEWLINKPROP : RTM_DELLINKPROP, 0).raw(encodeIfInfo({ index }));
  req.nest(IFLA_PROP_LIST, (p) => p.str(IFLA_ALT_IFNAME, altName));
  sock.request(req, ctx);
}
