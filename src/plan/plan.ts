// Pure planning: requested devices + what the host and container hold now ->
// device records and ordered steps with their undos. No I/O here.
// About 400 lines on purpose: the planner is one pure function and the refusals it applies are
// already in refusals.ts; what remains is read top to bottom as the order of the steps.

import { PICKED_INDEX_BASE } from '../model/devices';
import type { DeviceSpec } from '../config/types';
import { hostDeviceName } from '../config/types';
import type { LinkInfo } from '../netlink/link';
import { RT_TABLE_MAIN, RTN_UNICAST, RTPROT_STATIC } from '../netlink/route';
import { AF_INET, AF_INET6, IFA_F_NODAD, IFA_F_PERMANENT, IFA_F_STABLE_PRIVACY, IFAPROT_KERNEL_LL, IFF_LOOPBACK, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE } from '../netlink/constants';
import { DeviceBusyError, PlanError } from '../errors';
import type { Policy } from '../config/policy';
import { checkGateways, plannedRoutes, PlannedRoute } from '../config/routes';
import { alwaysRefusedError, hostDeviceRefusal, passthruRefusal } from './refusals';
import type { IndexedAddress, Observed } from './observed';
import type { AddressRecord, DeviceIdentity, DeviceRecord, DeviceSnapshot, DeviceState, Plan, RouteRecord, Step } from '../state/journal-records';

export interface PlanContext {
  group: number;
  /** Host device name -> id of the container whose journal holds it. */
  claims: Map<string, string>;
  /** ifindex in the container's namespace -> id of another container whose journal holds that device there. */
  claimedInContainer?: Map<number, string>;
  /** Where chosen ifindexes of created devices start (random per run, so hooks running at once rarely meet). */
  indexBase?: number;
  /** ifindex of a host device -> id of another container whose journal holds a macvlan on it. */
  macvlanMasters: Map<number, string>;
  /** The policy in force: the always-refused rules name it, though it cannot lift them. */
  policy: Policy;
  /**
   * A MAC for a created device the request gives none, chosen now rather than by the kernel at
   * creation, so that the claims record it from the start and no other request can take it.
   */
  newMac?: () => string;
}

export const isTemplate = (name: string): boolean => name.endsWith('%d');

/** Global permanent addresses: the ones runtime-spec says move with the device. */
export function isPortable(a: AddressRecord): boolean {
  return (a.flags & IFA_F_PERMANENT) !== 0 && a.scope === RT_SCOPE_UNIVERSE;
}

/**
 * An address as added in the container: IPv6 without duplicate address detection unless the entry
 * keeps it (`dad`), so that it is usable when the container's first process starts; a moved
 * device's addresses were valid on the same link already. The host restore keeps the originals.
 */
export function forContainer(a: AddressRecord, keepDad = false): AddressRecord {
  if (a.family !== AF_INET6) return a;
  return { ...a, flags: keepDad ? a.flags & ~IFA_F_NODAD : a.flags | IFA_F_NODAD };
}

/**
 * An IPv6 link-local address the kernel made from the device's addr_gen_mode (IFA_PROTO
 * kernel_ll, Linux 6.3 and later), as opposed to one the host added. At restore the kernel makes
 * it again from the mode, secret and MAC put back; one it makes that the record lacks goes.
 */
export function isKernelLinkLocal(a: AddressRecord): boolean {
  return a.family === AF_INET6 && a.scope === RT_SCOPE_LINK && a.proto === IFAPROT_KERNEL_LL;
}

/**
 * An address restore leaves to the kernel: a link-local it made by stable privacy (from the
 * device's secret, or a random one), which it makes again from the secret and mode put back,
 * flagged as only the kernel can flag it. Every other address, the kernel's EUI-64 link-local too
 * (the host may have changed the MAC or the mode since), is added as recorded.
 */
export function isLeftToKernel(a: AddressRecord): boolean {
  return isKernelLinkLocal(a) && (a.flags & IFA_F_STABLE_PRIVACY) !== 0;
}

/**
 * The order in which to add `addresses` (as the kernel listed them) so that the kernel lists them
 * so again: IPv4 as listed (the kernel appends), IPv6 oldest first (the kernel lists each scope
 * newest first).
 */
export function restoreOrder(addresses: AddressRecord[]): AddressRecord[] {
  return [...addresses.filter((a) => a.family !== AF_INET6), ...addresses.filter((a) => a.family === AF_INET6).reverse()];
}

