// What a move to another namespace destroys and the kernel does not give back: the device's routes
// (every table, both families) and nexthop objects, its configured neighbour entries, its
// per-device sysctls and its traffic control. Recorded before the move; put back once the device is home.
// Over 400 lines on purpose: what one capture records is restored here too, kind by kind (sysctls,
// IPv6 token and multicast, nexthops, routes, neighbours and tc, link settings, ethtool), so a field
// recorded and not put back shows in one file; operations.ts calls the restores in their order.

import type { NetlinkSocket } from '../netlink/client';
import type { Netns } from '../netns/netns';
import { addStaticMulticast, detachXdp, getLink, setIpv6Token, setLink, XDP_MODES } from '../netlink/link';
import type { LinkChanges, LinkInfo, LinkSettings, XdpMode } from '../netlink/link';
import { EthtoolSocket, FLAG_GROUP_NAMES, NUMBER_GROUP_NAMES } from '../netlink/ethtool';
import type { EthtoolSettings } from '../netlink/ethtool';
import { addRoute, describeRoute, listDeviceRoutes } from '../netlink/route';
import { addNeighbour, describeNeighbour, listConfiguredNeighbours } from '../netlink/neighbour';
import { addNexthop, describeNexthop, listDeviceNexthops, nexthopsById } from '../netlink/nexthop';
import type { NexthopObject } from '../netlink/nexthop';
import { addTc, describeTc, listClasses, listTc } from '../netlink/tc';
import { readDeviceSysctl, readDeviceSysctls, sysctlName, writable, writeDeviceSysctl } from '../netns/sysctl';
import type { DeviceSysctls } from '../netns/sysctl';
import { staticMulticast } from '../netns/multicast';
import { IFF_LOOPBACK } from '../netlink/constants';
import { NetlinkError } from '../errors';
import { sleepSync } from '../fsio/sleep';
import type { DeviceState, RouteRecord, TcRecord } from '../state/journal-records';
import {
  ethtoolRecord, ethtoolSettings, linkSettingsOf, linkSettingsRecord, neighbourEntry, neighbourRecord, nexthopObjectOf, nexthopObjectRecord,
  routeEntry, routeRecord, tcObject, tcRecord,
} from './convert-records';
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
  const unset: string[] = [];
  const own = host.ns.within(() =>
    Object.entries(readDeviceSysctls(link.name, unset)).filter(([name, value]) => defaults[name] !== value && writable(link.name, name)));
  const { ethtool, multicast } = host.ns.within(() => {
    using sock = EthtoolSocket.open();
    return { ethtool: sock?.read(link.index, link.name), multicast: staticMulticast(link.index) };
  });
  const nexthops = listDeviceNexthops(host.sock, link.index).map(nexthopObjectRecord);
  return {
    routes: listDeviceRoutes(host.sock, link.index).map(routeRecord),
    neighbours: listConfiguredNeighbours(host.sock, link.index).map(neighbourRecord),
    sysctls: Object.fromEntries(own),
    tc: listTc(host.sock, link.index).map(tcRecord),
    ...(nexthops.length ? { nexthops } : {}),
    link: linkSettingsRecord(link.settings),
    ...(ethtool ? { ethtool: ethtoolRecord(ethtool) } : {}),
    ...(unset.length ? { unsetSysctls: unset } : {}),
    ...(link.ipv6Token !== null && link.ipv6Token !== NO_TOKEN ? { ipv6Token: link.ipv6Token } : {}),
    ...(multicast.length ? { staticMulticast: multicast } : {}),
  };
}

/** The token of a device that has none. */
const NO_TOKEN = '::';

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
 * Bringing it up resets the IPv6 MTU: restoreSysctlsAfterUp.
 */
export function restoreSysctls(hostNs: Netns, state: DeviceState, key: string, device: string, warn: Warn): void {
  hostNs.within(() => writeChangedSysctls(state, key, device, warn));
}

