// What the journal stores, as the planner produces it (src/plan): one record per requested device
// and an ordered list of steps, each naming its undo. JSON-safe; spec/journal.schema.json.
//
// The journal owns its format: the records of kernel state below (addresses, routes, neighbours,
// traffic control) are its own types, not the netlink layer's, so a change to the codec cannot
// change what a journal says or fail to read one written before. src/apply/convert-records.ts converts
// both ways. Numbers are the kernel's own values (rtnetlink), as observed, so a record replays
// exactly what was there. They mirror the netlink layer's types field for field on purpose (a
// deliberate copy, which `duplicates` lists); convert-records.ts's field-by-field copies are its twin.

import type { MacvlanMode } from '../model/devices';

/** AF_INET or AF_INET6. */
export type RecordFamily = 2 | 10;

/** One address of a device (RTM_NEWADDR), to add again. */
export interface AddressRecord {
  family: RecordFamily;
  prefixlen: number;
  /** IFA_FLAGS (the kernel's state bits too: only the settable ones are sent back). */
  flags: number;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  scope: number;
  /** IFA_ADDRESS: the address, or the peer of a point-to-point IPv4 address. */
  address: string;
  /** IFA_LOCAL, where the kernel reports one (IPv4). */
  local?: string;
  broadcast?: string;
  label?: string;
  /** Seconds left when observed; 0xffffffff is forever. */
  preferredLifetime: number;
  validLifetime: number;
  /** IFA_RT_PRIORITY: the metric of the address's prefix route. */
  rtPriority?: number;
  /** IFA_PROTO: who added it. */
  proto?: number;
}

/** A netlink attribute kept as it came (type and payload as hex), sent back unchanged. */
export interface RawAttrRecord {
  type: number;
  hex: string;
}

/** One nexthop of a multipath route (struct rtnexthop and its attributes). */
export interface NexthopRecord {
  /** The ifindex it went out of when recorded (the device's own is mapped to its index at restore). */
  ifindex: number;
  flags: number;
  hops: number;
  gateway?: string;
  /** Its other attributes (RTA_VIA, RTA_FLOW, RTA_ENCAP, ...). */
  attrs: RawAttrRecord[];
}

/** One route (RTM_NEWROUTE) with everything needed to add it again. */
export interface RouteRecord {
  family: RecordFamily;
  dstLen: number;
  srcLen: number;
  tos: number;
  /** The full table number (RTA_TABLE), above 255 too. */
  table: number;
  /** RTPROT_*: 3 boot, 4 static, ... */
  protocol: number;
  scope: number;
  /** RTN_*: 1 unicast, ... */
  type: number;
  /** rtm_flags as observed (only RTNH_F_ONLINK is sent back). */
  flags: number;
  /** The output ifindex when recorded, or 0 (routes of the config: filled in when added). */
  oif: number;
  /** RTA_METRICS (mtu, window, congestion control, ...) and any other attribute, as they came. */
  attrs: RawAttrRecord[];
  dst?: string;
  src?: string;
  gateway?: string;
  prefsrc?: string;
  /** RTA_PRIORITY: the metric. */
  priority?: number;
  /** RTA_PREF: IPv6 router preference. */
  pref?: number;
  multipath?: NexthopRecord[];
  /** RTA_NH_ID: the route goes through a nexthop object. */
  nhId?: number;
}

/**
 * A nexthop object (`ip nexthop`, RTM_NEWNEXTHOP) that goes out of the device, or a group that holds
 * one: not a nexthop of a multipath route (NexthopRecord).
 */
export interface NexthopObjectRecord {
  id: number;
  family: number;
  protocol: number;
  /** nh_flags as observed (only RTNH_F_ONLINK is sent back). */
  flags: number;
  /** NHA_OIF: the ifindex it went out of when recorded (the device's own is mapped to its index at restore). */
  oif?: number;
  /** A group's members: their ids and weights. */
  group?: { id: number; weight: number }[];
  /** Its other attributes (NHA_GATEWAY, NHA_ENCAP, NHA_GROUP_TYPE, ...), as they came. */
  attrs: RawAttrRecord[];
}

/**
 * One configured neighbour entry (ARP, NDP): permanent, noarp, externally learned, managed or
 * proxy. Journals of releases before the others were recorded hold permanent ones only.
 */