/** The kernel renames "old" and "old:suffix" labels with the device; so do we. */
export function translateLabel(label: string | undefined, from: string, to: string): string | undefined {
  if (label === undefined) return undefined;
  if (label === from) return to;
  if (label.startsWith(`${from}:`)) return `${to}${label.slice(from.length)}`.slice(0, 15);
  return label;
}

function snapshotOf(link: LinkInfo, addresses: IndexedAddress[], state?: DeviceState): DeviceSnapshot {
  return {
    index: link.index,
    name: link.name,
    mtu: link.mtu,
    mac: link.mac,
    up: link.up,
    alias: link.alias,
    group: link.group,
    altNames: [...link.altNames],
    addresses: addresses.filter((a) => a.index === link.index).map(({ index: _i, ...a }) => a),
    ...(state ? { state } : {}),
  };
}

/** A CIDR from the config as an address to add (IPv6 without DAD, IPv4 with its broadcast). */
export function addressFromCidr(cidr: string): AddressRecord {
  const [ip, len] = cidr.split('/');
  const prefixlen = Number(len);
  const v6 = ip.includes(':');
  const a: AddressRecord = {
    family: v6 ? AF_INET6 : AF_INET,
    prefixlen,
    flags: v6 ? IFA_F_NODAD : 0,
    scope: RT_SCOPE_UNIVERSE,
    address: ip,
    preferredLifetime: 0xffffffff,
    validLifetime: 0xffffffff,
  };
  if (!v6) {
    a.local = ip;
    if (prefixlen <= 30) {
      const n = ip.split('.').reduce((acc, o) => (acc << 8) | Number(o), 0) >>> 0;
      const bcast = (n | (prefixlen === 0 ? 0xffffffff : (0xffffffff >>> prefixlen))) >>> 0;
      a.broadcast = [24, 16, 8, 0].map((s) => (bcast >>> s) & 0xff).join('.');
    }
  }
  return a;
}

/** A route of the config as the journal records it; RTA_OIF is filled in when the device is found in the container. */
function routeRecordOf(r: PlannedRoute): RouteRecord {
  const family = r.family === 4 ? AF_INET : AF_INET6;
  return {
    family, dstLen: r.dstLen, srcLen: 0, tos: 0, table: RT_TABLE_MAIN, protocol: RTPROT_STATIC,
    // As iproute2 does: an IPv4 route without a gateway reaches its destination on the link.
    scope: family === AF_INET && r.gw === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
    type: RTN_UNICAST, flags: 0, oif: 0, attrs: [],
    ...(r.dstLen > 0 ? { dst: r.dst } : {}),
    ...(r.gw !== undefined ? { gateway: r.gw } : {}),
    ...(r.metric !== undefined ? { priority: r.metric } : {}),
  };
}

/** The routes of `spec` in the order they can be added: those without a gateway make gateways reachable. */
function containerRoutes(spec: DeviceSpec): RouteRecord[] {
  const planned = plannedRoutes(spec);
  return [...planned.filter((r) => r.gw === undefined), ...planned.filter((r) => r.gw !== undefined)].map(routeRecordOf);
}

function tempName(group: number, i: number): string {
  return `odt${group.toString(16).padStart(8, '0')}${i.toString(36)}`;
}

/**
 * Kinds the kernel ties to the namespace they were made in (their link namespace: where a
 * tunnel's socket and underlay are), reported as IFLA_LINK_NETNSID wherever the device moves: the
 * tunnels whose rtnl_link_ops have get_link_net. A container can make such a device only in a
 * namespace where it holds CAP_NET_ADMIN, so one tied to the host's was made by the host.
 */
const LINK_NET_KINDS = new Set([
  'vxlan', 'geneve', 'bareudp', 'gre', 'gretap', 'erspan', 'ipip', 'sit', 'vti', 'ip6tnl', 'ip6gre', 'ip6gretap', 'ip6erspan', 'vti6', 'xfrm',
]);

/**
 * What identifies `link` beyond its ifindex. A peer, lower device or link namespace counts only
 * where it is known to be the host: the host's namespace itself (`hostNsid` undefined), or, seen
 * from the container, the namespace the container calls `hostNsid`.
 */
