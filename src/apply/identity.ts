// Finding a device again by what the container cannot forge: its ifindex in the pinned namespace,
// its kind, permanent MAC and parent bus device, the peer or lower device it has on the host, and
// the host's namespace as a tunnel's link namespace (with a vxlan's VNI, port and underlay). Names, aliases
// and groups are the container's to change, so nothing here looks at them. A device with none of
// these (a tun device) cannot be told from a look-alike: unprovenIdentity (src/plan) says so.

import * as fs from 'fs';
import type { NetlinkSocket } from '../netlink/client';
import type { Netns } from '../netns/netns';
import { getLink, listLinks, LinkInfo } from '../netlink/link';
import { netnsIdOf } from '../netlink/nsid';
import { unprovenIdentity } from '../plan/plan';
import type { DeviceIdentity, DeviceRecord } from '../state/journal-records';

export interface Side {
  ns: Netns;
  sock: NetlinkSocket;
}

export interface Sides {
  host: Side;
  /** Null when the container's namespace is gone. */
  container: Side | null;
}

export type Where = 'host' | 'container';

export interface Location {
  where: Where;
  link: LinkInfo;
}

/** Whether the identity holds something only the real device has, so that a scan can find it. */
function isDistinctive(id: DeviceIdentity): boolean {
  return id.permanentMac !== null || id.parentDev !== null || id.hostPeerIndex !== undefined || id.hostLowerIndex !== undefined
    || (id.hostLinkNet === true && id.vxlan !== undefined);
}

/**
 * Namespace ids as the kernel reports them (the container can add ids to its own table, but never
 * change one that exists). Asked after the link dump that makes the kernel assign them.
 */
function containerIdInHost(sides: Sides): number | null {
  return sides.container ? netnsIdOf(sides.host.sock, sides.container.ns.fd) : null;
}

export function hostIdInContainer(sides: Sides): number | null {
  return sides.container ? netnsIdOf(sides.container.sock, sides.host.ns.fd) : null;
}

/** Whether `link`, seen on `where`, is the device `rec` describes. */
export function isTheDevice(sides: Sides, rec: DeviceRecord, link: LinkInfo, where: Where): boolean {
  const id = rec.identity;
  if (link.kind !== id.kind) return false;
  if (id.permanentMac !== null && link.permanentMac !== id.permanentMac) return false;
  if (id.parentDev !== null && (link.parentDev !== id.parentDev || link.parentBus !== id.parentBus)) return false;
  const vx = link.vxlan;
  if (id.vxlan !== undefined && (vx?.id !== id.vxlan.id || vx.port !== id.vxlan.port || vx.underlay !== id.vxlan.underlay)) return false;
  if (id.hostLinkNet) {
    // Seen from the host, the host is its own namespace: the kernel then reports no link namespace.
    if (where === 'host' ? link.linkNetnsid !== null : link.linkNetnsid === null || link.linkNetnsid !== hostIdInContainer(sides)) return false;
  }
  if (id.hostPeerIndex !== undefined) {
    if (where === 'host') return link.linkIndex === id.hostPeerIndex && link.linkNetnsid === null;
    // Asked of the peer on the host, which the container cannot touch: it must point back here.
    const peer = getLink(sides.host.sock, { index: id.hostPeerIndex });
    return peer !== null && peer.kind === 'veth' && peer.linkIndex === link.index && peer.linkNetnsid !== null
      && peer.linkNetnsid === containerIdInHost(sides);
  }
  if (id.hostLowerIndex !== undefined) {
    if (where === 'host') return link.linkIndex === id.hostLowerIndex && link.linkNetnsid === null;
    return link.linkIndex === id.hostLowerIndex && link.linkNetnsid !== null && link.linkNetnsid === hostIdInContainer(sides);
  }
  return true;
}

/**
 * Why the device at the recorded ifindex in the container is not the one oci-netdev put there, or
 * undefined when it is, or when there is none.
 */
export function impostorAt(sides: Sides, rec: DeviceRecord): string | undefined {
  const at = sides.container ? getLink(sides.container.sock, { index: rec.containerIndex }) : null;
  if (!at || isTheDevice(sides, rec, at, 'container')) return undefined;
  return `ifindex ${rec.containerIndex} in the container holds ${at.name}, which is not the device oci-netdev ${rec.kind === 'host' ? 'moved' : 'made'} there`;
}

