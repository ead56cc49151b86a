// Attach: createRuntime and the CNI plugin's ADD observe, plan, pin, journal and apply; `validate
// --live` and `plan` run the same observation and planner and change nothing.

import * as fs from 'fs';
import { randomIndex } from '../model/devices';
import { ApplyError, ConfigError, DeviceLostError, StateError } from '../errors';
import { checkAddressesInUse, checkNetworkPolicy, checkPolicy, hostDeviceName, loadContainerRequest, requestedAddresses, validateConfigFile } from '../config';
import type { AddressUse, ConfigRequest, DeviceSpec, OciState, Policy } from '../config';
import { Netns, pin, unpin } from '../netns/netns';
import { describePlan } from '../plan/describe';
import type { DescribedPlan } from '../plan/describe';
import { planAttach } from '../plan/plan';
import { resolveSelectors } from '../plan/select';
import type { Plan } from '../state/journal-records';
import { applyPlan, rollback } from '../apply/executor';
import { deleteNewHostAddresses } from '../apply/operations';
import type { Side } from '../apply/operations';
import type { Sides } from '../apply/identity';
import { addressesOf, linksOf, observe } from '../apply/observe';
import type { Observed } from '../plan/observed';
import { captureDeviceStatesAhead } from '../apply/device-state';
import type { EarlyDeviceStates } from '../apply/device-state';
import { StateDir } from '../state/statedir';
import type { BadJournal, ClaimRecord, Journal, JournalNetwork, JournalOrigin } from '../state/statedir';
import { addNetworks, delNetworks, DEFAULT_CNI_SETTINGS, hostDevicesNamed, plannedNetworks, prepareNetworks, refuseHeldByNetworks } from './networks';
import { policyOf } from './options';
import type { EngineOptions } from './options';
import { contextFor, hostRecord, openHost, processStartTime, requireOwnNamespace, sideIn } from './sides';
import { addressesInUse, allocateGroup, claimedInNamespace, heldOnHost, macvlanMasters, mayBeHeld, NamesHeldElsewhere, unusedMac, waitingNames } from './claims';
import { deviceStatus } from './status';
import type { StatusDevice } from './status';

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
      indexBase: randomIndex(),
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
  using hostNs = openHost(opts);
  using ctNs = req.netnsPath !== undefined && fs.existsSync(req.netnsPath) ? Netns.open(req.netnsPath) : null;
  if (ctNs) requireOwnNamespace(ctNs, hostNs, ctNs.path);
  using host = sideIn(hostNs);
  using container = ctNs ? sideIn(ctNs) : null;
  const scan = new StateDir(opts.stateDir).scanClaims();
  return { plan: observeAndPlan(req.devices, networks, requestedAddresses(req.devices, req.networks), policy, host, container, ctNs, scan.claims, scan.bad), networks };
}

/**
 * `plan`: each step createRuntime would take for the config on this host now, and what poststop
 * will put back, from the same observation and planner as createRuntime (checkAttach). Changes nothing.
 */
export function planConfig(file: string, opts: EngineOptions): DescribedPlan {
  const planned = checkAttach(validateConfigFile(file), opts);
  if (!planned) return { createRuntime: [], poststop: [] };
  return describePlan(planned.plan, plannedNetworks(planned.networks));
}

/**
 * `validate`: the devices of a config.json and the policy for them; with `live`, also what
 * createRuntime would decide on this host now (checkAttach). Changes nothing.
 */
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
  attachPlanned(target, req.devices, requestedAddresses(req.devices, req.networks), policy, opts, networks, () => undefined);
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
 * the same observation, claims, plan, pin, journal and rollback as createRuntime. Returns each
 * device as the container holds it once attached (or already held it, when the same target asks
 * again with nothing new), read live before the attach lets its namespace handles go.
 */
export function attachDevices(target: AttachTarget, devices: DeviceSpec[], opts: EngineOptions): StatusDevice[] {
  const policy = policyOf(opts);
  checkPolicy(devices, policy);
  return attachPlanned(target, devices, requestedAddresses(devices, []), policy, opts, [], (sides, journal) => journal.plan.devices.map((d) => deviceStatus(sides, d)));
}

/**
 * Attaches for `target` and hands `report` the sides and the journal: a new one once it is
 * applied, or the one the same target already has. `uses`: the addresses and MACs the request
 * sets, judged against those in use once the host is observed.
 */