export function identityOf(link: LinkInfo, hostNsid?: number | null): DeviceIdentity {
  const id: DeviceIdentity = {
    kind: link.kind, permanentMac: link.permanentMac, parentBus: link.parentBus, parentDev: link.parentDev,
  };
  const onHost = hostNsid === undefined ? link.linkNetnsid === null : hostNsid !== null && link.linkNetnsid === hostNsid;
  if (link.kind !== null && LINK_NET_KINDS.has(link.kind)) {
    // Its IFLA_LINK is an underlay in the link namespace, or its own index: no lower device of ours.
    if (onHost) id.hostLinkNet = true;
    if (link.vxlan) id.vxlan = { ...link.vxlan };
  } else if (link.linkIndex !== null && onHost && (hostNsid !== undefined || link.linkIndex !== link.index)) {
    if (link.kind === 'veth') id.hostPeerIndex = link.linkIndex;
    else id.hostLowerIndex = link.linkIndex;
  }
  return id;
}

/**
 * What a device is, when nothing recorded of it proves it against a look-alike a container made
 * (undefined when something does). Proof is what a container cannot make: a permanent MAC or bus
 * device (hardware), a peer or lower device on the host, or a tie to the host's namespace. The
 * rest the kernel reports (kind, MAC, ifindex, a tun device's owner, group and flags) is a
 * creator's to choose.
 */
export function unprovenIdentity(id: DeviceIdentity): string | undefined {
  if (id.permanentMac !== null || id.parentDev !== null || id.hostPeerIndex !== undefined || id.hostLowerIndex !== undefined || id.hostLinkNet) {
    return undefined;
  }
  if (id.kind === 'veth') return 'a veth whose peer is not on the host';
  if (id.kind !== null && LINK_NET_KINDS.has(id.kind)) return `a ${id.kind} not tied to the host's namespace`;
  const fields = id.kind === 'tun' ? 'kind, MAC, ifindex, owner, group, flags' : 'kind, MAC, ifindex';
  return `${id.kind === null ? 'a device without a kind' : `a ${id.kind} device`}: the kernel reports nothing of it that a container cannot forge (${fields})`;
}

/**
 * Why a device the runtime left in the container cannot be adopted as the host's `name`, or
 * undefined when it can. The kernel reports no name a device had in another namespace, so only
 * what no one but root can have put there is adopted: hardware, by its bus device. A veth whose
 * peer is on the host, a macvlan on a host master or a tunnel tied to the host could be any of
 * the pod's own interfaces (a CNI eth0 has exactly such a tie), and would reach the host as `name`.
 */
function notAdoptable(id: DeviceIdentity, name: string): string | undefined {
  if (id.parentDev !== null && id.parentBus !== null) return undefined;
  const what = id.kind === null ? 'a device without a kind' : `a ${id.kind} device`;
  return `${what}, and nothing the kernel reports of it ties it to the host's ${name} (only hardware, whose bus device no container can make, is adopted)`;
}

/** Hands out ifindexes no link of a namespace uses, from `base` up; `prefer` when it is free. */
function indexAllocator(links: LinkInfo[], base: number): (prefer?: number) => number {
  const used = new Set(links.map((l) => l.index));
  let next = base;
  return (prefer) => {
    if (prefer !== undefined && !used.has(prefer)) {
      used.add(prefer);
      return prefer;
    }
    while (used.has(next)) next++;
    used.add(next);
    return next++;
  };
}

/**
 * The device a netDevices-aware runtime already moved into the container, for an entry whose key
 * is not on the host. Only linux.netDevices entries adopt (the runtime moved exactly those), and
 * never the loopback device or a device another container's journal holds there.
 */
function adoptable(spec: DeviceSpec, observed: Observed, ctx: PlanContext): LinkInfo {
  const missing = `device ${spec.key}: no such device in the host network namespace`;
  if (spec.source !== 'config') {
    throw new PlanError(`${missing} (annotation entries never adopt a device that is already in the container)`, { device: spec.key, op: 'plan' });
  }
  const inside = isTemplate(spec.name) ? undefined : observed.containerLinks.find((l) => l.name === spec.name);
  if (!inside) throw new PlanError(missing, { device: spec.key, op: 'plan' });
  if (inside.flags & IFF_LOOPBACK) {
    throw new PlanError(`${missing}, and the container's loopback device ${spec.name} is never adopted`, { device: spec.key, op: 'plan' });
  }
  const owner = ctx.claimedInContainer?.get(inside.index);
  if (owner !== undefined) {
    throw new PlanError(`${missing}, and ${spec.name} in the container is held by container ${owner}`, { device: spec.key, op: 'adopt' });
  }
  return inside;
}

