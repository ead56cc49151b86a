// What the journal stores, as the planner produces it (src/plan): one record per requested device
// and an ordered list of steps, each naming its undo. JSON-safe; spec/journal.schema.json.

import type { AddressInfo } from '../netlink/address';
import type { NeighbourEntry } from '../netlink/neighbour';
import type { RouteEntry } from '../netlink/route';
import type { TcObject } from '../netlink/tc';

export type DeviceKind = 'host' | 'veth' | 'macvlan';
export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';
/** A device's writable conf sysctls, "ipv4/rp_filter" -> "0" (src/netns/sysctl.ts reads and writes them). */
export type DeviceSysctls = Record<string, string>;

/** What a move to another namespace destroys, recorded before it (src/apply/device-state.ts). */
export interface DeviceState {
  routes: RouteEntry[];
  neighbours: NeighbourEntry[];
  /** The device's writable ipv4/ipv6 conf values ("ipv6/accept_ra" -> "0"). */
  sysctls: DeviceSysctls;
  /** Qdiscs and classes, parents first, then filters; without the kernel's default qdisc. */
  tc: TcObject[];
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
  addresses: AddressInfo[];
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
  containerAddresses: AddressInfo[];
  mtu?: number;
  mac?: string;
  /** Routes added in the container once the device is up (RTA_OIF filled in then), gateway-less ones first. */
  containerRoutes?: RouteEntry[];
  /** Filled in as the steps run. */
  containerName?: string;
  /** Alternative names taken off the device because they clashed on the host at restore. */
  removedAltNames?: string[];
  /** Why the device is provably gone; the record stays in the journal. */
  lost?: string;
}

/** A host device moved into the container (or adopted there, moved by the runtime). */
export interface HostRecord extends RecordBase {
  kind: 'host';
  /** The device as it was; adopted devices record what the runtime left in the container. */
  original: DeviceSnapshot;
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
  hostAddresses?: AddressInfo[];
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