/** The device in the container: at its recorded ifindex, else (distinctive identities only) anywhere there. */
export function findInContainer(sides: Sides, rec: DeviceRecord): LinkInfo | null {
  const ct = sides.container;
  // A version 1 record not matched to a device (src/apply/legacy.ts) has nothing to find it by.
  if (!ct || rec.v1) return null;
  const at = getLink(ct.sock, { index: rec.containerIndex });
  if (at && isTheDevice(sides, rec, at, 'container')) return at;
  if (!isDistinctive(rec.identity)) return null;
  return listLinks(ct.sock).find((l) => l.index !== rec.containerIndex && isTheDevice(sides, rec, l, 'container')) ?? null;
}

/**
 * The device on the host: at its original ifindex (never moved, or returned and given it back),
 * else (distinctive identities only) anywhere on the host.
 */
export function findOnHost(sides: Sides, rec: DeviceRecord): LinkInfo | null {
  if (rec.v1) return null;
  const index = rec.kind === 'host' && !rec.adopted ? rec.original.index : undefined;
  if (index !== undefined) {
    const at = getLink(sides.host.sock, { index });
    if (at && isTheDevice(sides, rec, at, 'host')) return at;
  }
  if (!isDistinctive(rec.identity)) return null;
  return listLinks(sides.host.sock).find((l) => l.index !== index && isTheDevice(sides, rec, l, 'host')) ?? null;
}

/**
 * Where the device is now: in the container, on the host, or nowhere we can see. Only a device
 * that came from the host can be home; a created one out of the container is gone (a macvlan of
 * the host's on the same master is not it).
 */
export function locate(sides: Sides, rec: DeviceRecord): Location | null {
  const inside = findInContainer(sides, rec);
  if (inside) return { where: 'container', link: inside };
  if (rec.kind !== 'host') return null;
  const home = findOnHost(sides, rec);
  return home ? { where: 'host', link: home } : null;
}

/**
 * Whether the kernel shows that a device found neither in the container nor on the host exists no
 * more: a veth whose peer on the host is gone (deleting either end deletes both), a stacked
 * device whose lower device is gone, a device whose parent bus device was removed. Otherwise it
 * may be alive in another namespace (one the container made), or be the link of its kind at its
 * ifindex in the container, and is not gone. A device with no such tie (a tun, an ifb) is never
 * shown gone.
 */
export function provablyGone(sides: Sides, rec: DeviceRecord): boolean {
  const id = rec.identity;
  // Nothing ties it to anything: it may live on in a namespace the container made, under any name.
  // (A version 1 record not matched yet has a placeholder identity, not a known kind.)
  if (!rec.v1 && unprovenIdentity(id) !== undefined) return false;
  // A link of its kind at its ifindex may be it, with a tie that cannot be checked from here.
  const at = sides.container ? getLink(sides.container.sock, { index: rec.containerIndex }) : null;
  if (at && at.kind === id.kind) return false;
  if (id.hostPeerIndex !== undefined) {
    const peer = getLink(sides.host.sock, { index: id.hostPeerIndex });
    return !(peer && peer.kind === 'veth' && peer.linkNetnsid !== null);
  }
  if (id.hostLowerIndex !== undefined) return getLink(sides.host.sock, { index: id.hostLowerIndex }) === null;
  if (id.parentDev !== null) {
    const safe = (part: string | null): part is string => part !== null && part !== '..' && part !== '.' && !part.includes('/');
    return safe(id.parentBus) && safe(id.parentDev) && !fs.existsSync(`/sys/bus/${id.parentBus}/devices/${id.parentDev}`);
  }
  return true;
}

/**
 * Whether the link at the device's ifindex in the container is of its kind and tied (a veth
 * peer, a lower device) to a namespace other than `sides.host`: then `sides.host` is not where
 * the device came from. For journals that did not record the host's namespace.
 */
export function tiedElsewhere(sides: Sides, rec: DeviceRecord): boolean {
  // containerIndex 0: a version 1 record no device was matched to; it is tied to nothing we can ask.
  if (!sides.container || rec.containerIndex === 0 || (rec.identity.hostPeerIndex === undefined && rec.identity.hostLowerIndex === undefined)) return false;
  const at = getLink(sides.container.sock, { index: rec.containerIndex });
  return at !== null && at.kind === rec.identity.kind && at.linkNetnsid !== null && at.linkNetnsid !== hostIdInContainer(sides);
}
