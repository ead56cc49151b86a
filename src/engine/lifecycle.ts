// The lifecycle: attach at createRuntime, restore at poststop, and gc for
// containers whose poststop never came. Front-door independent: the OCI CLI
// calls these, and so could a CNI plugin.

import * as fs from 'fs';
import { ApplyError, ConfigError, DeviceLostError, HostNamespaceError, NetdevError, PlanError, RestoreError, StateError } from '../errors';
import {
  DEFAULT_POLICY_FILE, canonicalIp, checkAddressesInUse, isLinkLocalIpv6, checkNetworkPolicy, checkPolicy, hostDeviceName, loadContainerRequest, loadPolicy, requestedAddresses,
  validateConfigFile,
} from '../config';
import type { AddressUse, AddressesInUse, ConfigRequest, DeviceSpec, HookSelf, OciState, Policy } from '../config';
import type { Observed } from '../plan/plan';
import { Netns, bootId, isPinned, pathInto, pin, unpin } from '../netns/netns';
import type { LinkInfo } from '../netlink/link';
import { describePlan } from '../plan/describe';
import type { DescribedPlan } from '../plan/describe';
import { planAttach, unprovenIdentity } from '../plan/plan';
import { resolveSelectors } from '../plan/select';
import type { Plan } from '../state/records';
import { applyPlan, rollback } from '../apply/executor';
import { deleteNewHostAddresses, macvlanChanges } from '../apply/operations';
import type { ApplyContext, Side } from '../apply/operations';
import { impostorAt, locate, tiedElsewhere } from '../apply/identity';
import { matchV1Records } from '../apply/legacy';
import { addressesOf, linksOf, observe } from '../apply/observe';
import { captureDeviceStatesAhead } from '../apply/device-state';
import type { EarlyDeviceStates } from '../apply/device-state';
import { BadJournal, Journal, JournalOrigin, Lock, StateDir } from '../state/statedir';
import { execDelegate } from '../libcni/invoke';
import type { ClaimRecord, HostNamespace, JournalNetwork } from '../state/statedir';
import { addNetworks, delNetworks, DEFAULT_CNI_SETTINGS, gcCache, hostDevicesNamed, networksHeld, networkStatus, plannedNetworks, prepareNetworks, refuseHeldByNetworks } from './networks';
import type { CniSettings } from './networks';

// The defaults a front door names in its help.
export { DEFAULT_STATE_DIR } from '../state/statedir';
export { DEFAULT_POLICY_FILE } from '../config';

export interface EngineOptions {
  stateDir: string;
  /**
   * The policy file asked for (--policy, OCI_NETDEV_POLICY); it must exist. Unset: the default
   * file, whose absence means the default policy (config.json may use any device, the annotation none).
   */
  policyFile?: string;
  /** Loud, non-fatal reports (fallback names, lost devices). */
  warn: (message: string) => void;
  /** A change made to the host, for the logs only; the container is the one the hook runs for unless named. */
  info: (message: string, containerId?: string) => void;
  /** The hook run as its runtime started it: its --device arguments and its siblings' are devices too (CDI). */
  hookSelf?: HookSelf;
  /** Where CNI networks and plugins are found (type cni entries); the libcni defaults when unset. */
  cni?: CniSettings;
  /**
   * The host's network namespace, as a path (/run/netns/NAME): where devices come from and go
   * back to, and where the CNI plugins run. Unset: the namespace of the calling thread, as for a
   * hook. Opened once per call; the thread enters it only for what the kernel resolves in the
   * caller's namespace (netlink sockets, per-device sysctls, plugin processes).
   */
  hostNetns?: string;
  /**
   * Called by createRuntime (and CNI ADD) once the journal is written and the namespace pinned,
   * just before the first change to the kernel: where tests change the host between the plan and
   * its steps.
   */
  beforeApply?: (journal: Journal) => void;
}

/** The host's namespace for one call (EngineOptions.hostNetns). */
export function openHost(opts: Pick<EngineOptions, 'hostNetns'>): Netns {
  return opts.hostNetns === undefined ? Netns.current() : Netns.open(opts.hostNetns);
}

/** Start time of a process (field 22 of /proc/pid/stat), to tell a reused pid apart; undefined if gone. */
function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/** The fields of /proc/PID/stat after the command name (state first); undefined if the pid is gone. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * The journal's container is alive: for the OCI hooks, its init still runs (same pid and start
 * time, and not a zombie); for a CNI attachment, which has no process, the netns path given at ADD
 * still refers to the namespace the journal pinned (the runtime deletes that path with the sandbox).
 */
function containerAlive(j: Journal): boolean {
  if (j.origin) return netnsPathHolds(j);
  if (j.containerPid === undefined || j.containerStartTime === undefined) return false;
  const fields = procStat(j.containerPid);
  return fields !== undefined && fields[0] !== 'Z' && fields[19] === j.containerStartTime;
}

function netnsPathHolds(j: Journal): boolean {
  try {
    const ns = Netns.open(j.netnsPath);
    const same = ns.dev === j.netnsDev && ns.ino === j.netnsIno;
    ns.close();
    return same;
  } catch {
    return false;
  }
}

function sideOf(ns: Netns): Side {
  return { ns, sock: ns.socket() };
}

function closeSide(side: Side | null): void {
  side?.sock.close();
  side?.ns.close();
}

/** Devices other containers' journals hold in this same namespace, by ifindex there. */
function claimedInNamespace(others: ClaimRecord[], ns: Netns): Map<number, string> {
  const held = new Map<number, string>();
  for (const c of others) {
    if (c.netnsDev !== ns.dev || c.netnsIno !== ns.ino) continue;
    for (const index of c.containerIndexes) held.set(index, c.containerId);
  }
  return held;
}

