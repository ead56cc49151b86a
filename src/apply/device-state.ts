// What a move to another namespace destroys and the kernel does not give back: the device's routes
// (every table, both families), its permanent neighbour entries, its per-device sysctls and its
// traffic control. Recorded before the move; put back once the device is home.

import type { NetlinkSocket } from '../netlink/client';
import type { Netns } from '../netns/netns';
import type { LinkInfo } from '../netlink/link';
import { addRoute, describeRoute, listDeviceRoutes } from '../netlink/route';
import { addNeighbour, listPermanentNeighbours } from '../netlink/neighbour';
import { addTc, describeTc, listClasses, listTc } from '../netlink/tc';
import { readDeviceSysctl, readDeviceSysctls, writable, writeDeviceSysctl } from '../netns/sysctl';
import type { DeviceSysctls } from '../netns/sysctl';
import { IFF_LOOPBACK } from '../netlink/constants';
import { NetlinkError } from '../errors';
import type { DeviceState, RouteRecord, TcRecord } from '../state/records';
import { neighbourEntry, neighbourRecord, routeEntry, routeRecord, tcObject, tcRecord } from './records';
import type { Side } from './identity';

/** Device states read ahead (before the claims lock), by host device name, with the ifindex read. */
export type EarlyDeviceStates = Map<string, { index: number; state: DeviceState }>;

/**
 * The state of each requested host device that exists (by name), for the planner; one read ahead
 * is taken when the name still has the same ifindex. The loopback device is refused anyway.
 */
export function captureDeviceStates(
  host: Side, hostLinks: LinkInfo[], keys: string[], early: EarlyDeviceStates = new Map(),
): Map<string, DeviceState> {
  const out = new Map<string, DeviceState>();
  let defaults: DeviceSysctls | undefined;
  for (const link of hostLinks) {
    if (!keys.includes(link.name) || link.flags & IFF_LOOPBACK) continue;
    const ahead = early.get(link.name);
    out.set(link.name, ahead?.index === link.index ? ahead.state : captureDeviceState(host, link, defaults ??= hostDefaults(host)));
  }
  return out;
}

/**
 * captureDeviceStates ahead of planning, outside the claims lock: the reads are the slow part of an
 * observation, and under the lock every other hook would wait for them. A device that cannot be
 * read now (another hook is moving it) is left out: the planner reads it, or refuses it, under the lock.
 */
export function captureDeviceStatesAhead(host: Side, hostLinks: LinkInfo[], keys: string[]): EarlyDeviceStates {
  const out: EarlyDeviceStates = new Map();
  let defaults: DeviceSysctls | undefined;
  for (const link of hostLinks) {
    if (!keys.includes(link.name) || link.flags & IFF_LOOPBACK) continue;
    try {
      out.set(link.name, { index: link.index, state: captureDeviceState(host, link, defaults ??= hostDefaults(host)) });
    } catch {
      // read again under the lock
    }
  }
  return out;
}

/** The host's conf/default sysctls, what a device gets on entering its namespace. */
function hostDefaults(host: Side): DeviceSysctls {
  return host.ns.within(() => readDeviceSysctls('default'));
}

/**
 * Reads it all from the host, where `link` is now; the sysctls from within the host's namespace. A
 * device that enters a namespace takes that namespace's `conf/default` values, so only the
 * sysctls that differ from the host's `defaults` need a record.
 */
function captureDeviceState(host: Side, link: LinkInfo, defaults: DeviceSysctls): DeviceState {
  const own = host.ns.within(() =>
    Object.entries(readDeviceSysctls(link.name)).filter(([name, value]) => defaults[name] !== value && writable(link.name, name)));
  return {
    routes: listDeviceRoutes(host.sock, link.index).map(routeRecord),
    neighbours: listPermanentNeighbours(host.sock, link.index).map(neighbourRecord),
    sysctls: Object.fromEntries(own),
    tc: listTc(host.sock, link.index).map(tcRecord),
  };
}

type Warn = (message: string) => void;

