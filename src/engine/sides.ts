// The host's and the container's sides of an attachment: their namespaces, opened and checked
// against what a journal recorded, with a netlink socket in each; and whether a container lives.

import * as fs from 'fs';
import { ConfigError, HostNamespaceError } from '../errors';
import { Netns, bootId, isPinned, pathInto } from '../netns/netns';
import type { ApplyContext, Side } from '../apply/operations';
import type { HostNamespace, Journal, StateDir } from '../state/statedir';
import type { EngineOptions } from './options';

/** The host's namespace for one call (EngineOptions.hostNetns). */
export function openHost(opts: Pick<EngineOptions, 'hostNetns'>): Netns {
  return opts.hostNetns === undefined ? Netns.current() : Netns.open(opts.hostNetns);
}

/** A side of an attachment that `using` closes: its socket, not its namespace (the caller's, itself disposable). */
export type OpenSide = Side & Disposable;

/** A netlink socket in `ns`, as a side that closes the socket when disposed. */
export function sideIn(ns: Netns): OpenSide {
  const sock = ns.socket();
  return { ns, sock, [Symbol.dispose]: () => sock.close() };
}

export function requireOwnNamespace(ctNs: Netns, hostNs: Netns, nsPath: string): void {
  if (ctNs.sameAs(hostNs)) {
    throw new ConfigError(`network namespace ${nsPath} is the host's own; the container needs a namespace of its own`, { field: 'linux.namespaces' });
  }
}

/**
 * Refuses a namespace path that cannot be opened, is not a network namespace, or is the host's
 * own: for a front door that names the path's source in its own error (CNI_NETNS).
 */
export function checkContainerNetns(nsPath: string, opts: Pick<EngineOptions, 'hostNetns'>): void {
  using hostNs = openHost(opts);
  using ctNs = Netns.open(nsPath);
  requireOwnNamespace(ctNs, hostNs, nsPath);
}

export function contextFor(host: Side, container: Side | null, journal: Journal, persist: () => void, opts: EngineOptions): ApplyContext {
  const info = (message: string) => opts.info(message, journal.containerId);
  return { host, container, plan: journal.plan, persist, warn: opts.warn, info, observedAt: Date.parse(journal.createdAt), seen: new Map(), movedHere: new Set() };
}

/**
 * The container's namespace if it still exists: the pin, else the original path. Either must be
 * the very namespace the journal recorded (device and inode), or it is not ours to touch.
 */
export function openContainerNs(store: StateDir, j: Journal): Netns | null {
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
export function hostRecord(hostNs: Netns, opts: EngineOptions): HostNamespace {
  const cookie = hostNs.cookie();
  return {
    dev: hostNs.dev, ino: hostNs.ino, bootId: bootId(), ...(cookie !== undefined ? { cookie } : {}),
    ...(opts.hostNetns !== undefined ? { path: opts.hostNetns } : {}),
  };
}

/**
 * Refuses to restore `j` anywhere but in the host's namespace it recorded, changing nothing. A
 * journal of a release that recorded none is restored where the restore runs, as that release did.
 */
export function requireHostNamespace(j: Journal, hostNs: Netns): void {
  const want = j.hostNetns;
  if (!want) return;
  const id = j.containerId;
  if (want.bootId !== bootId()) {
    throw new HostNamespaceError(`container ${id}: its journal was written before the machine restarted (boot ${want.bootId}): the namespaces it names are gone and the restart reset its devices; nothing changed: check them, then drop the record with oci-netdev gc --forget ${id}`);
  }
  if (want.dev === hostNs.dev && want.ino === hostNs.ino) {
    // The inode number of a namespace that died may name a new one; its cookie never does.
    const cookie = want.cookie === undefined ? undefined : hostNs.cookie();
    if (cookie === undefined || cookie === want.cookie) return;
    throw new HostNamespaceError(`container ${id}: its devices belong to the host's network namespace net:[${want.ino}] of cookie ${want.cookie}, which is gone: this one has its inode number but cookie ${cookie}; nothing changed: check the devices, then drop the record with oci-netdev gc --forget ${id}`);
  }
  const path = pathInto(want.dev, want.ino, want.path !== undefined ? [want.path] : []);
  const how = path !== undefined ? `e.g. nsenter --net=${path} oci-netdev gc`
    : `no process or /run/netns entry is in it now; if it is gone, drop the record with oci-netdev gc --forget ${id}`;
  throw new HostNamespaceError(`container ${id}: its devices belong to the host's network namespace net:[${want.ino}], not to this one (net:[${hostNs.ino}]); nothing changed: run oci-netdev gc in the host's network namespace (${how})`);
}

/**
 * Why `hostNs` is not the host's namespace the state dir recorded (for libcni's cache, whose
 * attachments no journal holds), or undefined when it is, or when nothing recorded it in this boot.
 */
export function hostNsMismatch(want: HostNamespace | undefined, hostNs: Netns): string | undefined {
  if (!want || want.bootId !== bootId()) return undefined;
  if (want.dev === hostNs.dev && want.ino === hostNs.ino && (want.cookie === undefined || want.cookie === hostNs.cookie())) return undefined;
  const path = pathInto(want.dev, want.ino, want.path !== undefined ? [want.path] : []);
  return `its attachments belong to the host's network namespace net:[${want.ino}], not to this one (net:[${hostNs.ino}]); nothing deleted: run oci-netdev gc in the host's network namespace${path !== undefined ? ` (e.g. nsenter --net=${path} oci-netdev gc)` : ''}`;
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

/**
 * The journal's container is alive: for the OCI hooks, its init still runs (same pid and start
 * time, and not a zombie); for a CNI attachment, which has no process, the netns path given at ADD
 * still refers to the namespace the journal pinned (the runtime deletes that path with the sandbox).
 */
export function containerAlive(j: Journal): boolean {
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
