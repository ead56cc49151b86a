// The lifecycle: attach at createRuntime, restore at poststop, and gc for
// containers whose poststop never came. Front-door independent: the OCI CLI
// calls these, and so could a CNI plugin.

import * as fs from 'fs';
import { ConfigError, NetdevError, PlanError, StateError } from '../errors';
import { DEFAULT_POLICY_FILE, checkPolicy, loadContainerRequest, loadPolicy } from '../config';
import type { OciState } from '../config';
import { Netns, isPinned, pin, unpin } from '../netns/netns';
import { listLinks, LinkInfo } from '../netlink/link';
import { listAddresses } from '../netlink/address';
import { listDefaultRoutes } from '../netlink/route';
import { planAttach } from '../plan/plan';
import { applyPlan, ApplyError, rollback } from '../apply/executor';
import type { ApplyContext, Side } from '../apply/operations';
import { BadJournal, Journal, StateDir } from '../state/statedir';

export interface EngineOptions {
  stateDir: string;
  /**
   * The policy file asked for (--policy, OCI_NETDEV_POLICY); it must exist. Unset: the default
   * file, whose absence means the default policy (config.json may use any device, the annotation none).
   */
  policyFile?: string;
  /** Loud, non-fatal reports (fallback names, lost devices). */
  warn: (message: string) => void;
}