function attachPlanned<T>(
  target: AttachTarget, devices: DeviceSpec[], uses: AddressUse[], policy: Policy, opts: EngineOptions, networks: JournalNetwork[],
  report: (sides: Sides, journal: Journal) => T,
): T {
  const store = new StateDir(opts.stateDir);
  store.ensure();
  using hostNs = openHost(opts);
  using ctNs = Netns.open(target.netnsPath);
  requireOwnNamespace(ctNs, hostNs, target.netnsPath);
  using host = sideIn(hostNs);
  using container = sideIn(ctNs);
  using _lock = store.lockContainer(target.id);
  const existing = store.readJournal(target.id);
  if (existing) return report({ host, container }, alreadyAttached(existing, target, ctNs, [...devices.map((d) => d.key), ...networks.map((n) => n.network)]));
  // Taken by a rollback that needs a fallback name, until the journal records it.
  using heldElsewhere = new NamesHeldElsewhere(store, target.id);
  let journal: Journal | undefined;
  try {
    const recorded = planAndRecord(store, target, { devices, networks, uses, policy }, { host, container }, opts);
    journal = recorded.journal;
    const j = journal;
    // Other hooks see the claims already; the fsync need not hold them up.
    recorded.makeDurable();
    pin(ctNs, store.pinPath(target.id));
    const persist = () => store.writeJournal(j);
    const ctx = { ...contextFor(host, container, j, persist, opts), heldElsewhere: heldElsewhere.read, fallbackRecorded: heldElsewhere.recorded };
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
  } catch (err) {
    throw afterFailedAttach(store, target.id, journal, err, opts);
  }
  return report({ host, container }, journal);
}

/**
 * The journal the target's id already has: the same container asking again (a retried hook, or
 * the next of the hook pairs a CDI engine adds per device) finds its devices attached and gets
 * it, if it asks for nothing new (`keys`: its devices and networks); anything else is refused.
 */
function alreadyAttached(existing: Journal, target: AttachTarget, ctNs: Netns, keys: string[]): Journal {
  const held = new Set([...existing.plan.devices.map((d) => d.key), ...(existing.networks ?? []).map((n) => n.network)]);
  const missing = keys.filter((k) => !held.has(k));
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

/** What an attach asks for: its devices and networks, the addresses and MACs it sets, the policy in force. */
interface AttachRequest {
  devices: DeviceSpec[];
  networks: JournalNetwork[];
  uses: AddressUse[];
  policy: Policy;
}

/**
 * Under the claims lock: the other containers' claims, the observation, the plan, and the journal
 * that records it, whose claims hold from then on. With the lock free, the host devices' states
 * are read once, under it; taken, they are read before waiting.
 */
function planAndRecord(
  store: StateDir, target: AttachTarget, req: AttachRequest, sides: { host: Side; container: Side }, opts: EngineOptions,
): { journal: Journal; makeDurable: () => void } {
  const { host, container } = sides;
  const free = store.tryLockClaims();
  const mark = free ? null : store.releaseMark();
  const early = free ? undefined : readAhead(req.devices, host);
  using _claims = free ?? store.lockClaims();
  // Another container's unreadable journal blocks nobody: a device it may hold is off the host anyway.
  const scan = store.scanClaims();
  // Read after the scan: a container that let a device go since the read-ahead, maybe while it
  // was still restoring it, changed the mark before its claims went. Only the device states read
  // ahead are kept: the host's links are listed again, as the hook this one waited for may have
  // taken devices or made links meanwhile, which no mark records.
  const ahead = mark !== null && store.releaseMark() === mark ? early : undefined;
  const others = scan.claims.filter((c) => c.containerId !== target.id);
  const bad = scan.bad.filter((b) => b.containerId !== target.id);
  const plan = observeAndPlan(req.devices, req.networks, req.uses, req.policy, host, container, container.ns, others, bad, ahead);
  const journal: Journal = {
    containerId: target.id,
    ...(target.bundle !== undefined ? { bundle: target.bundle } : {}),
    ...(target.origin ? { origin: target.origin } : {}),
    phase: 'attaching',
    createdAt: new Date().toISOString(),
    containerPid: target.pid,
    containerStartTime: target.pid ? processStartTime(target.pid) : undefined,
    netnsPath: target.netnsPath,
    netnsDev: container.ns.dev,
    netnsIno: container.ns.ino,
    plan,
    started: 0,
    hostNetns: hostRecord(host.ns, opts),
    ...(req.networks.length ? { networks: req.networks } : {}),
  };
  const makeDurable = store.createJournal(journal);
  store.recordHost(journal.hostNetns!);
  return { journal, makeDurable };
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
 * After a failed attach, nothing is left behind unless a rollback step failed: then the journal
 * stays for gc. A device found gone (deleted on the host while it was planned) leaves nothing to
 * undo. A device the rollback brought home under a fallback name, or without an altname, keeps
 * the journal open too. Returns the error to throw.
 */
function afterFailedAttach(store: StateDir, id: string, journal: Journal | undefined, err: unknown, opts: EngineOptions): unknown {
  const pending = err instanceof ApplyError ? err.undoErrors.filter((e) => !(e instanceof DeviceLostError)) : [];
  if (!pending.length) {
    unpin(store.pinPath(id));
    const waiting = journal ? waitingNames(journal) : [];
    if (journal && waiting.length) {
      journal.namesPending = true;
      store.writeJournal(journal, false);
      opts.warn(`container ${id}: its record stays open: ${waiting.join('; ')} (oci-netdev gc puts them back once they are free)`);
    } else {
      store.remove(id);
    }
  }
  if (!(err instanceof ApplyError) || pending.length === err.undoErrors.length) return err;
  for (const e of err.undoErrors) if (e instanceof DeviceLostError && e.device !== err.device) opts.warn(`container ${id}: ${e.message}`);
  return new ApplyError(err.failure, pending);
}