export interface NeighbourRecord {
  family: RecordFamily;
  dst: string;
  /** Link-layer address as colon-separated hex; absent for an entry without one. */
  lladdr?: string;
  /** NUD_* as observed, re-added as it was (a managed entry with none: the kernel resolves it). */
  state: number;
  /** NTF_* as observed (NTF_ROUTER, NTF_EXT_LEARNED and NTF_PROXY are sent back). */
  flags: number;
  type: number;
  protocol?: number;
  /** NDA_FLAGS_EXT as observed (NTF_EXT_MANAGED is sent back); absent where the kernel reported none. */
  extFlags?: number;
}

/** One qdisc, class or filter of a device, as creation takes it. */
export interface TcRecord {
  object: 'qdisc' | 'class' | 'filter';
  /** TCA_KIND: "pfifo", "htb", "u32", ... */
  kind: string;
  handle: number;
  parent: number;
  /** tcm_info: for a filter, its priority (high 16 bits) and protocol (low 16, network order). */
  info: number;
  /** The configuring attributes (TCA_OPTIONS, TCA_STAB, ...). */
  attrs: RawAttrRecord[];
}

/** A device's writable conf and neigh sysctls, "ipv4/rp_filter" -> "0", "ipv4/neigh/ucast_solicit" -> "3" (src/netns/sysctl.ts reads and writes them). */
export type DeviceSysctls = Record<string, string>;

/**
 * Link settings that travel with a device between namespaces, which the container can change
 * (RTM_NEWLINK). Sizes the kernel did not report are absent. A deliberate mirror of netlink's
 * LinkSettings: the journal's format is its own and may diverge (src/apply/convert-records.ts converts).
 */
export interface LinkSettingsRecord {
  /** IFF_* bits user space sets (promisc, allmulti, noarp, multicast, dynamic, ...), as they were. */
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
  protoDown?: boolean;
  protoDownReason?: number;
  /** Ids of the XDP programs attached per mode ("drv", "skb", "hw"); {} for none. */
  xdp: { drv?: number; skb?: number; hw?: number };
}

/**
 * ethtool settings (the kernel's ethtool netlink family), by group; a group the driver does not
 * report is absent. Names are ethtool's own.
 */
export interface EthtoolRecord {
  /** Changeable offload features: what was asked for, and what was on. */
  features?: { wanted: Record<string, boolean>; active: Record<string, boolean> };
  linkInfo?: Record<string, number>;
  rings?: Record<string, number>;
  channels?: Record<string, number>;
  coalesce?: Record<string, number>;
  pause?: Record<string, number>;
  eee?: Record<string, number>;
  module?: Record<string, number>;
  /** The driver's message level bits that were on. */
  messages?: Record<string, boolean>;
  wakeOnLan?: Record<string, boolean>;
  privateFlags?: Record<string, boolean>;
}

/**
 * What a move to another namespace destroys, and what the container can change on a device,
 * recorded before the move (src/apply/device-state.ts).
 */
export interface DeviceState {
  routes: RouteRecord[];
  neighbours: NeighbourRecord[];
  /** The device's writable ipv4/ipv6 conf and neigh values ("ipv6/accept_ra" -> "0", "ipv4/neigh/ucast_solicit" -> "3"). */
  sysctls: DeviceSysctls;
  /** Qdiscs and classes, parents first, then filters; without the kernel's default qdisc. */
  tc: TcRecord[];
  /**
   * The nexthop objects out of the device, then the groups that hold any of them; absent in
   * journals of releases before they were recorded.
   */
  nexthops?: NexthopObjectRecord[];
  /** Absent in journals of releases before it was recorded: those restore none of it. */
  link?: LinkSettingsRecord;
  /** Absent in journals of releases before it was recorded, or where the kernel has no ethtool family. */
  ethtool?: EthtoolRecord;
  /**
   * Sysctls that refused reading, as ipv6/stable_secret does until it is set: the kernel cannot
   * unset them again. Absent: none, or a journal of a release before it was recorded.
   */
  unsetSysctls?: string[];
  /** The IPv6 token (`ip token`), which the move resets; absent when there was none ("::"). */
  ipv6Token?: string;
  /** Static link-layer multicast addresses (`ip maddr add`), which the move flushes, in the kernel's order; absent when none. */
  staticMulticast?: string[];
}

/** A device's state before oci-netdev touched it; what poststop puts back. */
export interface DeviceSnapshot {
  index: number;
  name: string;
  mtu: number;
  mac: string | null;
  up: boolean;
  alias: string;
  group: number;
  altNames: string[];
  addresses: AddressRecord[];
  /** Host devices: routes, neighbours, sysctls and tc, which the move destroys. */
  state?: DeviceState;
}

