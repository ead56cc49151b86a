// What the planner produces and the journal stores: one record per requested
// device and an ordered list of steps, each naming its undo. JSON-safe.

import type { DeviceKind, MacvlanMode } from '../config/types';
import type { AddressInfo } from '../netlink/address';
import type { NeighbourEntry } from '../netlink/neighbour';
import type { RouteEntry } from '../netlink/route';
import type { TcObject } from '../netlink/tc';
import type { DeviceSysctls } from '../netns/sysctl';

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
  addresses: AddressInfo[];
  /** Host devices: routes, neighbours, sysctls and tc, which the move destroys. */
  state?: DeviceState;
}

export interface DeviceRecord {
  key: string;
  kind: DeviceKind;
  /** Requested name in the container; may end in %d. */
  targetName: string;
  /** IFLA_IFALIAS written while we hold the device, so it can be found anywhere. */
  marker: string;
  /** host: the device as it was; adopted devices record what the runtime left in the container. */
  original?: DeviceSnapshot;
  /** The runtime had already moved it (netDevices-aware runc/crun). */
  adopted: boolean;
  /** Addresses to add in the container (host devices: their global permanent ones). */
  containerAddresses: AddressInfo[];
  mtu?: number;
  mac?: string;
  master?: string;
  mode?: MacvlanMode;
  /** Created devices: the temporary name used before the rename. */
  tempName?: string;
  /** Filled in as the steps run. */
  containerName?: string;
}

export type Operation =
  | 'mark' | 'unmark'
  | 'moveIn' | 'moveOut'
  | 'copyAddresses'
  | 'configure'
  | 'createVeth' | 'createMacvlan' | 'renameInContainer' | 'deleteCreated';

export interface Step {
  device: string;
  do: Operation;
  undo?: Operation;
}

export interface Plan {
  /** IFLA_GROUP given to every device created for this container. */
  group: number;
  devices: DeviceRecord[];
  steps: Step[];
}
