// What each step does to the kernel. Undo operations converge: they find the
// device by its marker wherever it is now and put back the recorded original,
// so running them again, or after a crash at any point, is safe.

import type { Netns } from '../netns/netns';
import type { NetlinkSocket } from '../netlink/client';
import { addAddress, AddressInfo, INFINITY_LIFETIME, listAddresses } from '../netlink/address';
import { createMacvlan, createVeth, deleteLinkGroup, getLink, listLinks, LinkChanges, LinkInfo, setLink } from '../netlink/link';
import { NetlinkError, PlanError } from '../errors';
import { isRestorable, isTemplate, translateLabel } from '../plan/plan';
import type { DeviceRecord, Operation, Plan } from '../plan/types';

export interface Side {
  ns: Netns;
  sock: NetlinkSocket;
}

export interface ApplyContext {
  host: Side;
  /** Null when the container's namespace is gone (poststop/gc without a pin). */
  container: Side | null;
  plan: Plan;
  /** Persists progress (resolved names) in the journal. */
  save(): void;
  /** A loud report that does not stop the run (fallback names, lost devices). */
  warn(message: string): void;
  /** A change made to the kernel, for the logs only. */
  info(message: string): void;
  /** Set once the created-device group is gone, so it is deleted in one request. */
  groupDeleted?: boolean;
  /** When the originals were observed (ms since the epoch): finite address lifetimes are aged by the time since. */
  observedAt?: number;
}

type Op = (ctx: ApplyContext, rec: DeviceRecord) => void;

/**
 * The link carrying `marker`. With a name, the link of that name is asked for first (one small
 * request) and taken if it carries the marker; otherwise, or if the name misses, all links are
 * listed. The name is only a guess, so correctness never rests on it; without it, a plan of N
 * devices listed all links O(N) times, O(N^2) in all.
 */
function findMarked(sock: NetlinkSocket, marker: string, name?: string): LinkInfo | undefined {
  if (name !== undefined && !isTemplate(name)) {
    const link = getLink(sock, { name });
    if (link?.alias === marker) return link;
  }
  return listLinks(sock).find((l) => l.alias === marker);
}

function container(ctx: ApplyContext, rec: DeviceRecord): Side {
  if (!ctx.container) throw new PlanError(`device ${rec.key}: the container's network namespace is gone`, { device: rec.key });
  return ctx.container;
}

/**
 * Each device's container side as this process last saw it, so that copyAddresses and configure,
 * which run right after moveIn or renameInContainer, need no lookup of their own. Dropped once
 * configure changes the link.
 */
const lastSeen = new WeakMap<DeviceRecord, LinkInfo>();

/** The device in the container, by marker (host/adopted) or by its current name (created). */
function inContainer(ctx: ApplyContext, rec: DeviceRecord, name = rec.containerName): LinkInfo {
  const seen = lastSeen.get(rec);
  if (seen && seen.name === name) return seen;
  const { sock } = container(ctx, rec);
  const link = rec.kind === 'host' ? findMarked(sock, rec.marker, name ?? rec.targetName) : name ? getLink(sock, { name }) : null;
  if (!link) throw new PlanError(`device ${rec.key}: not found in the container`, { device: rec.key });
  return link;
}

const ctxOf = (rec: DeviceRecord, op: string) => ({ op, device: rec.key });

const mark: Op = (ctx, rec) => {
  const orig = rec.original!;
  if (rec.adopted) {
    const { sock } = container(ctx, rec);
    const link = getLink(sock, { name: rec.containerName! });
    if (!link) throw new PlanError(`device ${rec.key}: not found in the container`, { device: rec.key });
    setLink(sock, link.index, { alias: rec.marker }, ctxOf(rec, 'mark'));
    return;
  }
  const link = getLink(ctx.host.sock, { index: orig.index });
  if (!link || link.name !== orig.name) {
    throw new PlanError(`device ${rec.key}: changed on the host while being planned`, { device: rec.key, op: 'mark' });
  }
  setLink(ctx.host.sock, orig.index, { alias: rec.marker }, ctxOf(rec, 'mark'));
};

const unmark: Op = (ctx, rec) => {
  // After moveOut the device is on the host under its own name: look there by name first.
  const host = getLink(ctx.host.sock, { name: rec.original!.name });
  if (host?.alias === rec.marker) return setLink(ctx.host.sock, host.index, { alias: rec.original!.alias }, ctxOf(rec, 'restore alias'));
  for (const side of [ctx.container, ctx.host]) {
    if (!side) continue;
    const link = findMarked(side.sock, rec.marker, side === ctx.container ? rec.containerName : undefined);
    if (link) return setLink(side.sock, link.index, { alias: rec.original!.alias }, ctxOf(rec, 'restore alias'));
  }
};