/** Start time of a process (field 22 of /proc/pid/stat), to tell a reused pid apart; undefined if gone. */
export function processStartTime(pid: number): string | undefined {
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

/** The journal's container init still runs: same pid and start time, and not a zombie. */
export function containerAlive(j: Journal): boolean {
  if (j.containerPid === undefined || j.containerStartTime === undefined) return false;
  const fields = procStat(j.containerPid);
  return fields !== undefined && fields[0] !== 'Z' && fields[19] === j.containerStartTime;
}

function sideOf(ns: Netns): Side {
  return { ns, sock: ns.socket() };
}

function closeSide(side: Side | null): void {
  side?.sock.close();
  side?.ns.close();
}

/** A group number no other journal and no visible link uses. */
function allocateGroup(others: Journal[], links: LinkInfo[]): number {
  const used = new Set([...others.map((j) => j.plan.group), ...links.map((l) => l.group)]);
  for (;;) {
    const g = 0x10000 + Math.floor(Math.random() * 0x7ffe0000);
    if (!used.has(g)) return g;
  }
}

/** createRuntime: validate, observe, plan, pin, journal and apply; any failure leaves the host as it was. */
export function attach(state: OciState, opts: EngineOptions): void {
  const req = loadContainerRequest(state);
  if (req.devices.length === 0) return;
  // Names only: refused before anything is observed or touched.
  checkPolicy(req.devices, loadPolicy(opts.policyFile ?? DEFAULT_POLICY_FILE, opts.policyFile !== undefined));
  if (!req.hasNetworkNamespace) {
    throw new ConfigError('config.json has no network namespace (linux.namespaces type "network"); devices cannot be moved', { field: 'linux.namespaces' });
  }
  const nsPath = req.netnsPath ?? (state.pid ? `/proc/${state.pid}/ns/net` : undefined);
  if (!nsPath) throw new ConfigError('the state has no pid and config.json gives no network namespace path', { field: 'pid' });

  const store = new StateDir(opts.stateDir);
  store.ensure();
  const hostNs = Netns.current();
  const ctNs = Netns.open(nsPath);
  if (ctNs.sameAs(hostNs)) {
    hostNs.close();
    ctNs.close();
    throw new ConfigError(`network namespace ${nsPath} is the host's own; the container needs a namespace of its own`, { field: 'linux.namespaces' });
  }
  const host = sideOf(hostNs);
  const container = sideOf(ctNs);
  const lock = store.lockContainer(state.id);
  let journal: Journal | undefined;
  let ownsState = false;
  try {
    if (store.readJournal(state.id)) {
      throw new StateError(`container ${state.id} already has devices attached; run poststop first`);
    }
    ownsState = true;
    const claims = store.lockClaims();
    try {
      // Another container's unreadable journal blocks nobody: a device it may hold is off the host anyway.
      const scan = store.scanJournals();
      const others = scan.journals.filter((j) => j.containerId !== state.id);
      const held = new Map<string, string>();
      for (const j of others) for (const d of j.plan.devices) if (d.kind !== 'macvlan') held.set(d.key, j.containerId);
      const hostLinks = listLinks(host.sock);
      const containerLinks = listLinks(container.sock);
      let plan;
      try {
        plan = planAttach(req.devices, {
          hostLinks,
          hostAddresses: listAddresses(host.sock),
          containerLinks,
          containerAddresses: listAddresses(container.sock),
          hostDefaultRoutes: listDefaultRoutes(host.sock),
        }, { group: allocateGroup(others, [...hostLinks, ...containerLinks]), claims: held });
      } catch (err) {
        throw mayBeHeld(err, req.devices, hostLinks, scan.bad.filter((b) => b.containerId !== state.id));
      }
      journal = {
        containerId: state.id,
        phase: 'attaching',
        createdAt: new Date().toISOString(),
        containerPid: state.pid || undefined,
        containerStartTime: state.pid ? processStartTime(state.pid) : undefined,
        netnsPath: nsPath,
        netnsDev: ctNs.dev,
        netnsIno: ctNs.ino,
        plan,
        started: 0,
      };
      store.createJournal(journal);
    } finally {
      claims.release();
    }
    pin(ctNs, store.pinPath(state.id));
    const j = journal;
    const persist = () => store.writeJournal(j);
    applyPlan(contextFor(host, container, j, persist, opts), j, persist);
    j.phase = 'attached';
    persist();
  } catch (err) {
    // Nothing is left behind unless a rollback step failed: then the journal stays for gc.
    if (ownsState && !(err instanceof ApplyError && err.undoErrors.length)) {
      unpin(store.pinPath(state.id));
      store.remove(state.id);
    }
    throw err;
  } finally {
    lock.release();
    closeSide(host);
    closeSide(container);
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

function contextFor(host: Side, container: Side | null, journal: Journal, save: () => void, opts: EngineOptions): ApplyContext {
  return { host, container, plan: journal.plan, save, warn: opts.warn, observedAt: Date.parse(journal.createdAt) };
}

/** The container's namespace if it still exists: the pin, else the original path if it is the same namespace. */
function openContainerNs(store: StateDir, j: Journal): Netns | null {
  const pinPath = store.pinPath(j.containerId);
  if (isPinned(pinPath)) return Netns.open(pinPath);
  try {
    const ns = Netns.open(j.netnsPath);
    if (ns.dev === j.netnsDev && ns.ino === j.netnsIno) return ns;
    ns.close();
  } catch {
    // gone: devices are back on the host or destroyed
  }
  return null;
}

/** Undoes everything a journal records, then drops the state. Lock must be held. */
function restore(store: StateDir, j: Journal, opts: EngineOptions): void {
  const ctNs = openContainerNs(store, j);
  const host = sideOf(Netns.current());
  const container = ctNs ? sideOf(ctNs) : null;
  if (!container) opts.warn(`container ${j.containerId}: its network namespace is gone; restoring from what the host holds`);
  let errors: Error[];
  try {
    j.phase = 'detaching';
    const persist = () => store.writeJournal(j);
    persist();
    errors = rollback(contextFor(host, container, j, persist, opts), j);
  } finally {
    closeSide(host);
    closeSide(container);
  }
  // A device that is nowhere cannot come back by retrying; anything else keeps the journal for another try.
  const lost = errors.filter((e) => e instanceof PlanError && e.op === 'restore');
  const retryable = errors.filter((e) => !lost.includes(e));
  if (retryable.length === 0) {
    unpin(store.pinPath(j.containerId));
    store.remove(j.containerId);
  }
  if (errors.length) {
    const kept = retryable.length ? ' (state kept; run oci-netdev gc to retry)' : '';
    throw new NetdevError(`container ${j.containerId}: ${errors.map((e) => e.message).join('; ')}${kept}`);
  }
}

/** poststop: put everything back. A second run finds no journal and does nothing. */
export function detach(state: OciState, opts: EngineOptions): void {
  const store = new StateDir(opts.stateDir);
  if (!fs.existsSync(store.containerDir(state.id))) return;
  const lock = store.lockContainer(state.id);
  try {
    const j = store.readJournal(state.id);
    if (!j) {
      store.remove(state.id);
      return;
    }
    restore(store, j, opts);
  } finally {
    lock.release();
  }
}

export interface GcResult {
  containerId: string;
  action: 'restored' | 'kept' | 'busy' | 'failed' | 'removed';
  reason: string;
}

/** Restores containers whose hook died mid-way or whose container is gone without a poststop. */
export function gc(opts: EngineOptions): GcResult[] {
  const store = new StateDir(opts.stateDir);
  const results: GcResult[] = [];
  for (const id of store.containerIds()) {
    let lock;
    try {
      lock = store.tryLockContainer(id);
    } catch (err) {
      // An unsafe folder (a link, someone else's) is reported and left alone; the others go on.
      results.push({ containerId: id, action: 'failed', reason: (err as Error).message });
      continue;
    }
    if (!lock) {
      results.push({ containerId: id, action: 'busy', reason: 'a hook is working on it' });
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
        results.push({ containerId: id, action: 'kept', reason: `container process ${j.containerPid} is running` });
        continue;
      }
      const reason = j.phase === 'attached' ? 'container is gone' : `hook died while ${j.phase}`;
      try {
        restore(store, j, opts);
        results.push({ containerId: id, action: 'restored', reason });
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
  return results;
}

export interface StatusDevice {
  key: string;
  containerName: string | null;
  kind: 'moved' | 'adopted' | 'veth' | 'macvlan';
  /** macvlan: the host parent interface (the key is only an id). */
  master?: string;
  mac: string | null;
  mtu: number | null;
}

export interface StatusEntry {
  containerId: string;
  /** 'unreadable': the journal or the namespace cannot be read; `error` says why, and no devices are listed. */
  phase: Journal['phase'] | 'unreadable';
  pinned: boolean;
  devices: StatusDevice[];
  error?: string;
}

/** What each container holds, read live from its namespace when it is pinned. */
export function status(opts: EngineOptions): StatusEntry[] {
  const store = new StateDir(opts.stateDir);
  const { journals, bad } = store.scanJournals();
  const unreadable = (containerId: string, error: string): StatusEntry => ({ containerId, phase: 'unreadable', pinned: false, devices: [], error });
  const entries = journals.map((j) => {
    try {
      return statusOf(store, j);
    } catch (err) {
      return unreadable(j.containerId, (err as Error).message);
    }
  });
  return [...entries, ...bad.map((b) => unreadable(b.containerId, b.reason))];
}

function statusOf(store: StateDir, j: Journal): StatusEntry {
  const ns = isPinned(store.pinPath(j.containerId)) ? Netns.open(store.pinPath(j.containerId)) : null;
  let links: LinkInfo[] = [];
  if (ns) {
    const sock = ns.socket();
    try { links = listLinks(sock); } finally { sock.close(); ns.close(); }
  }
  return {
    containerId: j.containerId,
    phase: j.phase,
    pinned: ns !== null,
    devices: j.plan.devices.map((d) => {
      const live = links.find((l) => l.alias === d.marker || (d.kind !== 'host' && l.name === d.containerName));
      return {
        key: d.key,
        containerName: live?.name ?? d.containerName ?? null,
        kind: d.kind === 'host' ? (d.adopted ? 'adopted' : 'moved') : d.kind,
        ...(d.master !== undefined ? { master: d.master } : {}),
        mac: live?.mac ?? null,
        mtu: live?.mtu ?? null,
      };
    }),
  };
}
