// Detach: poststop and the CNI plugin's DEL put back what a journal records; gc does it for
// containers whose poststop never came, and forget drops a record an operator gave up on.

import * as fs from 'fs';
import { DeviceLostError, HostNamespaceError, NetdevError, RestoreError, StateError } from '../errors';
import type { OciState } from '../config';
import { isPinned, unpin } from '../netns/netns';
import type { Netns } from '../netns/netns';
import { rollback } from '../apply/executor';
import { locate, tiedElsewhere } from '../apply/identity';
import { matchV1Records } from '../apply/legacy';
import { execDelegate } from '../libcni/invoke';
import { StateDir } from '../state/statedir';
import type { Journal, Lock } from '../state/statedir';
import { delNetworks, DEFAULT_CNI_SETTINGS, gcCache, networksHeld } from './networks';
import type { EngineOptions } from './options';
import { containerAlive, contextFor, hostNsMismatch, openContainerNs, openHost, requireHostNamespace, sideIn } from './sides';
import { NamesHeldElsewhere, waitingNames } from './claims';

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
  const persist = () => store.writeJournal(j);
  const { errors, keepPin } = undoAttachment(store, j, hostNs, persist, opts);
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
 * The devices rolled back, then the networks' DEL: the errors, and whether the pin must stay.
 * Refuses (HostNamespaceError) a journal of an older release whose devices show another host.
 */
function undoAttachment(store: StateDir, j: Journal, hostNs: Netns, persist: () => void, opts: EngineOptions): { errors: Error[]; keepPin: boolean } {
  using ctNs = openContainerNs(store, j);
  using host = sideIn(hostNs);
  using container = ctNs ? sideIn(ctNs) : null;
  using heldElsewhere = new NamesHeldElsewhere(store, j.containerId);
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
  const ctx = { ...contextFor(host, container, j, persist, opts), heldElsewhere: heldElsewhere.read, fallbackRecorded: heldElsewhere.recorded };
  // The devices first, then the networks' DEL, in the namespace their ADD used while it exists:
  // a plugin's DEL deletes whatever has CNI_IFNAME in there, and the container may have given
  // that name to one of our devices.
  const pinPath = store.pinPath(j.containerId);
  const cniNetns = container ? (isPinned(pinPath) ? pinPath : j.netnsPath) : '';
  const errors = [...rollback(ctx, j), ...hostNs.within(() => delNetworks(j, cniNetns, persist, ctx.info, opts.cni?.timeoutMs))];
  // The pin stays while anything of ours may still be in the namespace: a network not deleted,
  // a device there, or one neither home nor proven gone (it may be hidden, or unidentifiable
  // from here). Without the pin the namespace could die and destroy it.
  const keepPin = container !== null && (networksHeld(j) || j.plan.devices.some((d) => d.lost === undefined
    && (d.kind === 'host' ? locate(ctx, d)?.where !== 'host' : d.kind === 'macvlan' && locate(ctx, d) !== null)));
  return { errors, keepPin };
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
  const wrongHost = hostNsMismatch(store.recordedHost(), hostNs);
  results.push(...hostNs.within(() => gcCache(opts.stateDir, opts.cni ?? DEFAULT_CNI_SETTINGS, wrongHost)));
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
    let j: Journal | null = null;
    try {
      j = store.readJournal(id);
      held = j ? [...j.plan.devices.map((d) => `device ${d.key}`), ...(j.networks ?? []).map((n) => `network ${n.network}`)].join(', ') || 'nothing' : 'no journal';
    } catch (err) {
      held = `a journal that cannot be read: ${(err as Error).message}`;
    }
    // Its poststop (or DEL) restores a container that lives: dropping the record would strand its devices.
    if (j?.phase === 'attached' && containerAlive(j)) {
      const alive = j.origin ? `its namespace ${j.netnsPath} is still there` : `its process ${j.containerPid} is running`;
      throw new StateError(`container ${id}: not forgotten: ${alive}; stop it (its poststop restores the devices), then run oci-netdev gc`);
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