const moveIn: Op = (ctx, rec) => {
  if (rec.adopted) return;
  const ct = container(ctx, rec);
  // Taken down in a request of its own first: the kernel then moves it in ~17 ms instead of
  // ~22-26 ms for a device it has to close inside the move (BENCHMARKS.md). It arrives down anyway.
  if (rec.original!.up) setLink(ctx.host.sock, rec.original!.index, { up: false }, ctxOf(rec, 'move into container: take down'));
  setLink(ctx.host.sock, rec.original!.index, { netnsFd: ct.ns.fd, name: rec.targetName }, ctxOf(rec, 'move into container'));
  const link = inContainer(ctx, rec);
  lastSeen.set(rec, link);
  rec.containerName = link.name;
  ctx.save();
};

/** An address with finite lifetimes aged by `elapsed` seconds; null once it has expired. Infinite stays infinite. */
function aged(a: AddressInfo, elapsed: number): AddressInfo | null {
  const left = (l: number) => (l === INFINITY_LIFETIME ? l : Math.max(0, l - elapsed));
  const valid = left(a.validLifetime);
  if (valid === 0) return null;
  return { ...a, validLifetime: valid, preferredLifetime: Math.min(left(a.preferredLifetime), valid) };
}

/** A free name on the host for the device coming back: its own, else a loud fallback. */
function hostNameFor(ctx: ApplyContext, rec: DeviceRecord, current: LinkInfo | undefined): string {
  const wanted = rec.original!.name;
  const holder = getLink(ctx.host.sock, { name: wanted });
  if (!holder || holder.index === current?.index) return wanted;
  const taken = new Set(listLinks(ctx.host.sock).map((l) => l.name));
  for (let n = 0; ; n++) {
    const suffix = `-r${n}`;
    const name = `${wanted.slice(0, 15 - suffix.length)}${suffix}`;
    // Already under this fallback: it was reported when it was given (moveOut asks twice).
    if (name === current?.name) return name;
    if (!taken.has(name)) {
      ctx.warn(`device ${rec.key}: name ${wanted} is taken on the host by another device; restored as ${name}`);
      return name;
    }
  }
}

/**
 * Applies name, MTU and MAC changes to a link that must be down for them: the kernel handles
 * IFLA_ADDRESS, IFLA_MTU and IFLA_IFNAME before the flags of the same request, so a NIC without
 * live address change (or any device being renamed) would refuse them while still up (EBUSY).
 * The link is taken down in a request of its own first. Nothing is sent when nothing changes.
 */
function setWhileDown(sock: NetlinkSocket, link: LinkInfo, changes: LinkChanges, rec: DeviceRecord, op: string): void {
  if (!Object.keys(changes).length) return;
  if (link.up) setLink(sock, link.index, { up: false }, ctxOf(rec, `${op}: take down`));
  setLink(sock, link.index, changes, ctxOf(rec, op));
}

const moveOut: Op = (ctx, rec) => {
  const orig = rec.original!;
  const ct = ctx.container;
  const inside = ct ? findMarked(ct.sock, rec.marker, rec.containerName) : undefined;
  let movedAs: string | undefined;
  if (ct && inside) {
    // Down first, in a request of its own, as in moveIn; then MTU and MAC back while the device is
    // still in the container; then out.
    if (inside.up) setLink(ct.sock, inside.index, { up: false }, ctxOf(rec, 'restore in container: take down'));
    setWhileDown(ct.sock, { ...inside, up: false }, {
      ...(inside.mtu !== orig.mtu ? { mtu: orig.mtu } : {}),
      ...(orig.mac && inside.mac !== orig.mac ? { mac: orig.mac } : {}),
    }, rec, 'restore in container');
    movedAs = hostNameFor(ctx, rec, undefined);
    setLink(ct.sock, inside.index, { netnsFd: ctx.host.ns.fd, name: movedAs }, ctxOf(rec, 'move to host'));
  }
  const home = findMarked(ctx.host.sock, rec.marker, movedAs ?? orig.name);
  if (!home) {
    throw new PlanError(`device ${rec.key}: lost; not in the container nor on the host (original name ${orig.name})`, { device: rec.key, op: 'restore' });
  }
  const name = home.name === orig.name ? orig.name : hostNameFor(ctx, rec, home);
  // Returned by the kernel, or never moved: converge name, MTU and MAC on the host.
  const fix = {
    ...(home.name !== name ? { name } : {}),
    ...(home.mtu !== orig.mtu ? { mtu: orig.mtu } : {}),
    ...(orig.mac && home.mac !== orig.mac ? { mac: orig.mac } : {}),
  };
  setWhileDown(ctx.host.sock, home, fix, rec, 'restore on host');
  // A device that just changed namespace has no addresses left: the kernel flushes them.
  const present = new Set(movedAs !== undefined ? [] : listAddresses(ctx.host.sock, home.index).map((a) => `${a.address}/${a.prefixlen}`));
  const labelFrom = rec.adopted ? rec.containerName! : orig.name;
  const elapsed = ctx.observedAt === undefined ? 0 : Math.max(0, Math.floor((Date.now() - ctx.observedAt) / 1000));
  for (const a of orig.addresses.filter(isRestorable)) {
    if (present.has(`${a.address}/${a.prefixlen}`)) continue;
    const left = aged(a, elapsed);
    if (!left) continue; // its lease ran out while the container held the device
    addAddress(ctx.host.sock, home.index, { ...left, label: translateLabel(a.label, labelFrom, name) }, ctxOf(rec, 'restore address'));
  }
  if (home.up !== orig.up || Object.keys(fix).length) setLink(ctx.host.sock, home.index, { up: orig.up }, ctxOf(rec, 'restore state'));
};

