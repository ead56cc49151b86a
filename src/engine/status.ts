// Status: what each container's journal holds, read live from its namespace and the host; and one
// attachment with its addresses, for the CNI plugin's CHECK.

import * as fs from 'fs';
import { unprovenIdentity } from '../plan/plan';
import { isPinned } from '../netns/netns';
import type { Netns } from '../netns/netns';
import { macvlanChanges } from '../apply/operations';
import { impostorAt, locate } from '../apply/identity';
import type { Sides } from '../apply/identity';
import { matchV1Records } from '../apply/legacy';
import { addressesOf } from '../apply/observe';
import { StateDir } from '../state/statedir';
import type { Journal, JournalOrigin } from '../state/statedir';
import type { DeviceRecord } from '../state/journal-records';
import type { IndexedAddress } from '../plan/observed';
import { networkStatus } from './networks';
import type { StatusNetwork } from './networks';
import type { EngineOptions } from './options';
import { containerAlive, openContainerNs, openHost, sideIn } from './sides';
import { waitingNames } from './claims';

export interface StatusDevice {
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
  using ctNs = openContainerNs(store, j);
  using host = sideIn(hostNs);
  using container = ctNs ? sideIn(ctNs) : null;
  const sides = { host, container };
  // Matched in memory only: status changes nothing.
  matchV1Records(sides, j.plan);
  const global = withAddresses ? addressesOf(container).filter((a) => a.scope === 0) : undefined;
  return {
    containerId: j.containerId,
    bundle: j.bundle ?? null,
    phase: j.phase,
    pid: j.containerPid ?? null,
    alive: containerAlive(j),
    ageSeconds: Math.max(0, Math.round((Date.now() - Date.parse(j.createdAt)) / 1000)),
    pinned,
    ...(j.origin ? { origin: j.origin } : {}),
    devices: j.plan.devices.map((d) => deviceStatus(sides, d, global)),
    networks: (j.networks ?? []).map(networkStatus),
    ...(j.namesPending ? { waiting: waitingNames(j) } : {}),
  };
}

/**
 * Where device `d` is, found by its recorded identity, and what it looks like there; with `global`
 * (the container's global addresses), also the addresses it has in the container.
 */
export function deviceStatus(sides: Sides, d: DeviceRecord, global?: IndexedAddress[]): StatusDevice {
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
    ...(global ? {
      addresses: at?.where === 'container' ? global.filter((a) => a.index === at.link.index).map((a) => `${a.local ?? a.address}/${a.prefixlen}`) : [],
    } : {}),
  };
}

/** The journal kept under `id`, read from the state dir only (nothing of the kernel); null when there is none. */
export function attachmentOf(id: string, opts: Pick<EngineOptions, 'stateDir'>): Journal | null {
  const store = new StateDir(opts.stateDir);
  if (!fs.existsSync(store.containerDir(id))) return null;
  return store.readJournal(id);
}

/** The attachment kept under `id`, read live, with each device's global addresses in the container (CNI CHECK); null when there is none. */
export function inspectAttachment(id: string, opts: EngineOptions): { journal: Journal; status: StatusEntry } | null {
  const j = attachmentOf(id, opts);
  if (!j) return null;
  using hostNs = openHost(opts);
  return { journal: j, status: statusOf(new StateDir(opts.stateDir), j, hostNs, true) };
}