function reason(err: unknown): string {
  if (err instanceof NetlinkError) return `${err.code}${err.extack ? ` (${err.extack})` : ''}`;
  return (err as Error).message;
}

const alreadyThere = (err: unknown) => err instanceof NetlinkError && err.errnoName === 'EEXIST';

/**
 * Puts back the sysctls whose value differs from what the device has now, under its name `device`
 * in the host's namespace `hostNs`. Call it while the device is still down: disable_ipv6 must be
 * back before addresses are added, and settings such as accept_ra act when the device comes up.
 */
export function restoreSysctls(hostNs: Netns, state: DeviceState, key: string, device: string, warn: Warn): void {
  hostNs.within(() => writeChangedSysctls(state, key, device, warn));
}

function writeChangedSysctls(state: DeviceState, key: string, device: string, warn: Warn): void {
  // Only the recorded ones are read: a device's whole conf folder is some hundred files.
  for (const [name, value] of Object.entries(state.sysctls)) {
    const notRestored = (why: string) => warn(`device ${key}: sysctl net.${name.replace('/', '.conf.' + device + '.')}=${value} not restored: ${why}`);
    let now: string | undefined;
    try {
      now = readDeviceSysctl(device, name);
    } catch (err) {
      notRestored(reason(err));
      continue;
    }
    if (now === undefined || now === value) continue;
    try {
      writeDeviceSysctl(device, name, value);
    } catch (err) {
      notRestored((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
  }
}

/**
 * Puts back routes, neighbours and traffic control on link `index` (the device home, up, with its
 * addresses: routes need their gateway reachable and their source address present).
 * `recordedIndex` is the ifindex the state was recorded under. What already exists is fine (a
 * second run, a device that never left); anything else the kernel refuses is named in one warning
 * per item, and the rest goes on.
 */
export function restoreRoutesNeighboursTc(sock: NetlinkSocket, state: DeviceState, recordedIndex: number, index: number, key: string, warn: Warn): void {
  const ctx = { op: 'restore', device: key };
  const attempt = (what: string, add: () => void, exists: () => boolean = () => false) => {
    try {
      add();
    } catch (err) {
      if (!alreadyThere(err) && !exists()) warn(`device ${key}: ${what} not restored: ${reason(err)}`);
    }
  };
  // Routes through a gateway after the ones that may make the gateway reachable.
  const viaGateway = (r: RouteRecord) => (r.gateway !== undefined || r.multipath !== undefined ? 1 : 0);
  for (const r of [...state.routes].sort((a, b) => viaGateway(a) - viaGateway(b)).map(routeEntry)) {
    attempt(`route ${describeRoute(r)}`, () => addRoute(sock, r, recordedIndex, index, { ...ctx, op: 'restore route' }));
  }
  for (const n of state.neighbours.map(neighbourEntry)) {
    attempt(`neighbour ${n.dst}`, () => addNeighbour(sock, n, index, { ...ctx, op: 'restore neighbour' }));
  }
  // What is there already (a device that never left, a restore run before) is left alone: u32
  // keys, sent without a table, would otherwise be refused as taken, or added twice.
  const tcKey = (o: Pick<TcRecord, 'object' | 'kind' | 'handle' | 'parent' | 'info'>) => `${o.object} ${o.kind} ${o.handle} ${o.parent} ${o.info}`;
  let present = new Set<string>();
  try {
    if (state.tc.length) present = new Set(listTc(sock, index).map(tcKey));
  } catch (err) {
    warn(`device ${key}: cannot read its traffic control before restoring it: ${reason(err)}`);
  }
  for (const o of state.tc.filter((x) => !present.has(tcKey(x))).map(tcObject)) {
    // Some qdiscs make their classes themselves (prio's bands, mq's queues): those exist already.
    const made = () => o.object === 'class' && listClasses(sock, index).some((c) => c.handle === o.handle && c.kind === o.kind);
    attempt(describeTc(o), () => addTc(sock, o, index, { ...ctx, op: 'restore' }), made);
  }
}