const copyAddresses: Op = (ctx, rec) => {
  const { sock } = container(ctx, rec);
  const link = inContainer(ctx, rec);
  const from = rec.original?.name ?? rec.key;
  for (const a of rec.containerAddresses) {
    try {
      addAddress(sock, link.index, { ...a, label: translateLabel(a.label, from, link.name) }, ctxOf(rec, 'add address'));
    } catch (err) {
      // Already there (a retried step) is what we wanted.
      if (!(err instanceof NetlinkError && err.code === 'EEXIST')) throw err;
    }
  }
};

const configure: Op = (ctx, rec) => {
  const { sock } = container(ctx, rec);
  const link = inContainer(ctx, rec);
  const moved = rec.kind === 'host';
  // Created devices got their MTU and MAC at creation; moved ones get them here.
  const changes: LinkChanges = {
    ...(moved && rec.mtu !== undefined && rec.mtu !== link.mtu ? { mtu: rec.mtu } : {}),
    ...(moved && rec.mac !== undefined && rec.mac !== link.mac ? { mac: rec.mac } : {}),
  };
  // A moved device arrives down, so one request does it all; an adopted one may be up already.
  lastSeen.delete(rec);
  if (link.up && Object.keys(changes).length) setWhileDown(sock, link, changes, rec, 'configure');
  setLink(sock, link.index, { ...(link.up ? {} : changes), up: true }, ctxOf(rec, 'configure'));
};

const createVethOp: Op = (ctx, rec) => {
  const ct = container(ctx, rec);
  createVeth(ctx.host.sock, rec.key, {
    name: rec.tempName!, netnsFd: ct.ns.fd, group: ctx.plan.group, mtu: rec.mtu, mac: rec.mac,
  }, ctxOf(rec, 'create veth'));
};

const createMacvlanOp: Op = (ctx, rec) => {
  const ct = container(ctx, rec);
  const master = getLink(ctx.host.sock, { name: rec.master! });
  if (!master) throw new PlanError(`device ${rec.key}: macvlan master ${rec.master} does not exist`, { device: rec.key });
  const mode = rec.mode ?? 'bridge';
  try {
    createMacvlan(ctx.host.sock, master.index, mode, {
      name: rec.tempName!, netnsFd: ct.ns.fd, group: ctx.plan.group, mtu: rec.mtu, mac: rec.mac,
    }, ctxOf(rec, 'create macvlan'));
  } catch (err) {
    // The kernel says EINVAL without an extended ack when passthru and other modes meet on one master.
    if (!(err instanceof NetlinkError && err.code === 'EINVAL' && !err.extack)) throw err;
    const hint = mode === 'passthru'
      ? `mode passthru needs a master that carries no other macvlan, and ${rec.master} may carry one (here or in another namespace)`
      : `master ${rec.master} may carry a passthru macvlan, which allows no other`;
    throw new NetlinkError(err.errno, err.code, 'Invalid argument', { ...ctxOf(rec, 'create macvlan'), extack: hint });
  }
};

const renameInContainer: Op = (ctx, rec) => {
  const { sock } = container(ctx, rec);
  const link = inContainer(ctx, rec, rec.tempName);
  setLink(sock, link.index, { name: rec.targetName }, ctxOf(rec, 'rename'));
  rec.containerName = isTemplate(rec.targetName) ? getLink(sock, { index: link.index })!.name : rec.targetName;
  lastSeen.set(rec, { ...link, name: rec.containerName });
  ctx.save();
};

/** Every created device of this container goes in one RTM_DELLINK by group. */
const deleteCreated: Op = (ctx) => {
  if (ctx.groupDeleted) return;
  // Deleting a veth's container end takes its host end along.
  deleteLinkGroup((ctx.container ?? ctx.host).sock, ctx.plan.group, { op: 'delete created devices', device: `group ${ctx.plan.group}` });
  ctx.groupDeleted = true;
};

export const OPERATIONS: Record<Operation, Op> = {
  mark, unmark, moveIn, moveOut, copyAddresses, configure,
  createVeth: createVethOp, createMacvlan: createMacvlanOp, renameInContainer, deleteCreated,
};
