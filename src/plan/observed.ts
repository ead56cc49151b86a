// The planner's input: what the host and the container's namespace hold now, as src/apply/observe.ts
// reads it. Its own file so that the planner and its refusals (refusals.ts) both take it from below.

import type { LinkInfo } from '../netlink/link';
import type { DefaultRoute } from '../netlink/route';
import type { AddressRecord, DeviceState } from '../state/journal-records';

/** An address as observed (src/apply/observe.ts), with the ifindex of its link. */
export type IndexedAddress = AddressRecord & { index: number };

export interface Observed {
  hostLinks: LinkInfo[];
  hostAddresses: IndexedAddress[];
  containerLinks: LinkInfo[];
  containerAddresses: IndexedAddress[];
  /** Links that carry a default route in the host namespace (src/netlink/route.ts); the engine always fills it. */
  hostDefaultRoutes?: DefaultRoute[];
  /** The id the container's namespace gives the host's (IFLA_LINK_NETNSID of devices whose peer is there). */
  hostNsidInContainer?: number | null;
  /** Routes, neighbours, sysctls and tc of the requested host devices, by name (src/apply/device-state.ts). */
  hostDeviceStates?: Map<string, DeviceState>;
}