/** A group number no other journal and no visible link uses. */
function allocateGroup(others: ClaimRecord[], links: LinkInfo[]): number {
  const used = new Set([...others.map((c) => c.group), ...links.map((l) => l.group)]);
  for (;;) {
    const g = 0x10000 + Math.floor(Math.random() * 0x7ffe0000);
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
function addressesInUse(observed: Observed, others: ClaimRecord[], moved: string[], held: Map<string, string>): AddressesInUse {
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
function unusedMac(taken: Set<string>): string {
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

/** The policy in force: the file asked for, which must exist, else the default file if there is one. */
export function policyOf(opts: Pick<EngineOptions, 'policyFile'>): Policy {
  return loadPolicy(opts.policyFile ?? DEFAULT_POLICY_FILE, opts.policyFile !== undefined);
}

/** The checks on names and config alone, made before anything is observed or touched; the policy in force. */
function checkRequest(req: ConfigRequest, opts: EngineOptions): Policy {
  const policy = policyOf(opts);
  checkPolicy(req.devices, policy);
  checkNetworkPolicy(req.networks, policy);
  if (!req.hasNetworkNamespace) {
    throw new ConfigError('config.json has no network namespace (linux.namespaces type "network"); devices cannot be moved', { field: 'linux.namespaces' });
  }
  return policy;
}

function requireOwnNamespace(ctNs: Netns, hostNs: Netns, nsPath: string): void {
  if (ctNs.sameAs(hostNs)) {
    throw new ConfigError(`network namespace ${nsPath} is the host's own; the container needs a namespace of its own`, { field: 'linux.namespaces' });
  }
}

/**
 * Refuses a namespace path that cannot be opened, is not a network namespace, or is the host's
 * own: for a front door that names the path's source in its own error (CNI_NETNS).
 */
export function checkContainerNetns(nsPath: string, opts: Pick<EngineOptions, 'hostNetns'>): void {
  const hostNs = openHost(opts);
  try {
    const ctNs = Netns.open(nsPath);
    try {
      requireOwnNamespace(ctNs, hostNs, nsPath);
    } finally {
      ctNs.close();
    }
  } finally {
    hostNs.close();
  }
}

/**
 * Observes the host and the container's namespace (null: not made yet, so nothing in it but the
 * lo the planner knows of) and plans. Reads only; the caller holds the claims lock when it will apply.
 */
function observeAndPlan(
  requested: DeviceSpec[], networks: JournalNetwork[], uses: AddressUse[], policy: Policy, host: Side, container: Side | null, ctNs: Netns | null,
  others: ClaimRecord[], bad: BadJournal[], early?: EarlyDeviceStates,
): Plan {
  const hostLinks = linksOf(host);
  // Held by host device name: a moved device's original name (its key may only name the entry).
  const held = heldOnHost(others, hostLinks);
  refuseHeldByNetworks(networks, hostLinks, held);
  const containerLinks = linksOf(container);
  // Devices picked by MAC or bus address, then the policy for them, before planning.
  const devices = resolveSelectors(requested, hostLinks);
  if (devices.some((d) => d.select)) checkPolicy(devices, policy);
  try {
    // A device another container holds is refused by the planner; its state is not read, as its
    // holder may be moving it right now.
    const hostDevices = devices.filter((d) => d.kind === 'host').map(hostDeviceName).filter((name) => !held.has(name));
    const masters = devices.flatMap((d) => (d.kind === 'macvlan' && d.master !== undefined ? [d.master] : []));
    const observed = observe(host, container, { host: hostLinks, container: containerLinks }, hostDevices, masters, early);
    const inUse = addressesInUse(observed, others, hostDevices, held);
    const taken = new Set(inUse.macs.keys());
    const plan = planAttach(devices, observed, {
      group: allocateGroup(others, [...hostLinks, ...containerLinks]),
      claims: held,
      claimedInContainer: ctNs ? claimedInNamespace(others, ctNs) : new Map(),
      macvlanMasters: macvlanMasters(others),
      policy,
      indexBase: 0x10000 + Math.floor(Math.random() * 0x3fff0000),
      newMac: () => unusedMac(taken),
    });
    const named = new Map(networks.map((n) => [n.network, hostDevicesNamed(n, hostLinks).map((d) => d.name)]));
    checkAddressesInUse(uses, inUse, policy, (network) => named.get(network) ?? []);
    return plan;
  } catch (err) {
    // Another container's unreadable journal blocks nobody, but a device it may hold is named.
    throw mayBeHeld(err, devices, hostLinks, bad);
  }
}

/**
 * The host devices' routes, neighbours, sysctls and tc, read before waiting for a claims lock that
 * another hook holds, so that hooks do not queue behind each other's reads (BENCHMARKS.md,
 * 2026-12-02). Selectors that match nothing yet are the planner's to report, under the lock.
 */
function readAhead(requested: DeviceSpec[], host: Side): EarlyDeviceStates {
  const hostLinks = linksOf(host);
  let devices: DeviceSpec[];
  try {
    devices = resolveSelectors(requested, hostLinks);
  } catch {
    return new Map();
  }
  return captureDeviceStatesAhead(host, hostLinks, devices.filter((d) => d.kind === 'host').map(hostDeviceName));
}

/**
 * `validate --live`: what createRuntime would decide for `req` on this host now (the policy, the
 * namespace requirement, the always-refused rules, devices and names, MTU ranges, other
 * containers' claims), from the same observation and planner, changing nothing. The container's namespace is
 * observed only if config.json names one that exists.
 */
function checkAttach(req: ConfigRequest, opts: EngineOptions): { plan: Plan; networks: JournalNetwork[] } | undefined {
  // attach asks nothing of a config without devices, so neither does this.
  if (req.devices.length === 0 && req.networks.length === 0) return undefined;
  const policy = checkRequest(req, opts);
  // The networks and their plugins exist; nothing is run.
  const networks = prepareNetworks(req.networks, opts.cni ?? DEFAULT_CNI_SETTINGS);
  const hostNs = openHost(opts);
  let ctNs: Netns | null = null;
  let host: Side | null = null;
  let container: Side | null = null;
  try {
    if (req.netnsPath !== undefined && fs.existsSync(req.netnsPath)) {
      ctNs = Netns.open(req.netnsPath);
      requireOwnNamespace(ctNs, hostNs, req.netnsPath);
    }
    host = sideOf(hostNs);
    container = ctNs ? sideOf(ctNs) : null;
    const scan = new StateDir(opts.stateDir).scanClaims();
    return { plan: observeAndPlan(req.devices, networks, requestedAddresses(req.devices, req.networks), policy, host, container, ctNs, scan.claims, scan.bad), networks };
  } finally {
    if (host) closeSide(host);
    else hostNs.close();
    if (container) closeSide(container);
    else ctNs?.close();
  }
}

/**
 * `validate`: the devices of a config.json and the policy for them; with `live`, also what
 * createRuntime would decide on this host now (checkAttach). Changes nothing.
 */
/**
 * `plan`: each step createRuntime would take for the config on this host now, and what poststop
 * will put back, from the same observation and planner as createRuntime (checkAttach). Changes nothing.
 */
export function planConfig(file: string, opts: EngineOptions): DescribedPlan {
  const planned = checkAttach(validateConfigFile(file), opts);
  if (!planned) return { createRuntime: [], poststop: [] };
  return describePlan(planned.plan, plannedNetworks(planned.networks));
}

export function validateConfig(file: string, opts: EngineOptions, live: boolean): ConfigRequest {
  const req = validateConfigFile(file);
  if (live) checkAttach(req, opts);
  else if (req.devices.length || req.networks.length) {
    const policy = policyOf(opts);
    checkPolicy(req.devices, policy);
    checkNetworkPolicy(req.networks, policy);
  }
  return req;
}

/** createRuntime: validate, observe, plan, pin, journal and apply; any failure leaves the host as it was. */
export function attach(state: OciState, opts: EngineOptions): void {
  const req = loadContainerRequest(state, opts.hookSelf);
  if (req.devices.length === 0 && req.networks.length === 0) return;
  const policy = checkRequest(req, opts);
  const networks = prepareNetworks(req.networks, opts.cni ?? DEFAULT_CNI_SETTINGS, state.id);
  const nsPath = req.netnsPath ?? (state.pid ? `/proc/${state.pid}/ns/net` : undefined);
  if (!nsPath) throw new ConfigError('the state has no pid and config.json gives no network namespace path', { field: 'pid' });
  const target = { id: state.id, netnsPath: nsPath, bundle: state.bundle, pid: state.pid || undefined };
  attachPlanned(target, req.devices, requestedAddresses(req.devices, req.networks), policy, opts, networks);
}

/** Where a front door attaches devices, and the id the state keeps them under. */
export interface AttachTarget {
  /** The journal's id: the OCI container id, or another front door's attachment id. */
  id: string;
  netnsPath: string;
  /** The OCI bundle; a detach from another bundle is not this one's. */
  bundle?: string;
  /** The container's init, whose life is the attachment's (OCI). */
  pid?: number;
  /** Another front door than the OCI hooks (CNI). */
  origin?: JournalOrigin;
}

/**
 * Attaches `devices` for a front door other than the OCI hooks (the CNI plugin): the policy, then
 * the same observation, claims, plan, pin, journal and rollback as createRuntime. Returns the
 * journal, or the existing one when the same target asks again with nothing new.
 */
export function attachDevices(target: AttachTarget, devices: DeviceSpec[], opts: EngineOptions): Journal {
  const policy = policyOf(opts);
  checkPolicy(devices, policy);
  return attachPlanned(target, devices, requestedAddresses(devices, []), policy, opts);
}

/** `uses`: the addresses and MACs the request sets, judged against those in use once the host is observed. */
function attachPlanned(
  target: AttachTarget, devices: DeviceSpec[], uses: AddressUse[], policy: Policy, opts: EngineOptions, networks: JournalNetwork[] = [],
): Journal {
  const nsPath = target.netnsPath;
  const store = new StateDir(opts.stateDir);
  store.ensure();
  const hostNs = openHost(opts);
  const ctNs = Netns.open(nsPath);
  try {
    requireOwnNamespace(ctNs, hostNs, nsPath);
  } catch (err) {
    hostNs.close();
    ctNs.close();
    throw err;
  }
  const host = sideOf(hostNs);
  const container = sideOf(ctNs);
  const lock = store.lockContainer(target.id);
  // Taken by a rollback that needs a fallback name (claimsReader), until the journal records it.
  const rollbackClaims: { lock?: Lock } = {};
  let journal: Journal | undefined;
  let ownsState = false;
  try {
    const existing = store.readJournal(target.id);
    if (existing) {
      // The same container asking again (a retried hook, or the next of the hook pairs a CDI engine
      // adds per device) finds its devices attached: nothing to do.
      const held = new Set([...existing.plan.devices.map((d) => d.key), ...(existing.networks ?? []).map((n) => n.network)]);
      const missing = [...devices.map((d) => d.key), ...networks.map((n) => n.network)].filter((k) => !held.has(k));
      if (existing.phase === 'attached' && existing.bundle === target.bundle && existing.netnsDev === ctNs.dev && existing.netnsIno === ctNs.ino) {
        if (missing.length === 0) return existing;
        throw new StateError(`container ${target.id} already has devices attached, without ${missing.join(', ')}: ask for all of its devices one way (config.json and CDI, or the annotation)`);
      }
      if (existing.namesPending) {
        throw new StateError(`container ${target.id}: its devices are home, but its record stays open until the host frees names (${waitingNames(existing).join('; ')}); free them and run oci-netdev gc`);
      }
      const from = existing.bundle !== undefined ? `bundle ${existing.bundle}; run its poststop first` : `namespace ${existing.netnsPath}; detach them first`;
      throw new StateError(`container ${target.id} already has devices attached from ${from}`);
    }
    ownsState = true;
    // With the lock free, the states are read once, under it; taken, they are read before waiting.
    let claims = store.tryLockClaims();
    const mark = claims ? null : store.releaseMark();
    const early = claims ? undefined : readAhead(devices, host);
    claims ??= store.lockClaims();
    let makeDurable: () => void;
    try {
      // Another container's unreadable journal blocks nobody: a device it may hold is off the host anyway.
      const scan = store.scanClaims();
      // Read after the scan: a container that let a device go since the read-ahead, maybe while it
      // was still restoring it, changed the mark before its claims went.
      const ahead = mark !== null && store.releaseMark() === mark ? early : undefined;
      const others = scan.claims.filter((c) => c.containerId !== target.id);
      const plan = observeAndPlan(devices, networks, uses, policy, host, container, ctNs, others, scan.bad.filter((b) => b.containerId !== target.id), ahead);
      journal = {
        containerId: target.id,
        ...(target.bundle !== undefined ? { bundle: target.bundle } : {}),
        ...(target.origin ? { origin: target.origin } : {}),
        phase: 'attaching',
        createdAt: new Date().toISOString(),
        containerPid: target.pid,
        containerStartTime: target.pid ? processStartTime(target.pid) : undefined,
        netnsPath: nsPath,
        netnsDev: ctNs.dev,
        netnsIno: ctNs.ino,
        plan,
        started: 0,
        hostNetns: hostRecord(hostNs, opts),
        ...(networks.length ? { networks } : {}),
      };
      makeDurable = store.createJournal(journal);
    } finally {
      claims.release();
    }
    // Other hooks see the claims already; the fsync need not hold them up.
    makeDurable();
    pin(ctNs, store.pinPath(target.id));
    const j = journal;
    const persist = () => store.writeJournal(j);
    const ctx = { ...contextFor(host, container, j, persist, opts), ...claimsReader(store, target.id, rollbackClaims) };
    opts.beforeApply?.(j);
    applyPlan(ctx, j);
    const hostBefore = networks.length ? addressesOf(host) : [];
    try {
      // In the pinned namespace: DEL, whenever it comes, finds the one ADD used. The plugins run
      // in the host's namespace, where they make the host's side of a network (a bridge, NAT rules).
      hostNs.within(() => addNetworks(j, store.pinPath(target.id), container, persist, ctx.info, opts.cni?.timeoutMs));
    } catch (err) {
      // A failed ADD is followed by its DEL (the spec), after the devices came home, as at restore:
      // the DEL deletes whatever has CNI_IFNAME in there, and the container may have given that
      // name to one of our devices while the ADD ran.
      const undoErrors = rollback(ctx, j);
      const delErrors = hostNs.within(() => delNetworks(j, store.pinPath(target.id), persist, ctx.info, opts.cni?.timeoutMs));
      dropLeftAddresses(store, j, host, hostBefore, opts);
      throw new ApplyError(err as Error, [...undoErrors, ...delErrors]);
    }
    j.phase = 'attached';
    store.writeJournal(j, false);
    return j;
  } catch (err) {
    // Nothing is left behind unless a rollback step failed: then the journal stays for gc. A
    // device found gone (deleted on the host while it was planned) leaves nothing to undo. A device
    // the rollback brought home under a fallback name, or without an altname, keeps it open too.
    const pending = err instanceof ApplyError ? err.undoErrors.filter((e) => !(e instanceof DeviceLostError)) : [];
    if (ownsState && !pending.length) {
      unpin(store.pinPath(target.id));
      const waiting = journal ? waitingNames(journal) : [];
      if (journal && waiting.length) {
        journal.namesPending = true;
        store.writeJournal(journal, false);
        opts.warn(`container ${target.id}: its record stays open: ${waiting.join('; ')} (oci-netdev gc puts them back once they are free)`);
      } else {
        store.remove(target.id);
      }
    }
    if (!(err instanceof ApplyError) || pending.length === err.undoErrors.length) throw err;
    for (const e of err.undoErrors) if (e instanceof DeviceLostError && e.device !== err.device) opts.warn(`container ${target.id}: ${e.message}`);
    throw new ApplyError(err.failure, pending);
  } finally {
    rollbackClaims.lock?.release();
    lock.release();
    closeSide(host);
    closeSide(container);
  }
}

/**
 * What a failed ADD's plugins left on the host that their DEL did not take: the global addresses
 * new since `before` on the host devices its networks name (the bridge plugin's gateway on its
 * bridge), unless another container's network names that device too (the address may be its).
 */
function dropLeftAddresses(store: StateDir, j: Journal, host: Side, before: Observed['hostAddresses'], opts: EngineOptions): void {
  const hostLinks = linksOf(host);
  const namedBy = (n: JournalNetwork) => hostDevicesNamed(n, hostLinks).map((d) => d.name);
  const shared = new Set(store.scanJournals().journals.filter((o) => o.containerId !== j.containerId).flatMap((o) => (o.networks ?? []).flatMap(namedBy)));
  const names = (j.networks ?? []).flatMap(namedBy).filter((name) => !shared.has(name));
  if (!names.length) return;
  try {
    for (const left of deleteNewHostAddresses(host, before, names)) opts.info(`deleted address ${left}, left by the failed ADD`, j.containerId);
  } catch (err) {
    opts.warn(`container ${j.containerId}: an address the failed ADD left on the host stays: ${(err as Error).message}`);
  }
}

/**
 * A device the plan found missing from the host may be held by a container whose journal cannot
 * be read: the error says so, naming them.
 */
function mayBeHeld(err: unknown, devices: { key: string; kind: string; master?: string }[], hostLinks: LinkInfo[], bad: BadJournal[]): unknown {
  if (!(err instanceof PlanError) || err.op !== 'plan' || !bad.length) return err;
  const spec = devices.find((d) => d.key === err.device);
  const names = [spec?.kind === 'host' ? spec.key : undefined, spec?.master].filter((n): n is string => n !== undefined);
  const missing = names.find((n) => !hostLinks.some((l) => l.name === n));
  if (missing === undefined) return err;
  const [who, whose] = bad.length > 1 ? ['containers', 'whose journals cannot'] : ['container', 'whose journal cannot'];
  const ids = bad.map((b) => b.containerId).join(', ');
  return new PlanError(`${err.message}; ${missing} may be held by ${who} ${ids}, ${whose} be read (see oci-netdev gc)`, { device: err.device, op: 'plan' });
}

function contextFor(host: Side, container: Side | null, journal: Journal, persist: () => void, opts: EngineOptions): ApplyContext {
  const info = (message: string) => opts.info(message, journal.containerId);
  return { host, container, plan: journal.plan, persist, warn: opts.warn, info, observedAt: Date.parse(journal.createdAt), seen: new Map(), movedHere: new Set() };
}

/**
 * The container's namespace if it still exists: the pin, else the original path. Either must be
 * the very namespace the journal recorded (device and inode), or it is not ours to touch.
 */
function openContainerNs(store: StateDir, j: Journal): Netns | null {
  const pinPath = store.pinPath(j.containerId);
  for (const path of isPinned(pinPath) ? [pinPath, j.netnsPath] : [j.netnsPath]) {
    try {
      const ns = Netns.open(path);
      if (ns.dev === j.netnsDev && ns.ino === j.netnsIno) return ns;
      ns.close();
    } catch {
      // gone: devices are back on the host or destroyed
    }
  }
  return null;
}

/** The host's namespace as a journal records it. */
function hostRecord(hostNs: Netns, opts: EngineOptions): HostNamespace {
  return { dev: hostNs.dev, ino: hostNs.ino, bootId: bootId(), ...(opts.hostNetns !== undefined ? { path: opts.hostNetns } : {}) };
}

/**
 * Refuses to restore `j` anywhere but in the host's namespace it recorded, changing nothing. A
 * journal of a release that recorded none is restored where the restore runs, as that release did.
 */
function requireHostNamespace(j: Journal, hostNs: Netns): void {
  const want = j.hostNetns;
  if (!want) return;
  const id = j.containerId;
  if (want.bootId !== bootId()) {
    throw new HostNamespaceError(`container ${id}: its journal was written before the machine restarted (boot ${want.bootId}): the namespaces it names are gone and the restart reset its devices; nothing changed: check them, then drop the record with oci-netdev gc --forget ${id}`);
  }
  if (want.dev === hostNs.dev && want.ino === hostNs.ino) return;
  const path = pathInto(want.dev, want.ino, want.path !== undefined ? [want.path] : []);
  const how = path !== undefined ? `e.g. nsenter --net=${path} oci-netdev gc`
    : `no process or /run/netns entry is in it now; if it is gone, drop the record with oci-netdev gc --forget ${id}`;
  throw new HostNamespaceError(`container ${id}: its devices belong to the host's network namespace net:[${want.ino}], not to this one (net:[${hostNs.ino}]); nothing changed: run oci-netdev gc in the host's network namespace (${how})`);
}

/**
 * What keeps a restored journal open: host devices home under a fallback name, or without some of
 * their own altnames, because the host uses those names. One phrase per device; none when closed.
 */
function waitingNames(j: Journal): string[] {
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
 * The names other containers' records hold on the host, for a fallback name: read under the claims
 * lock, which `held` keeps until the journal records the name chosen, and no longer: the devices
 * still to move home do not hold other hooks up.
 */
function claimsReader(store: StateDir, id: string, held: { lock?: Lock }): Pick<ApplyContext, 'heldElsewhere' | 'fallbackRecorded'> {
  let names: Map<string, string> | undefined;
  return {
    heldElsewhere: () => {
      if (!held.lock) {
        held.lock = store.lockClaims();
        names = heldOnHost(store.scanClaims().claims.filter((c) => c.containerId !== id), []);
      }
      return names!;
    },
    fallbackRecorded: () => {
      held.lock?.release();
      delete held.lock;
    },
  };
}

/** What a restore ended with: the devices found lost (each reported once, its record closed), and
 * what the journal, kept open, still waits for (empty when it is closed). */
interface RestoreOutcome {
  lost: string[];
  waiting: string[];
}

/**
 * Undoes everything a journal records, then drops the state. Lock must be held. Refuses
 * (HostNamespaceError) outside the host's namespace. When every device is home but some under a
 * fallback name or without an altname, the journal stays open, marked namesPending, for gc.
 */
function restore(store: StateDir, j: Journal, hostNs: Netns, opts: EngineOptions): RestoreOutcome {
  requireHostNamespace(j, hostNs);
  const ctNs = openContainerNs(store, j);
  const host = { ns: hostNs, sock: hostNs.socket() };
  const container = ctNs ? sideOf(ctNs) : null;
  let errors: Error[];
  let keepPin: boolean;
  const persist = () => store.writeJournal(j);
  const claims: { lock?: Lock } = {};
  try {
    // A journal of the release before version 2: its records get their devices' identities now,
    // before anything reads them, and the undos go by them.
    const fromV1 = j.plan.devices.some((d) => d.v1);
    matchV1Records({ host, container }, j.plan);
    // A journal that did not record the host's namespace: a device tied to another one shows
    // that this is not it.
    const elsewhere = j.hostNetns ? undefined : j.plan.devices.find((d) => tiedElsewhere({ host, container }, d));
    if (elsewhere) {
      throw new HostNamespaceError(`container ${j.containerId}: its journal, of an older release, does not name the host's network namespace, and device ${elsewhere.key} is tied to another namespace than this one; nothing changed: run oci-netdev gc in the host's network namespace`);
    }
    if (!container && !j.namesPending) opts.warn(`container ${j.containerId}: its network namespace is gone; restoring from what the host holds`);
    j.phase = 'detaching';
    store.writeJournal(j, fromV1);
    const ctx = { ...contextFor(host, container, j, persist, opts), ...claimsReader(store, j.containerId, claims) };
    // The devices first, then the networks' DEL, in the namespace their ADD used while it exists:
    // a plugin's DEL deletes whatever has CNI_IFNAME in there, and the container may have given
    // that name to one of our devices.
    const pinPath = store.pinPath(j.containerId);
    const cniNetns = container ? (isPinned(pinPath) ? pinPath : j.netnsPath) : '';
    errors = [...rollback(ctx, j), ...hostNs.within(() => delNetworks(j, cniNetns, persist, ctx.info, opts.cni?.timeoutMs))];
    // The pin stays while anything of ours may still be in the namespace: a network not deleted,
    // a device there, or one neither home nor proven gone (it may be hidden, or unidentifiable
    // from here). Without the pin the namespace could die and destroy it.
    keepPin = container !== null && (networksHeld(j) || j.plan.devices.some((d) => d.lost === undefined
      && (d.kind === 'host' ? locate(ctx, d)?.where !== 'host' : d.kind === 'macvlan' && locate(ctx, d) !== null)));
  } finally {
    claims.lock?.release();
    host.sock.close();
    closeSide(container);
  }
  // A device proven gone is reported once and its record ends (its name is free for new claims).
  const lost = errors.filter((e) => e instanceof DeviceLostError).map((e) => e.message);
  for (const message of lost) opts.warn(`container ${j.containerId}: ${message}; its record is closed`);
  const pending = errors.filter((e) => !(e instanceof DeviceLostError));
  if (pending.length === 0) {
    unpin(store.pinPath(j.containerId));
    const waiting = waitingNames(j);
    if (waiting.length) {
      // Home, but not under every name it had: the record stays open (and its names held) for gc.
      j.namesPending = true;
      delete j.restoreFailure;
      store.writeJournal(j, false);
      opts.warn(`container ${j.containerId}: its record stays open: ${waiting.join('; ')} (oci-netdev gc puts them back once they are free)`);
      return { lost, waiting };
    }
    store.remove(j.containerId);
    return { lost, waiting: [] };
  }
  // A device that did not come home keeps its record, and gc retries it.
  if (!keepPin) unpin(store.pinPath(j.containerId));
  j.restoreFailure = pending.map((e) => e.message).join('; ');
  store.writeJournal(j, false);
  throw new RestoreError(`container ${j.containerId}: ${j.restoreFailure} (state kept; run oci-netdev gc to retry)`);
}

/**
 * poststop: put everything back. A second run finds no journal and does nothing. The state of a
 * container of the same id from another bundle (another runtime's, or a refused twin) is left alone.
 */
export function detach(state: OciState, opts: EngineOptions): void {
  detachAttachment(state.id, opts, (j) => {
    if (j.bundle === undefined || j.bundle === state.bundle) return true;
    opts.warn(`container ${state.id}: its devices were attached from bundle ${j.bundle}, not ${state.bundle}; nothing restored for this one`);
    return false;
  });
}

/**
 * Restores the attachment kept under `id` (a CNI DEL, or poststop through `detach`) if `belongs`
 * accepts its journal. Returns whether there was one to restore; none is not an error.
 */
export function detachAttachment(id: string, opts: EngineOptions, belongs: (j: Journal) => boolean = () => true): boolean {
  const store = new StateDir(opts.stateDir);
  if (!fs.existsSync(store.containerDir(id))) return false;
  try {
    using _lock = store.lockContainer(id);
    const j = store.readJournal(id);
    if (!j) {
      store.remove(id);
      return false;
    }
    if (!belongs(j)) return false;
    using hostNs = openHost(opts);
    restore(store, j, hostNs, opts);
    return true;
  } catch (err) {
    throw whatNext(id, err);
  }
}

/**
 * A restore that could not run or finish because of the state dir (read-only, full, a lock or
 * journal that cannot be opened), as one line that names the container and says what to run.
 * The restore's own errors already do.
 */
function whatNext(id: string, err: unknown): unknown {
  if (err instanceof RestoreError || err instanceof HostNamespaceError) return err;
  if (err instanceof NetdevError && !(err instanceof StateError)) return err;
  const cause = err instanceof Error ? err.message : String(err);
  return new RestoreError(`container ${id}: not restored: ${cause}; its devices stay where they are until oci-netdev gc runs once that is fixed`);
}

/** The readable journals of the state dir, for a front door that lists its own attachments (CNI GC). */
export function attachments(opts: EngineOptions): Journal[] {
  return new StateDir(opts.stateDir).scanJournals().journals;
}

export interface GcResult {
  containerId: string;
  /**
   * restored; lost: restored but for devices proven gone, record closed; kept: the container
   * lives; busy: a hook holds it (retry later); failed: left as it is, an operator must look;
   * removed: a folder without a journal; forgotten: dropped on request (forget).
   */
  action: 'restored' | 'lost' | 'kept' | 'busy' | 'failed' | 'removed' | 'forgotten';
  reason: string;
}

/** Whether a container's state folder went away under gc: its poststop (or DEL) finished meanwhile. */
const stateEnded = (err: unknown): boolean => (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';

/**
 * Restores containers whose hook died mid-way or whose container is gone without a poststop, then
 * DELs the attachments of libcni's cache that oci-netdev made and no journal holds (gcCache).
 */
export function gc(opts: EngineOptions): GcResult[] {
  const store = new StateDir(opts.stateDir);
  const results: GcResult[] = [];
  using hostNs = openHost(opts);
  for (const id of store.containerIds()) {
    let lock: Lock | null;
    try {
      lock = store.tryLockContainer(id);
    } catch (err) {
      // A container that ended since the listing is no failure.
      if (stateEnded(err)) continue;
      // An unsafe folder (a link, someone else's) is reported and left alone; the others go on.
      results.push({ containerId: id, action: 'failed', reason: (err as Error).message });
      continue;
    }
    if (!lock) {
      results.push({ containerId: id, action: 'busy', reason: 'a hook is working on it' });
      continue;
    }
    if (!lock.isCurrent()) {
      lock.release();
      continue;
    }
    try {
      const j = store.readJournal(id);
      if (!j) {
        unpin(store.pinPath(id));
        store.remove(id);
        results.push({ containerId: id, action: 'removed', reason: 'no journal' });
        continue;
      }
      if (j.phase === 'attached' && containerAlive(j)) {
        const why = j.origin ? `CNI attachment: its namespace ${j.netnsPath} is still there` : `container process ${j.containerPid} is running`;
        results.push({ containerId: id, action: 'kept', reason: why });
        continue;
      }
      const reason = j.phase === 'attached' ? 'container is gone'
        : j.namesPending ? 'its devices are home, and the names they waited for are free'
          : j.restoreFailure !== undefined ? 'an earlier restore did not finish' : `hook died while ${j.phase}`;
      try {
        const { lost, waiting } = restore(store, j, hostNs, opts);
        if (waiting.length) {
          results.push({ containerId: id, action: 'kept', reason: waiting.join('; ') });
          continue;
        }
        hostNs.within(() => releaseIpam(j, opts));
        results.push(lost.length ? { containerId: id, action: 'lost', reason: `${reason}: ${lost.join('; ')}` } : { containerId: id, action: 'restored', reason });
      } catch (err) {
        results.push({ containerId: id, action: 'failed', reason: `${reason}: ${(err as Error).message}` });
      }
    } catch (err) {
      // A corrupt, foreign or unreadable journal, or state that cannot be removed, is named and
      // left as it is; the others go on.
      results.push({ containerId: id, action: 'failed', reason: (err as Error).message });
    } finally {
      lock.release();
    }
  }
  // After a reboot the state dir is gone but IPAM leases and libcni's cache are not.
  results.push(...hostNs.within(() => gcCache(opts.stateDir, opts.cni ?? DEFAULT_CNI_SETTINGS)));
  return results;
}

/**
 * Drops the record of `id` without restoring anything (its pin too, which may let the namespace
 * and what is in it go): for a record an operator has given up on. Reported as a warning.
 */
export function forget(id: string, opts: EngineOptions): GcResult {
  const store = new StateDir(opts.stateDir);
  if (!fs.existsSync(store.containerDir(id))) throw new StateError(`container ${id} has no record in ${opts.stateDir}`);
  const lock = store.tryLockContainer(id);
  if (!lock) throw new StateError(`container ${id}: a hook is working on it; try again once it is done`);
  try {
    let held: string;
    try {
      const j = store.readJournal(id);
      held = j ? [...j.plan.devices.map((d) => `device ${d.key}`), ...(j.networks ?? []).map((n) => `network ${n.network}`)].join(', ') || 'nothing' : 'no journal';
    } catch (err) {
      held = `a journal that cannot be read: ${(err as Error).message}`;
    }
    unpin(store.pinPath(id));
    store.remove(id);
    const reason = `record dropped without restoring anything (it held ${held})`;
    opts.warn(`container ${id}: ${reason}`);
    return { containerId: id, action: 'forgotten', reason };
  } finally {
    lock.release();
  }
}

/**
 * A CNI attachment restored without its runtime's DEL: its IPAM reservation is released as that
 * DEL would have (IPAM DEL without a namespace). A failure is a warning; the devices are home.
 */
function releaseIpam(j: Journal, opts: EngineOptions): void {
  const o = j.origin;
  if (!o?.ipam) return;
  const version = typeof o.ipam.config.cniVersion === 'string' ? o.ipam.config.cniVersion : '0.1.0';
  try {
    execDelegate(o.ipam.plugin, o.ipam.config, version, { command: 'DEL', containerId: o.containerId, ifname: o.ifname, path: o.ipam.path });
  } catch (err) {
    opts.warn(`container ${j.containerId}: releasing its IPAM reservation (${o.ipam.plugin}) failed: ${(err as Error).message}`);
  }
}

interface StatusDevice {
  key: string;
  containerName: string | null;
  kind: 'moved' | 'adopted' | 'veth' | 'macvlan';
  /** macvlan: the host parent interface (the key is only an id). */
  master?: string;
  /**
   * Where the device is, found by its recorded identity: in the container, back on the host, or
   * neither; unproven: in the container, but nothing proves it is not a look-alike (`reason`).
   */
  state: 'in' | 'restored' | 'missing' | 'lost' | 'unproven';
  /** Why it is unproven, lost, or missing while something else holds its ifindex in the container. */
  reason?: string;
  /** A created macvlan the container changed beyond what was allowed: "mode source (created as bridge), 1 source MAC". */
  changed?: string;
  mac: string | null;
  mtu: number | null;
  /** Restored: the name it has on the host (a fallback while its own is taken). */
  hostName?: string;
  /** Its own altnames the host uses, which gc puts back once free. */
  missingAltNames?: string[];
  /** Asked for by inspectAttachment only: the global addresses (CIDRs) it has in the container. */
  addresses?: string[];
}

export interface StatusEntry {
  containerId: string;
  bundle: string | null;
  /** 'unreadable': the journal or the namespace cannot be read; `error` says why, and no devices are listed. */
  phase: Journal['phase'] | 'unreadable';
  pid: number | null;
  alive: boolean;
  /** Seconds since createRuntime. */
  ageSeconds: number;
  pinned: boolean;
  /** Made by another front door than the OCI hooks (a CNI ADD). */
  origin?: JournalOrigin;
  devices: StatusDevice[];
  /** The CNI networks, from the journal's final results. */
  networks: StatusNetwork[];
  /** What keeps a restored record open: devices home under a fallback name or without an altname. */
  waiting?: string[];
  error?: string;
}

export interface StatusNetwork {
  network: string;
  ifname: string;
  /** added: the chain finished; adding: it began and did not (a DEL is owed); pending: nothing in place. */
  state: 'pending' | 'adding' | 'added';
  addresses: string[];
  portMappings: Array<{ hostPort: number; containerPort: number; protocol?: string; hostIP?: string }>;
}

/** What each container holds, read live from its namespace and the host; a bad journal is listed as unreadable. */
export function status(opts: EngineOptions): StatusEntry[] {
  const store = new StateDir(opts.stateDir);
  const { journals, bad } = store.scanJournals();
  const unreadable = (containerId: string, error: string): StatusEntry => ({
    containerId, bundle: null, phase: 'unreadable', pid: null, alive: false, ageSeconds: 0, pinned: false, devices: [], networks: [], error,
  });
  using hostNs = openHost(opts);
  const entries = journals.map((j) => {
    try {
      return statusOf(store, j, hostNs);
    } catch (err) {
      return unreadable(j.containerId, (err as Error).message);
    }
  });
  return [...entries, ...bad.map((b) => unreadable(b.containerId, b.reason))];
}

function statusOf(store: StateDir, j: Journal, hostNs: Netns, withAddresses = false): StatusEntry {
  const pinned = isPinned(store.pinPath(j.containerId));
  const ctNs = openContainerNs(store, j);
  const host = { ns: hostNs, sock: hostNs.socket() };
  const container = ctNs ? sideOf(ctNs) : null;
  try {
    const sides = { host, container };
    // Matched in memory only: status changes nothing.
    matchV1Records(sides, j.plan);
    const global = withAddresses ? addressesOf(container).filter((a) => a.scope === 0) : [];
    return {
      containerId: j.containerId,
      bundle: j.bundle ?? null,
      phase: j.phase,
      pid: j.containerPid ?? null,
      alive: containerAlive(j),
      ageSeconds: Math.max(0, Math.round((Date.now() - Date.parse(j.createdAt)) / 1000)),
      pinned,
      ...(j.origin ? { origin: j.origin } : {}),
      devices: j.plan.devices.map((d): StatusDevice => {
        const at = d.lost ? null : locate(sides, d);
        const unprovable = d.v1 ? undefined : unprovenIdentity(d.identity);
        const unproven = at?.where === 'container' ? unprovable : undefined;
        const state = d.lost ? 'lost' : unproven ? 'unproven' : at?.where === 'container' ? 'in' : at ? 'restored' : 'missing';
        const hidden = unprovable && `${unprovable}; not in the container nor on the host, and nothing the kernel reports can show it gone: it may be in a namespace the container made`;
        const reason = d.lost ?? unproven ?? (at ? undefined : impostorAt(sides, d) ?? hidden);
        const changed = d.kind === 'macvlan' && at?.where === 'container' ? macvlanChanges(d, at.link) : undefined;
        return {
          key: d.key,
          containerName: at?.where === 'container' ? at.link.name : d.containerName ?? null,
          kind: d.kind === 'host' ? (d.adopted ? 'adopted' : 'moved') : d.kind,
          ...(d.kind === 'macvlan' ? { master: d.master } : {}),
          state,
          ...(reason !== undefined ? { reason } : {}),
          ...(changed !== undefined ? { changed } : {}),
          mac: at?.link.mac ?? null,
          mtu: at?.link.mtu ?? null,
          ...(at?.where === 'host' ? { hostName: at.link.name } : {}),
          ...(d.kind === 'host' && d.removedAltNames?.length ? { missingAltNames: d.removedAltNames } : {}),
          ...(withAddresses ? {
            addresses: at?.where === 'container' ? global.filter((a) => a.index === at.link.index).map((a) => `${a.local ?? a.address}/${a.prefixlen}`) : [],
          } : {}),
        };
      }),
      networks: (j.networks ?? []).map(networkStatus),
      ...(j.namesPending ? { waiting: waitingNames(j) } : {}),
    };
  } finally {
    host.sock.close();
    closeSide(container);
  }
}

/** The attachment kept under `id`, read live, with each device's global addresses in the container (CNI CHECK); null when there is none. */
export function inspectAttachment(id: string, opts: EngineOptions): { journal: Journal; status: StatusEntry } | null {
  const store = new StateDir(opts.stateDir);
  if (!fs.existsSync(store.containerDir(id))) return null;
  const j = store.readJournal(id);
  if (!j) return null;
  using hostNs = openHost(opts);
  return { journal: j, status: statusOf(store, j, hostNs, true) };
}
