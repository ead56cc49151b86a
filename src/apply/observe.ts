// What the engine reads of the kernel before it plans: the links and addresses of the host and of
// the container's namespace, the host's default routes, the id the container gives the host's
// namespace, and what a move destroys of the requested host devices.

import { listAddresses } from '../netlink/address';
import { listLinks } from '../netlink/link';
import type { LinkInfo } from '../netlink/link';
import { netnsIdOf } from '../netlink/nsid';
import { listDefaultRoutes } from '../netlink/route';
import type { Observed } from '../plan/plan';
import { captureDeviceStates } from './device-state';
import type { Side } from './identity';

/** The links of one side; none in a namespace not made yet (null). */
export function linksOf(side: Side | null): LinkInfo[] {
  return side ? listLinks(side.sock) : [];
}

/** The addresses of one side; none in a namespace not made yet or gone (null). */
export function addressesOf(side: Side | null): Observed['containerAddresses'] {
  return side ? listAddresses(side.sock) : [];
}

/** The host as the always-refused rules see it: its links, addresses and default routes. */
export function observeHost(host: Side, hostLinks = linksOf(host)): Pick<Observed, 'hostLinks' | 'hostAddresses' | 'hostDefaultRoutes'> {
  return { hostLinks, hostAddresses: listAddresses(host.sock), hostDefaultRoutes: listDefaultRoutes(host.sock) };
}

/**
 * Everything the planner reads, given the links already listed on each side (the selectors chose
 * the devices from them) and the names of the requested host devices.
 */
export function observe(host: Side, container: Side | null, links: { host: LinkInfo[]; container: LinkInfo[] }, hostDevices: string[]): Observed {
  return {
    ...observeHost(host, links.host),
    containerLinks: links.container,
    containerAddresses: addressesOf(container),
    hostDeviceStates: captureDeviceStates(host.sock, links.host, hostDevices),
    hostNsidInContainer: container ? netnsIdOf(container.sock, host.ns.fd) : null,
  };
}
