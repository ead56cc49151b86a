// Pure planning: requested devices + what the host and container hold now ->
// device records and ordered steps with their undos. No I/O here.

import type { DeviceSpec } from '../config/types';
import type { AddressInfo } from '../netlink/address';
import type { LinkInfo } from '../netlink/link';
import type { DefaultRoute } from '../netlink/route';
import { AF_INET, AF_INET6, IFA_F_NODAD, IFA_F_PERMANENT, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE } from '../netlink/constants';
import { DeviceBusyError, PlanError } from '../errors';
import type { Policy } from '../config/policy';
import { alwaysRefusedError, hostDeviceRefusal, passthruRefusal } from './refusals';
import type { DeviceRecord, DeviceSnapshot, Plan, Step } from './types';

type IndexedAddress = AddressInfo & { index: number };

export interface Observed {
  hostLinks: LinkInfo[];
  hostAddresses: IndexedAddress[];
  containerLinks: LinkInfo[];
  containerAddresses: IndexedAddress[];
  /** Links that carry a default route in the host namespace (src/netlink/route.ts); the engine always fills it. */
  hostDefaultRoutes?: DefaultRoute[];
}

export interface PlanContext {
  group: number;
  /** Host device name -> id of the container whose journal holds it. */
  claims: Map<string, string>;
  /** Host device name -> id of another container whose journal holds a macvlan on it (its record's `master`). */
  macvlanMasters: Map<string, string>;
  /** The policy in force: the always-refused rules name it, though it cannot lift them. */
  policy: Policy;
}

export function markerFor(group: number, key: string): string {
  return `oci-netdev:${group.toString(16)}:${key}`;
}

export const isTemplate = (name: string): boolean => name.endsWith('%d');

/** Global permanent addresses: the ones runtime-spec says move with the device. */
export function isPortable(a: AddressInfo): boolean {
  return (a.flags & IFA_F_PERMANENT) !== 0 && a.scope === RT_SCOPE_UNIVERSE;
}

/**
 * Addresses to put back on the host: all of them (permanent or with a lease, which is aged on
 * restore) except IPv6 link-local, which the kernel regenerates.
 */
export function isRestorable(a: AddressInfo): boolean {
  return !(a.family === AF_INET6 && a.scope === RT_SCOPE_LINK);
}

/** The kernel renames "old" and "old:suffix" labels with the device; so do we. */
export function translateLabel(label: string | undefined, from: string, to: string): string | undefined {
  if (label === undefined) return undefined;
  if (label === from) return to;
  if (label.startsWith(`${from}:`)) return `${to}${label.slice(from.length)}`.slice(0, 15);
  return label;
}

export function snapshotOf(link: LinkInfo, addresses: IndexedAddress[]): DeviceSnapshot {
  return {
    index: link.index,
    name: link.name,
    mtu: link.mtu,
    mac: link.mac,
    up: link.up,
    alias: link.alias,
    addresses: addresses.filter((a) => a.index === link.index).map(({ index: _i, ...a }) => a),
  };
}

/** A CIDR from the config as an address to add (IPv6 without DAD, IPv4 with its broadcast). */
export function addressFromCidr(cidr: string): AddressInfo {
  const [ip, len] = cidr.split('/');
  const prefixlen = Number(len);
  const v6 = ip.includes(':');
  const a: AddressInfo = {
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

function tempName(group: number, i: number): string {
  return `odt${group.toString(16).padStart(8, '0')}${i.toString(36)}`;
}

export function planAttach(specs: DeviceSpec[], observed: Observed, ctx: PlanContext): Plan {
  const hostByName = new Map(observed.hostLinks.map((l) => [l.name, l]));
  const containerNames = new Set(observed.containerLinks.map((l) => l.name));
  const devices: DeviceRecord[] = [];
  const steps: Step[] = [];

  const requireFreeTarget = (spec: DeviceSpec) => {
    if (!isTemplate(spec.name) && containerNames.has(spec.name)) {
      throw new PlanError(`device ${spec.key}: name ${spec.name} already exists in the container`, { device: spec.key, op: 'plan' });
    }
  };

  specs.forEach((spec, i) => {
    const owner = ctx.claims.get(spec.key);
    if (owner !== undefined && spec.kind !== 'macvlan') throw new DeviceBusyError(spec.key, owner);
    const rec: DeviceRecord = {
      key: spec.key,
      kind: spec.kind,
      targetName: spec.name,
      marker: markerFor(ctx.group, spec.key),
      adopted: false,
      containerAddresses: [],
      mtu: spec.mtu,
      mac: spec.mac,
    };
    const step = (op: Step['do'], undo?: Step['undo']) => steps.push({ device: spec.key, do: op, ...(undo ? { undo } : {}) });

    if (spec.kind === 'host') {
      const link = hostByName.get(spec.key);
      if (!link) {
        const inside = isTemplate(spec.name) ? undefined : observed.containerLinks.find((l) => l.name === spec.name);
        if (!inside) {
          throw new PlanError(`device ${spec.key}: no such device in the host network namespace`, { device: spec.key, op: 'plan' });
        }
        rec.adopted = true;
        rec.original = { ...snapshotOf(inside, observed.containerAddresses), name: spec.key };
        rec.containerName = inside.name;
      } else {
        const refusal = hostDeviceRefusal(link, observed, ctx.macvlanMasters);
        if (refusal) throw alwaysRefusedError(spec, `host device ${spec.key}`, refusal, ctx.policy);
        requireFreeTarget(spec);
        rec.original = snapshotOf(link, observed.hostAddresses);
        rec.containerAddresses = rec.original.addresses.filter(isPortable);
      }
      step('mark', 'unmark');
      step('moveIn', 'moveOut');
      step('copyAddresses');
    } else {
      requireFreeTarget(spec);
      rec.tempName = tempName(ctx.group, i);
      rec.containerAddresses = (spec.addresses ?? []).map(addressFromCidr);
      if (spec.kind === 'veth') {
        if (hostByName.has(spec.key)) {
          throw new PlanError(`device ${spec.key}: the veth host end already exists on the host`, { device: spec.key, op: 'plan' });
        }
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
        rec.master = master;
        rec.mode = spec.mode ?? 'bridge';
        const refusal = rec.mode === 'passthru' ? passthruRefusal(masterLink, observed) : undefined;
        if (refusal) throw alwaysRefusedError(spec, `macvlan mode passthru on master ${master}`, refusal, ctx.policy);
        step('createMacvlan', 'deleteCreated');
      }
      step('renameInContainer');
      step('copyAddresses');
    }
    step('configure');
    devices.push(rec);
  });
  return { group: ctx.group, devices, steps };
}