/**
 * What a process in the container cannot change about a device, recorded at createRuntime.
 * Devices are found again by these and by their ifindex, never by name, alias or group.
 */
export interface DeviceIdentity {
  /** IFLA_INFO_KIND; null for hardware NICs. */
  kind: string | null;
  permanentMac: string | null;
  parentBus: string | null;
  parentDev: string | null;
  /** veth: the ifindex of its peer, which stays on the host. */
  hostPeerIndex?: number;
  /** macvlan and other stacked devices: the ifindex of the lower device on the host. */
  hostLowerIndex?: number;
  /**
   * Tunnels (vxlan, gre, ...): the kernel ties the device to the namespace it was made in (its
   * link namespace), here the host's, and reports it wherever the device goes. Absent: not such a
   * device, or a journal of an older release.
   */
  hostLinkNet?: boolean;
  /**
   * A vxlan's VNI and UDP port (fixed for its life) and its underlay's ifindex on the host (0:
   * none): the kernel allows one vxlan per VNI, port and underlay in a namespace.
   */
  vxlan?: { id: number; port: number; underlay: number };
}

/** What every record holds, whatever the kind. */
interface RecordBase {
  key: string;
  /** Requested name in the container; may end in %d. */
  targetName: string;
  identity: DeviceIdentity;
  /** The ifindex the device has in the container's namespace, chosen at planning. */
  containerIndex: number;
  /** The runtime had already moved it (netDevices-aware runc/crun); always false for created devices. */
  adopted: boolean;
  /** Addresses to add in the container (host devices: their global permanent ones). */
  containerAddresses: AddressRecord[];
  mtu?: number;
  mac?: string;
  /** Routes added in the container once the device is up (RTA_OIF filled in then), gateway-less ones first. */
  containerRoutes?: RouteRecord[];
  /** Filled in as the steps run. */
  containerName?: string;
  /**
   * The device's own alternative names that are not back on it because the host uses them; the
   * record stays open until gc puts them back.
   */
  removedAltNames?: string[];
  /** Why the device is provably gone; the record stays in the journal. */
  lost?: string;
  /**
   * A record migrated from a version 1 journal (src/state/migrate.ts) and not yet matched to its
   * device: that release recorded no identity nor ifindex, only the alias it wrote on a moved
   * device. Until src/apply/legacy.ts matches it, the identity, the ifindexes (0) and a host
   * device's original group and altnames are placeholders, and no operation uses them.
   */
  v1?: { marker: string };
}

/** A host device moved into the container (or adopted there, moved by the runtime). */
export interface HostRecord extends RecordBase {
  kind: 'host';
  /** The device as it was; adopted devices record what the runtime left in the container. */
  original: DeviceSnapshot;
  /**
   * The name the device is home under because its own was taken on the host. The record stays
   * open, and the name held (claims), until gc gives the device its own name back.
   */
  fallbackName?: string;
}

/** A veth pair created for the container: one end inside, one on the host. */
export interface VethRecord extends RecordBase {
  kind: 'veth';
  identity: DeviceIdentity & { hostPeerIndex: number };
  /** The temporary name used in the container before the rename. */
  tempName: string;
  /** The ifindex of the host end, chosen at planning. */
  hostIndex: number;
  /** The host bridge its host end joins at creation, as observed at planning. */
  hostBridge?: { name: string; index: number };
  /** MAC and addresses of the host end, which go with it when it is deleted. */
  hostMac?: string;
  hostAddresses?: AddressRecord[];
}

/** A macvlan created in the container on a host master. */
export interface MacvlanRecord extends RecordBase {
  kind: 'macvlan';
  identity: DeviceIdentity & { hostLowerIndex: number };
  /** The temporary name used in the container before the rename. */
  tempName: string;
  master: string;
  mode: MacvlanMode;
}

export type DeviceRecord = HostRecord | VethRecord | MacvlanRecord;

export type Operation =
  | 'moveIn' | 'moveOut'
  | 'copyAddresses'
  | 'configure'
  | 'addRoutes'
  | 'createVeth' | 'createMacvlan' | 'renameInContainer' | 'deleteCreated';

export interface Step {
  device: string;
  do: Operation;
  undo?: Operation;
}

export interface Plan {
  /** IFLA_GROUP given to every device created for this container (a hint for `ip link`; never trusted). */
  group: number;
  devices: DeviceRecord[];
  steps: Step[];
}