function writeChangedSysctls(state: DeviceState, key: string, device: string, warn: Warn): void {
  const notRestored = (name: string, value: string, why: string) => warn(`device ${key}: sysctl ${nameOf(device, name)}=${value} not restored: ${why}`);
  const write = (name: string, value: string) => {
    try {
      writeDeviceSysctl(device, name, value);
    } catch (err) {
      notRestored(name, value, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
  };
  for (const [name, value] of Object.entries(state.sysctls).sort(([a], [b]) => secretFirst(a) - secretFirst(b))) {
    let now: string | null | undefined;
    try {
      now = readDeviceSysctl(device, name);
    } catch (err) {
      notRestored(name, value, reason(err));
      continue;
    }
    // null: not set yet (stable_secret), which a write sets.
    if (now !== undefined && now !== value) write(name, value);
  }
  for (const name of state.unsetSysctls ?? []) {
    const now = readDeviceSysctl(device, name);
    if (typeof now === 'string') {
      warn(`device ${key}: sysctl ${nameOf(device, name)} was not set before and is ${now} now (the namespace's default): the kernel cannot unset it`);
    }
  }
  // The ones not recorded had the namespace's default value. The kernel derives some from the
  // link's flags as the device enters the namespace (accept_dad is -1 on a NOARP device): the
  // container's flags may have left such a value behind.
  const defaults = readDeviceSysctls('default');
  for (const [name, now] of Object.entries(readDeviceSysctls(device))) {
    const value = defaults[name];
    if (name in state.sysctls || value === undefined || now === value || !writable(device, name)) continue;
    write(name, value);
  }
}

/** A recorded key as sysctl(8) names it; as recorded when it names no per-device sysctl (the warning then says why). */
function nameOf(device: string, key: string): string {
  try {
    return sysctlName(device, key);
  } catch {
    return key;
  }
}

/**
 * Writing a device's stable_secret sets its addr_gen_mode to stable privacy (2): the secret goes
 * first, then the mode it had (random mode keeps its addresses from that secret too).
 */
const secretFirst = (name: string) => (name === 'ipv6/stable_secret' ? 0 : 1);

/**
 * The IPv6 token and the static multicast addresses, which the move reset and flushed, back on
 * link `index` named `device` in the host's namespace, once its sysctls (a token needs accept_ra)
 * and link flags (and no NOARP) are: what the kernel refuses is named in a warning.
 */
export function restoreTokenAndMulticast(sock: NetlinkSocket, state: DeviceState, index: number, key: string, device: string, warn: Warn): void {
  const now = getLink(sock, { index });
  if (state.ipv6Token !== undefined && now?.ipv6Token !== state.ipv6Token) {
    try {
      setIpv6Token(sock, index, state.ipv6Token, { op: 'restore IPv6 token', device: key });
    } catch (err) {
      warn(`device ${key}: IPv6 token ${state.ipv6Token} not restored: ${reason(err)}`);
    }
  }
  for (const address of state.staticMulticast ?? []) {
    try {
      addStaticMulticast(sock, device, address);
    } catch (err) {
      warn(`device ${key}: static multicast address ${address} not restored: ${reason(err)}`);
    }
  }
}

/** The per-device sysctl the kernel resets to the link's MTU when the device comes up and its link is ready (addrconf). */
const IPV6_MTU = 'ipv6/mtu';
/** How long a device just brought up may take to be ready (carrier) before its IPv6 MTU is put back anyway. */
const READY_WAIT_MS = 3000;

/**
 * Once the device is up: the kernel resets net.ipv6.conf.DEV.mtu to the link's MTU when the link
 * becomes ready, which may come a little after it is up. Waits for that (at most READY_WAIT_MS),
 * then puts the recorded value back, and the other sysctls if anything changed them meanwhile. A
 * link not ready in time (no carrier) is named: the kernel will reset the value when it is.
 */
export function restoreSysctlsAfterUp(hostNs: Netns, state: DeviceState, key: string, device: string, mtu: number, warn: Warn): void {
  const wanted = state.sysctls[IPV6_MTU];
  if (wanted === undefined || wanted === String(mtu)) return;
  hostNs.within(() => {
    const reset = () => { const now = readDeviceSysctl(device, IPV6_MTU); return now === undefined || now === String(mtu); };
    const deadline = Date.now() + READY_WAIT_MS;
    while (!reset() && Date.now() < deadline) sleepSync(10);
    if (!reset()) {
      warn(`device ${key}: not ready ${READY_WAIT_MS} ms after coming up (no carrier?): the kernel will set net.ipv6.conf.${device}.mtu to ${mtu} when it is, instead of ${wanted}`);
    }
    writeChangedSysctls(state, key, device, warn);
  });
}

/**
 * Makes the device's nexthop objects again, then gives the groups that held them their members
 * back: a group the kernel deleted (it had no other member) is made again as recorded, one that
 * lived on gets the device's nexthops back in their places beside what it holds now.
 */
function restoreNexthops(sock: NetlinkSocket, recorded: NexthopObject[], recordedIndex: number, index: number, key: string, warn: Warn): void {
  const ctx = { op: 'restore', device: key };
  let present = new Map<number, NexthopObject>();
  try {
    present = nexthopsById(sock);
  } catch (err) {
    warn(`device ${key}: cannot read the nexthop objects before restoring them: ${reason(err)}`);
  }
  const own = new Set(recorded.filter((n) => !n.group).map((n) => n.id));
  for (const n of recorded) {
    const now = present.get(n.id);
    let members: NexthopObject['group'];
    if (now && (now.group === undefined) !== (n.group === undefined)) {
      warn(`device ${key}: ${describeNexthop(n)} not restored: its id is taken by a ${now.group ? 'group' : 'nexthop'} on the host`);
      continue;
    }
    if (n.group && now?.group) {
      // In the recorded order: the members it holds now and the device's own, then what the host added.
      const holds = (id: number) => now.group!.some((c) => c.id === id);
      if (n.group.every((m) => holds(m.id) || !own.has(m.id))) continue;
      members = [...n.group.filter((m) => holds(m.id) || own.has(m.id)), ...now.group.filter((c) => !n.group!.some((m) => m.id === c.id))];
    } else if (now) {
      if (now.oif !== index) warn(`device ${key}: ${describeNexthop(n)} not restored: its id is taken by a nexthop of another device on the host`);
      continue;
    }
    try {
      addNexthop(sock, n, recordedIndex, index, ctx, members);
    } catch (err) {
      warn(`device ${key}: ${describeNexthop(n)} not restored: ${reason(err)}`);
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
  // Nexthop objects before the routes through them; their gateways are reachable once the device has its addresses.
  if (state.nexthops) restoreNexthops(sock, state.nexthops.map(nexthopObjectOf), recordedIndex, index, key, warn);
  // Routes through a gateway after the ones that may make the gateway reachable.
  const viaGateway = (r: RouteRecord) => (r.gateway !== undefined || r.multipath !== undefined ? 1 : 0);
  for (const r of [...state.routes].sort((a, b) => viaGateway(a) - viaGateway(b)).map(routeEntry)) {
    attempt(`route ${describeRoute(r)}`, () => addRoute(sock, r, recordedIndex, index, { ...ctx, op: 'restore route' }));
  }
  for (const n of state.neighbours.map(neighbourEntry)) {
    attempt(describeNeighbour(n), () => addNeighbour(sock, n, index, { ...ctx, op: 'restore neighbour' }));
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

/** The link settings of `home` that differ from the recorded ones, as changes to send. */
function linkChanges(want: LinkSettings, now: LinkSettings): LinkChanges {
  const out: LinkChanges = {};
  if (want.flags !== now.flags) out.flags = want.flags;
  if (want.txqlen !== now.txqlen) out.txqlen = want.txqlen;
  const optional = ['linkMode', 'broadcast', 'gsoMaxSize', 'gsoMaxSegs', 'groMaxSize', 'gsoIpv4MaxSize', 'groIpv4MaxSize',
    'protoDown', 'protoDownReason'] as const;
  for (const k of optional) {
    if (want[k] !== undefined && want[k] !== now[k]) (out as Record<string, unknown>)[k] = want[k];
  }
  // A reason set in the container clears to 0, which the kernel reports by saying nothing.
  if (want.protoDownReason === undefined && now.protoDownReason !== undefined) out.protoDownReason = 0;
  return out;
}

const describe = (v: unknown) => (typeof v === 'number' && v > 9 ? `${v} (0x${v.toString(16)})` : String(v));

/**
 * Puts back the link settings recorded before the move on the device at home (`home`, as read
 * now): detaches any XDP program attached since, then flags, queue length, GSO/GRO sizes, link
 * mode, broadcast address and proto_down in one request. Read back after: a setting the kernel did
 * not take is named in a warning.
 */
export function restoreLinkSettings(sock: NetlinkSocket, state: DeviceState, home: LinkInfo, key: string, warn: Warn): void {
  if (!state.link) return;
  const want = linkSettingsOf(state.link);
  const ctx = { op: 'restore link settings', device: key };
  for (const mode of Object.keys(XDP_MODES) as XdpMode[]) {
    const now = home.settings.xdp[mode];
    if (now === undefined || now === want.xdp[mode]) continue;
    try {
      detachXdp(sock, home.index, mode, { ...ctx, op: `detach XDP program ${now} (${mode})` });
    } catch (err) {
      warn(`device ${key}: XDP program ${now} attached in the container (${mode} mode) not detached: ${reason(err)}`);
    }
    if (want.xdp[mode] !== undefined) {
      warn(`device ${key}: XDP program ${want.xdp[mode]} (${mode} mode) was replaced in the container and cannot be put back; the device is home without it`);
    }
  }
  const changes = linkChanges(want, home.settings);
  if (Object.keys(changes).length) {
    try {
      setLink(sock, home.index, changes, ctx);
    } catch (err) {
      warn(`device ${key}: link settings ${Object.keys(changes).join(', ')} not restored: ${reason(err)}`);
      return;
    }
  }
  const after = getLink(sock, { index: home.index });
  if (!after) return;
  const left = linkChanges(want, after.settings);
  for (const [k, v] of Object.entries(left)) {
    warn(`device ${key}: link setting ${k} is ${describe((after.settings as unknown as Record<string, unknown>)[k])}, not ${describe(v)} as before: the kernel did not take it back`);
  }
  for (const mode of Object.keys(XDP_MODES) as XdpMode[]) {
    const id = after.settings.xdp[mode];
    if (id !== undefined && id !== want.xdp[mode]) warn(`device ${key}: XDP program ${id} is still attached (${mode} mode)`);
  }
}

/** Names of the entries of `want` whose value differs in `now`. */
function differing<V>(want: Record<string, V>, now: Record<string, V> | undefined): string[] {
  return Object.keys(want).filter((k) => now?.[k] !== want[k]);
}

/**
 * Puts back the ethtool settings recorded before the move on link `index` (named `device`) in the
 * host's namespace: each group the driver reports, only what differs, offload features first (the
 * others' limits can depend on them). Read back after: whatever the kernel did not take is named in
 * a warning, as is a group that could not be set.
 */
export function restoreEthtool(hostNs: Netns, state: DeviceState, index: number, key: string, device: string, warn: Warn): void {
  if (!state.ethtool) return;
  const want = ethtoolSettings(state.ethtool);
  try {
    hostNs.within(() => putBackEthtool(want, index, key, device, warn));
  } catch (err) {
    // A read that fails stops the ethtool part only: the rest of the device still comes home.
    warn(`device ${key}: ethtool settings not restored: ${reason(err)}`);
  }
}

function putBackEthtool(want: EthtoolSettings, index: number, key: string, device: string, warn: Warn): void {
  using sock = EthtoolSocket.open();
  if (!sock) {
    warn(`device ${key}: ethtool settings not restored: the kernel has no ethtool netlink family now`);
    return;
  }
  const now = sock.read(index, device);
  const attempt = (group: string, set: () => void) => {
    try {
      set();
    } catch (err) {
      warn(`device ${key}: ethtool ${group} not restored: ${reason(err)}`);
    }
  };
  if (want.features && differing(want.features.wanted, now.features?.wanted).length) {
    attempt('features', () => sock.setFeatures(index, want.features!.wanted, device));
  }
  for (const g of NUMBER_GROUP_NAMES) {
    const values = want[g];
    if (!values) continue;
    const changed = differing(values, now[g]);
    if (changed.length) attempt(g, () => sock.setNumbers(g, index, Object.fromEntries(changed.map((k) => [k, values[k]])), device));
  }
  for (const g of FLAG_GROUP_NAMES) {
    const flags = want[g];
    if (flags && (differing(flags, now[g]).length || differing(now[g] ?? {}, flags).length)) attempt(g, () => sock.setFlags(g, index, flags, device));
  }
  reportEthtoolLeft(want, sock.read(index, device), key, warn);
}

/** One warning per group whose settings are not as recorded after the restore. */
function reportEthtoolLeft(want: EthtoolSettings, after: EthtoolSettings, key: string, warn: Warn): void {
  const values = (r: Record<string, number | boolean>, names: string[]) => names.map((n) => `${n} ${r[n] === undefined ? 'absent' : String(r[n])}`).join(', ');
  if (want.features) {
    const off = differing(want.features.active, after.features?.active);
    if (off.length) {
      warn(`device ${key}: offload features not as before: ${off.map((n) => `${n} ${after.features?.active[n] ? 'on' : 'off'} (was ${want.features!.active[n] ? 'on' : 'off'})`).join(', ')}`);
    }
  }
  for (const g of [...NUMBER_GROUP_NAMES, ...FLAG_GROUP_NAMES]) {
    const w = want[g] as Record<string, number | boolean> | undefined;
    if (!w) continue;
    const a = (after[g] ?? {}) as Record<string, number | boolean>;
    const off = [...new Set([...differing(w, a), ...differing(a, w).filter((n) => a[n] === true)])];
    if (off.length) warn(`device ${key}: ethtool ${g} not as before: now ${values(a, off)}; was ${values(w, off)}`);
  }
}
