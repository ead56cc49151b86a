// What the engine reads of the kernel before it plans: the links and addresses of the host and of
// the container's namespace, the host's default routes, the id the container gives the host's
// namespace, and what a move destroys of the requested host devices.

import { listAddresses } from '../netlink/address';
import { listLinks } from '../netlink/link';
import type { LinkInfo } from '../netlink/link';
import { netnsIdOf } from '../netlink/nsid';
import { defaultRoutesThrough } from '../netlink/route';
import type { Observed } from '../plan/observed';
import { captureDeviceStates } from './device-state';
import type { EarlyDeviceStates } from './device-state';
import type { Side } from './identity';
import { indexedAddressRecord } from './convert-records';

/** The links of one side; none in a namespace not made yet (null). */
export function linksOf(side: Side | null): LinkInfo[] {
  return side ? listLinks(side.sock) : [];
}

/** The addresses of one side; none in a namespace not made yet or gone (null). */
export function addressesOf(side: Side | null): Observed['containerAddresses'] {
  return side ? listAddresses(side.sock).map(indexedAddressRecord) : [];
}

/**
 * The links whose default routes the refusals of the links `indexes` can depend on: every link
 * joined to them through lower devices, veth peers, masters and ports, either way (more than
 * dependencies() follows, and few enough to look up one by one).
 */
function linksAround(hostLinks: LinkInfo[], indexes: number[]): number[] {
  const neighbours = new Map<number, number[]>();
  const join = (a: number, b: number) => {
    neighbours.set(a, [...(neighbours.get(a) ?? []), b]);
    neighbours.set(b, [...(neighbours.get(b) ?? []), a]);
  };
  for (const l of hostLinks) {
    if (l.linkIndex !== null && l.linkNetnsid === null && l.linkIndex !== l.index) join(l.index, l.linkIndex);
    if (l.masterIndex !== null) join(l.index, l.masterIndex);
  }
  const seen = new Set(indexes);
  const queue = [...seen];
  while (queue.length) {
    for (const n of neighbours.get(queue.shift()!) ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        queue.push(n);
      }
    }
  }
  return [...seen];
}

/**
 * The host as the always-refused rules see it: its links, addresses and default routes. The
 * default routes through the links around `devices` (names) only, when given: a lookup each, not
 * the routing table.
 */
export function observeHost(host: Side, hostLinks = linksOf(host), devices?: string[]): Pick<Observed, 'hostLinks' | 'hostAddresses' | 'hostDefaultRoutes'> {
  const around = devices ? linksAround(hostLinks, hostLinks.filter((l) => devices.includes(l.name)).map((l) => l.index)) : hostLinks.map((l) => l.index);
  return { hostLinks, hostAddresses: listAddresses(host.sock).map(indexedAddressRecord), hostDefaultRoutes: defaultRoutesThrough(host.sock, around) };
}

/**
 * Everything the planner reads, given the links already listed on each side (the selectors chose
 * the devices from them), the names of the requested host devices and of the macvlan masters
 * (the always-refused rules concern both), and the device states read ahead, if any.
 */
export function observe(
  host: Side, container: Side | null, links: { host: LinkInfo[]; container: LinkInfo[] }, hostDevices: string[], masters: string[],
  early?: EarlyDeviceStates,
): Observed {
  return {
    ...observeHost(host, links.host, [...hostDevices, ...masters]),
    containerLinks: links.container,
    containerAddresses: addressesOf(container),
    hostDeviceStates: captureDeviceStates(host, links.host, hostDevices, early),
    hostNsidInContainer: container ? netnsIdOf(container.sock, host.ns.fd) : null,
  };
}