/** The bridge a veth host end joins: it must exist and be a bridge whose MTU the veth would not lower. */
function bridgeFor(spec: DeviceSpec, name: string, link: LinkInfo | undefined): { name: string; index: number } {
  const refuse = (why: string) => new PlanError(`device ${spec.key}: hostBridge ${name} ${why}`, { device: spec.key, op: 'plan' });
  if (!link) throw refuse('does not exist on the host');
  if (link.kind !== 'bridge') throw refuse(`is not a bridge (it is ${link.kind ? `a ${link.kind}` : 'a device without a kind'})`);
  // The kernel lowers a bridge's MTU to its smallest port's: the host's traffic on it would shrink.
  if (spec.mtu !== undefined && spec.mtu < link.mtu) throw refuse(`has MTU ${link.mtu}; mtu ${spec.mtu} would lower it for the whole bridge`);
  return { name, index: link.index };
}

export function planAttach(specs: DeviceSpec[], observed: Observed, ctx: PlanContext): Plan {
  const hostByName = new Map(observed.hostLinks.map((l) => [l.name, l]));
  const containerNames = new Set(observed.containerLinks.map((l) => l.name));
  const devices: DeviceRecord[] = [];
  const steps: Step[] = [];

  const requireFreeTarget = (spec: DeviceSpec) => {
    // Said even before the namespace exists (validate --live with no namespace path): it will have lo.
    if (spec.name === 'lo') {
      throw new PlanError(`device ${spec.key}: name lo is taken by the loopback device every network namespace has`, { device: spec.key, op: 'plan' });
    }
    if (!isTemplate(spec.name) && containerNames.has(spec.name)) {
      throw new PlanError(`device ${spec.key}: name ${spec.name} already exists in the container`, { device: spec.key, op: 'plan' });
    }
  };

  /** The kernel refuses an MTU outside the device's own range (EINVAL), after the device has moved. */
  const requireMtuInRange = (spec: DeviceSpec, link: LinkInfo) => {
    if (spec.mtu === undefined) return;
    const bound = link.maxMtu !== null && spec.mtu > link.maxMtu ? `above the maximum ${link.maxMtu}`
      : link.minMtu !== null && spec.mtu < link.minMtu ? `below the minimum ${link.minMtu}` : undefined;
    if (bound) throw new PlanError(`device ${spec.key}: mtu ${spec.mtu} is ${bound} that ${link.name} accepts`, { device: spec.key, op: 'plan' });
  };

  const base = ctx.indexBase ?? PICKED_INDEX_BASE;
  const containerIndex = indexAllocator(observed.containerLinks, base);
  const hostIndex = indexAllocator(observed.hostLinks, base);

  specs.forEach((spec, i) => {
    // Host entries: the device their key names, or the one their selector picked (src/plan/select.ts).
    const device = hostDeviceName(spec);
    const owner = ctx.claims.get(device);
    if (owner !== undefined && spec.kind !== 'macvlan') throw new DeviceBusyError(device, owner);
    // The other host devices an entry names are held too: a macvlan on another container's veth
    // host end would see that container's traffic.
    const named: [string, string | undefined][] = [['macvlan master', spec.master], ['hostBridge', spec.hostBridge]];
    for (const [role, name] of named) {
      const holder = name !== undefined ? ctx.claims.get(name) : undefined;
      if (holder !== undefined) throw new DeviceBusyError(name!, holder, { entry: spec.key, role });
    }
    const common = {
      key: spec.key,
      targetName: spec.name,
      adopted: false,
      containerAddresses: [] as AddressRecord[],
      mtu: spec.mtu,
      mac: spec.mac,
    };
    const step = (op: Step['do'], undo?: Step['undo']) => steps.push({ device: spec.key, do: op, ...(undo ? { undo } : {}) });
    let rec: DeviceRecord;

    if (spec.kind === 'host') {
      const link = hostByName.get(device);
      if (!link) {
        const inside = adoptable(spec, observed, ctx);
        const identity = identityOf(inside, observed.hostNsidInContainer ?? null);
        const unproven = notAdoptable(identity, device);
        if (unproven) {
          throw new PlanError(`device ${spec.key}: no such device in the host network namespace, and ${inside.name} in the container cannot be shown to be it: ${unproven}; nothing is adopted`, { device: spec.key, op: 'adopt' });
        }
        requireMtuInRange(spec, inside);
        rec = {
          ...common,
          kind: 'host',
          adopted: true,
          original: { ...snapshotOf(inside, observed.containerAddresses), name: spec.key },
          identity,
          containerIndex: inside.index,
          containerName: inside.name,
        };
      } else {
        const refusal = hostDeviceRefusal(link, observed, ctx.macvlanMasters);
        if (refusal) throw alwaysRefusedError(spec, `host device ${device}`, refusal, ctx.policy);
        requireFreeTarget(spec);
        requireMtuInRange(spec, link);
        const original = snapshotOf(link, observed.hostAddresses, observed.hostDeviceStates?.get(device));
        rec = {
          ...common,
          kind: 'host',
          original,
          identity: identityOf(link),
          // The kernel keeps a moving device's ifindex when it is free; we ask for it explicitly.
          containerIndex: containerIndex(link.index),
          containerAddresses: [
            ...original.addresses.filter(isPortable).map((a) => forContainer(a, spec.dad)),
            // A CNI IPAM plugin's addresses come on top of the device's own (config.json gives none for host entries).
            ...(spec.addresses ?? []).map((cidr) => forContainer(addressFromCidr(cidr), spec.dad)),
          ],
        };
      }
      // The device's addresses are known only now; created devices were checked with the config.
      checkGateways(spec.key, plannedRoutes(spec), rec.adopted ? rec.original.addresses : rec.containerAddresses);
      step('moveIn', 'moveOut');
      step('copyAddresses');
    } else {
      requireFreeTarget(spec);
      // A passthru macvlan takes its master's MAC, whatever it is given.
      const chosen = spec.mac === undefined && spec.mode !== 'passthru' ? ctx.newMac?.() : undefined;
      const created = {
        ...common,
        ...(chosen !== undefined ? { mac: chosen } : {}),
        tempName: tempName(ctx.group, i),
        containerIndex: containerIndex(),
        containerAddresses: (spec.addresses ?? []).map((cidr) => forContainer(addressFromCidr(cidr), spec.dad)),
      };
      const identity = { kind: spec.kind, permanentMac: null, parentBus: null, parentDev: null };
      if (spec.kind === 'veth') {
        if (hostByName.has(spec.key)) {
          throw new PlanError(`device ${spec.key}: the veth host end already exists on the host`, { device: spec.key, op: 'plan' });
        }
        const hostEnd = hostIndex();
        rec = {
          ...created,
          kind: 'veth',
          identity: { ...identity, hostPeerIndex: hostEnd },
          hostIndex: hostEnd,
          ...(spec.hostBridge !== undefined ? { hostBridge: bridgeFor(spec, spec.hostBridge, hostByName.get(spec.hostBridge)) } : {}),
          ...(spec.hostMac !== undefined ? { hostMac: spec.hostMac } : {}),
          ...(spec.hostAddresses !== undefined ? { hostAddresses: spec.hostAddresses.map(addressFromCidr) } : {}),
        };
        step('createVeth', 'deleteCreated');
      } else {
        const master = spec.master ?? '';
        const masterLink = hostByName.get(master);
        if (!masterLink) {
          throw new PlanError(`device ${spec.key}: macvlan master ${master} does not exist on the host`, { device: spec.key, op: 'plan' });
        }
        // The kernel refuses a macvlan MTU above its master's (EINVAL, no extended ack).
        if (spec.mtu !== undefined && spec.mtu > masterLink.mtu) {
          throw new PlanError(`device ${spec.key}: mtu ${spec.mtu} is above the MTU ${masterLink.mtu} of macvlan master ${master}`, { device: spec.key, op: 'plan' });
        }
        const mode = spec.mode ?? 'bridge';
        const refusal = mode === 'passthru' ? passthruRefusal(masterLink, observed) : undefined;
        if (refusal) throw alwaysRefusedError(spec, `macvlan mode passthru on master ${master}`, refusal, ctx.policy);
        rec = { ...created, kind: 'macvlan', identity: { ...identity, hostLowerIndex: masterLink.index }, master, mode };
        step('createMacvlan', 'deleteCreated');
      }
      step('renameInContainer');
      step('copyAddresses');
    }
    step('configure');
    if (spec.routes !== undefined || spec.gateway !== undefined) {
      rec.containerRoutes = containerRoutes(spec);
      step('addRoutes');
    }
    devices.push(rec);
  });
  return { group: ctx.group, devices, steps };
}
