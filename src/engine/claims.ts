// What other containers' journals hold (their claims): host device names, ifindexes in a shared
// namespace, groups, macvlan masters, MACs and addresses; and the names a restored journal waits for.

import { PlanError } from '../errors';
import { randomGroup } from '../model/devices';
import { canonicalIp, isLinkLocalIpv6 } from '../config';
import type { AddressesInUse } from '../config';
import type { Observed } from '../plan/observed';
import type { Netns } from '../netns/netns';
import type { LinkInfo } from '../netlink/link';
import type { BadJournal, ClaimRecord, Journal, Lock, StateDir } from '../state/statedir';

/** Devices other containers' journals hold in this same namespace, by ifindex there. */
export function claimedInNamespace(others: ClaimRecord[], ns: Netns): Map<number, string> {
  const held = new Map<number, string>();
  for (const c of others) {
    if (c.netnsDev !== ns.dev || c.netnsIno !== ns.ino) continue;
    for (const index of c.containerIndexes) held.set(index, c.containerId);
  }
  return held;
}

/** A group number no other journal and no visible link uses. */
export function allocateGroup(others: ClaimRecord[], links: LinkInfo[]): number {
  const used = new Set([...others.map((c) => c.group), ...links.map((l) => l.group)]);
  for (;;) {
    const g = randomGroup();
    if (!used.has(g)) return g;
  }
}

/**
 * Host device name -> id of the container holding it: a moved device's original name (and the
 * fallback name it is home under while its record waits for that name), a created veth's key, and whatever name a host link in another plan's group has now (a veth host end the
 * host renamed).
 */
export function heldOnHost(claims: ClaimRecord[], hostLinks: LinkInfo[]): Map<string, string> {
  const held = new Map<string, string>();
  for (const c of claims) for (const name of c.hostNames) held.set(name, c.containerId);
  const groups = new Map(claims.map((c) => [c.group, c.containerId]));
  for (const l of hostLinks) {
    const owner = groups.get(l.group);
    if (owner !== undefined) held.set(l.name, owner);
  }
  return held;
}

/**
 * The MACs and addresses of the host's devices (but those the request moves, whose own they are)
 * and those other containers' journals hold, with who uses each: containers first, then host
 * devices, an address with the prefix the host routes to it (a link-local one alone: its prefix
 * is its link's). `held`: host device name -> the container holding it.
 */
export function addressesInUse(observed: Observed, others: ClaimRecord[], moved: string[], held: Map<string, string>): AddressesInUse {
  const inUse: AddressesInUse = { macs: new Map(), ips: [] };
  const names = new Map(observed.hostLinks.map((l) => [l.index, l.name]));
  const hostDevice = (name: string) => (held.has(name) ? `container ${held.get(name)!} (host device ${name})` : `host device ${name}`);
  for (const l of observed.hostLinks) if (l.mac !== null && !moved.includes(l.name)) inUse.macs.set(l.mac, hostDevice(l.name));
  for (const c of others) {
    for (const mac of c.macs) inUse.macs.set(mac, `container ${c.containerId}`);
    for (const text of c.addresses) {
      const ip = canonicalIp(text);
      if (ip !== undefined) inUse.ips.push({ address: ip, prefixlen: ip.includes(':') ? 128 : 32, holder: `container ${c.containerId}` });
    }
  }
  for (const a of observed.hostAddresses) {
    const name = names.get(a.index);
    const ip = canonicalIp(a.local ?? a.address);
    if (name === undefined || ip === undefined || moved.includes(name)) continue;
    inUse.ips.push({ address: ip, prefixlen: isLinkLocalIpv6(ip) ? 128 : a.prefixlen, holder: hostDevice(name), device: name });
  }
  return inUse;
}

/** A random locally administered unicast MAC, as the kernel would choose, but none of `taken`, which it joins. */
export function unusedMac(taken: Set<string>): string {
  for (;;) {
    const bytes = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256));
    bytes[0] = (bytes[0] & 0xfe) | 0x02;
    const mac = bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
    if (taken.has(mac)) continue;
    taken.add(mac);
    return mac;
  }
}

/** ifindex of a host master -> id of the container whose journal holds a macvlan on it. */
export function macvlanMasters(claims: ClaimRecord[]): Map<number, string> {
  const masters = new Map<number, string>();
  for (const c of claims) for (const index of c.macvlanLowers) masters.set(index, c.containerId);
  return masters;
}

/**
 * A device the plan found missing from the host may be held by a container whose journal cannot
 * be read: the error says so, naming them.
 */
export function mayBeHeld(err: unknown, devices: { key: string; kind: string; master?: string }[], hostLinks: LinkInfo[], bad: BadJournal[]): unknown {
  if (!(err instanceof PlanError) || err.op !== 'plan' || !bad.length) return err;
  const spec = devices.find((d) => d.key === err.device);
  const names = [spec?.kind === 'host' ? spec.key : undefined, spec?.master].filter((n): n is string => n !== undefined);
  const missing = names.find((n) => !hostLinks.some((l) => l.name === n));
  if (missing === undefined) return err;
  const [who, whose] = bad.length > 1 ? ['containers', 'whose journals cannot'] : ['container', 'whose journal cannot'];
  const ids = bad.map((b) => b.containerId).join(', ');
  return new PlanError(`${err.message}; ${missing} may be held by ${who} ${ids}, ${whose} be read (see oci-netdev gc)`, { device: err.device, op: 'plan' });
}

/**
 * What keeps a restored journal open: host devices home under a fallback name, or without some of
 * their own altnames, because the host uses those names. One phrase per device; none when closed.
 */
export function waitingNames(j: Journal): string[] {
  return j.plan.devices.flatMap((d) => {
    if (d.kind !== 'host' || (d.fallbackName === undefined && !d.removedAltNames?.length)) return [];
    const waits = [
      ...(d.fallbackName !== undefined ? [d.original.name] : []),
      ...(d.removedAltNames ?? []).map((a) => `altname ${a}`),
    ];
    return [`${d.key}: home as ${d.fallbackName ?? d.original.name}, waits for ${waits.join(' and ')} to be free on the host`];
  });
}

/**
 * The names other containers' records hold on the host, for a fallback name (`read` is
 * ApplyContext.heldElsewhere): read under the claims lock, which a read takes and `recorded`
 * (ApplyContext.fallbackRecorded) lets go once the journal records the name chosen, so that the
 * devices still to move home do not hold other hooks up; `using` releases it in any case.
 */
export class NamesHeldElsewhere implements Disposable {
  private lock?: Lock;
  private names?: Map<string, string>;

  constructor(private readonly store: StateDir, private readonly id: string) {}

  readonly read = (): Map<string, string> => {
    if (!this.lock || !this.names) {
      this.lock = this.store.lockClaims();
      this.names = heldOnHost(this.store.scanClaims().claims.filter((c) => c.containerId !== this.id), []);
    }
    return this.names;
  };

  readonly recorded = (): void => {
    this.lock?.release();
    this.lock = undefined;
  };

  [Symbol.dispose](): void {
    this.lock?.release();
  }
}
