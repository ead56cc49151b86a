// What each step does to the kernel. Devices are found by the identity recorded at planning
// (src/apply/identity.ts), never by anything the container can rewrite. Undo operations converge:
// they find the device wherever it is now and put back the recorded original, so running them
// again, or after a crash at any point, is safe.
//
// Over 400 lines on purpose: the step table (OPERATIONS) keeps each operation beside its undo and
// the finders both share, so that a reader checks in one place that an undo converges on its step.

import { randomIndex } from '../model/devices';
import type { NetlinkSocket } from '../netlink/client';
import { addAddress, deleteAddress, INFINITY_LIFETIME, listAddresses, replaceAddress } from '../netlink/address';
import type { AddressInfo } from '../netlink/address';
import {
  changeAltName, createMacvlan, createVeth, deleteLink, deleteLinkGroup, deleteLinks, getLink, listLinks, LinkChanges, LinkInfo, MACVLAN_MODE_SOURCE, MACVLAN_MODES,
  setLink,
} from '../netlink/link';
import { addRoute } from '../netlink/route';
import { AF_INET6, IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_TENTATIVE } from '../netlink/constants';
import { DeviceLostError, NetlinkError, PlanError } from '../errors';
import { restoreEthtool, restoreLinkSettings, restoreRoutesNeighboursTc, restoreSysctls, restoreSysctlsAfterUp, restoreTokenAndMulticast } from './device-state';
import { addressInfo, routeEntry } from './convert-records';
import { isKernelLinkLocal, isLeftToKernel, isTemplate, restoreOrder, translateLabel, unprovenIdentity } from '../plan/plan';
import type { AddressRecord, DeviceRecord, HostRecord, MacvlanRecord, Operation, Plan } from '../state/journal-records';
import { findInContainer, findOnHost, impostorAt, isTheDevice, provablyGone, Side, Sides } from './identity';

export type { Side } from './identity';

/** Kernel names are at most 15 bytes (IFNAMSIZ - 1). */
const MAX_NAME_BYTES = 15;

export interface ApplyContext extends Sides {
  plan: Plan;
  /** Writes the journal now: for a record change that an undo depends on. */
  persist(): void;
  /** A loud report that does not stop the run (fallback names, removed altnames, lost devices). */
  warn: (message: string) => void;
  /** A change made to the kernel, for the logs only. */
  info: (message: string) => void;
  /** When the originals were observed (ms since the epoch): finite address lifetimes are aged by the time since. */
  observedAt?: number;
  /** Links this run has just seen or made in the container, by device key: saves a lookup per step. */
  seen: Map<string, LinkInfo>;
  /** Set once the host ends of this plan's veths were checked for one group delete. */
  vethGroupChecked?: boolean;
  /**
   * Set at the first macvlan delete of a run, which deletes all of the plan's proven macvlans in
   * one send: device key -> the kernel's refusal, or null once deleted; a key without an entry was
   * not found or not proven ours.
   */
  macvlansDeleted?: Map<string, NetlinkError | null>;
  /**
   * Devices this run moved into the container, by key: a rollback in the same run brings them
   * home even when nothing proves their identity, as the container has had no time to swap them.
   */
  movedHere: Set<string>;
  /**
   * Host names other containers' records hold (name -> container id), asked only when a device
   * needs a fallback name; the engine holds the claims lock from the first call until the journal
   * records the name chosen. Unset: no other records (a plan's own rollback during createRuntime
   * holds the claims it planned with).
   */
  heldElsewhere?: () => Map<string, string>;
  /** Called once the journal records a fallback name chosen against heldElsewhere: the engine lets go of the claims lock then. */
  fallbackRecorded?: () => void;
}

export type Op = (ctx: ApplyContext, rec: DeviceRecord) => void;

/** An operation for one kind of device; a step that names a device of another kind is a broken journal. */
function forKind<K extends DeviceRecord['kind']>(kind: K, op: (ctx: ApplyContext, rec: Extract<DeviceRecord, { kind: K }>) => void): Op {
  return (ctx, rec) => {
    if (rec.kind !== kind) throw new PlanError(`device ${rec.key}: a step for a ${kind} device on a ${rec.kind} device`, { device: rec.key });
    op(ctx, rec as Extract<DeviceRecord, { kind: K }>);
  };
}

const ctxOf = (rec: DeviceRecord, op: string) => ({ op, device: rec.key });

function container(ctx: ApplyContext, rec: DeviceRecord): Side {
  if (!ctx.container) throw new PlanError(`device ${rec.key}: the container's network namespace is gone`, { device: rec.key });
  return ctx.container;
}

/** The device in the container, as this run last saw it or found again by its identity. */
function inContainer(ctx: ApplyContext, rec: DeviceRecord): LinkInfo {
  const seen = ctx.seen.get(rec.key);
  if (seen) return seen;
  const link = findInContainer(ctx, rec);
  if (!link) throw new PlanError(`device ${rec.key}: no longer in the container as oci-netdev left it (ifindex ${rec.containerIndex})`, { device: rec.key });
  return link;
}

/** A random ifindex no link of the socket's namespace has. */
function freeIndex(sock: NetlinkSocket): number {
  for (;;) {
    const index = randomIndex();
    if (!getLink(sock, { index })) return index;
  }
}

/**
 * Runs `act`, which gives a device the ifindexes chosen at planning; when one was taken in the
 * meantime (EBUSY), `repick` chooses others, the journal records them, and `act` runs again.
 */
function withChosenIndex(ctx: ApplyContext, act: () => void, repick: () => void): void {
  for (let attempt = 1; ; attempt++) {
    try {
      return act();
    } catch (err) {
      if (!(err instanceof NetlinkError && err.errnoName === 'EBUSY') || attempt === 3) throw err;
      repick();
      ctx.persist();
    }
  }
}

const moveIn = forKind('host', (ctx, rec) => {
  if (rec.adopted) return;
  const ct = container(ctx, rec);
  const orig = rec.original;
  const link = getLink(ctx.host.sock, { index: orig.index });
  if (!link || link.name !== orig.name || !isTheDevice(ctx, rec, link, 'host')) {
    const what = link ? 'changed on the host' : 'gone from the host';
    throw new PlanError(`device ${rec.key}: ${what} while being planned`, { device: rec.key, op: 'move into container' });
  }
  // Taken down in a request of its own first: the kernel then moves it in ~17 ms instead of
  // ~22-26 ms for a device it has to close inside the move (BENCHMARKS.md). It arrives down anyway.
  if (link.up) setLink(ctx.host.sock, orig.index, { up: false }, ctxOf(rec, 'move into container: take down'));
  withChosenIndex(ctx,
    () => setLink(ctx.host.sock, orig.index, { netnsFd: ct.ns.fd, name: rec.targetName, newIndex: rec.containerIndex }, ctxOf(rec, 'move into container')),
    () => { rec.containerIndex = freeIndex(ct.sock); });
  ctx.movedHere.add(rec.key);
  const moved = getLink(ct.sock, { index: rec.containerIndex });
  if (!moved) throw new PlanError(`device ${rec.key}: not in the container after the move`, { device: rec.key, op: 'move into container' });
  ctx.seen.set(rec.key, moved);
  const unproven = unprovenIdentity(rec.identity);
  if (unproven) ctx.warn(`device ${rec.key}: ${unproven}; at restore it is left in the container's network namespace, never put on the host as ${orig.name}`);
  rec.containerName = moved.name;
});

/** An address with finite lifetimes aged by `elapsed` seconds; null once it has expired. Infinite stays infinite. */
function aged(a: AddressRecord, elapsed: number): AddressRecord | null {
  const left = (l: number) => (l === INFINITY_LIFETIME ? l : Math.max(0, l - elapsed));
  const valid = left(a.validLifetime);
  if (valid === 0) return null;
  return { ...a, validLifetime: valid, preferredLifetime: Math.min(left(a.preferredLifetime), valid) };
}

/** `name` cut to fit `suffix` within the kernel's 15 bytes, at a character boundary. */
function withSuffix(name: string, suffix: string): string {
  const chars = Array.from(name);
  while (Buffer.byteLength(chars.join('') + suffix) > MAX_NAME_BYTES) chars.pop();
  return chars.join('') + suffix;
}

/** Every name and alternative name in use on the host. */
function hostNames(ctx: ApplyContext): Set<string> {
  return new Set(listLinks(ctx.host.sock).flatMap((l) => [l.name, ...l.altNames]));
}

/**
 * A free name on the host for the device coming back: its own, else the fallback it already has,
 * else a new fallback (`NAME-rN`) that no device on the host and no other container's record holds.
 * A fallback is recorded (rec.fallbackName, written to the journal before the device takes it), so
 * the record stays open and the name stays held until gc gives the device its own name back.
 */
function hostNameFor(ctx: ApplyContext, rec: HostRecord, current: LinkInfo | undefined): string {
  const wanted = rec.original.name;
  const holder = getLink(ctx.host.sock, { name: wanted });
  if (!holder || holder.index === current?.index) {
    if (rec.fallbackName !== undefined) delete rec.fallbackName;
    return wanted;
  }
  if (current !== undefined && current.name === rec.fallbackName) {
    ctx.warn(`device ${rec.key}: name ${wanted} is still taken on the host; the device stays home as ${current.name}`);
    return current.name;
  }
  const taken = hostNames(ctx);
  const held = ctx.heldElsewhere?.() ?? new Map<string, string>();
  for (let n = 0; ; n++) {
    const name = withSuffix(wanted, `-r${n}`);
    // Under this fallback already (a journal that did not record it): kept, and recorded now.
    if (name !== current?.name && (taken.has(name) || held.has(name))) continue;
    rec.fallbackName = name;
    ctx.persist();
    ctx.fallbackRecorded?.();
    if (name !== current?.name) ctx.warn(`device ${rec.key}: name ${wanted} is taken on the host by another device; restored as ${name}`);
    return name;
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

/**
 * Before the device leaves the container: alternative names it did not have are taken off (the
 * container's additions), and so are its own when the host uses them now (the move would fail
 * with EEXIST); those are recorded and reported, and put back later if they come free.
 */
function dropAltNames(ctx: ApplyContext, ct: Side, rec: HostRecord, inside: LinkInfo): void {
  if (!inside.altNames.length) return;
  const orig = rec.original;
  const taken = hostNames(ctx);
  for (const alt of inside.altNames) {
    const own = orig.altNames.includes(alt);
    if (own && !taken.has(alt)) continue;
    changeAltName(ct.sock, inside.index, alt, false, ctxOf(rec, `restore in container: remove altname ${alt}`));
    if (taken.has(alt)) {
      if (own) rec.removedAltNames = [...new Set([...(rec.removedAltNames ?? []), alt])];
      ctx.warn(`device ${rec.key}: altname ${alt} is taken on the host; removed from the device so that it can come home`);
    }
  }
}

/**
 * The device's own alternative names, back where the host has them free, in their order: the
 * kernel lists them in the order they were added, so from the first one out of place (or not the
 * device's own) they are taken off and added again. Those the host still uses stay recorded
 * (rec.removedAltNames), which keeps the record open for gc to put them back.
 */
function restoreAltNames(ctx: ApplyContext, rec: HostRecord, home: LinkInfo): void {
  const own = rec.original.altNames;
  const missing = own.filter((a) => !home.altNames.includes(a));
  const taken = missing.length ? hostNames(ctx) : new Set<string>();
  const wanted = own.filter((a) => !missing.includes(a) || !taken.has(a));
  let inPlace = 0;
  while (inPlace < wanted.length && wanted[inPlace] === home.altNames[inPlace]) inPlace++;
  for (const alt of home.altNames.slice(inPlace)) changeAltName(ctx.host.sock, home.index, alt, false, ctxOf(rec, `reorder altname ${alt}`));
  for (const alt of wanted.slice(inPlace)) changeAltName(ctx.host.sock, home.index, alt, true, ctxOf(rec, `restore altname ${alt}`));
  const waiting = own.filter((a) => !wanted.includes(a));
  for (const alt of waiting) ctx.warn(`device ${rec.key}: altname ${alt} is still taken on the host; the device is back without it`);
  if (waiting.length) rec.removedAltNames = waiting;
  else delete rec.removedAltNames;
}

/** A device that took the place of ours in the container (same ifindex) stays there, and we say so. */
function refuseImpostor(ctx: ApplyContext, rec: DeviceRecord): void {
  const impostor = impostorAt(ctx, rec);
  if (impostor) ctx.warn(`device ${rec.key}: ${impostor}; left in the container`);
}

const moveOut = forKind('host', (ctx, rec) => {
  const orig = rec.original;
  // Reported when it was found gone; its record has ended.
  if (rec.lost !== undefined) return;
  const ct = ctx.container;
  if (ct && rec.v1) {
    throw new PlanError(`device ${rec.key}: recorded by a release before journal version 2 and not found by the alias it wrote (${rec.v1.marker}) in the container nor on the host (original name ${orig.name}); its record is kept`, { device: rec.key, op: 'restore' });
  }
  const inside = ct ? findInContainer(ctx, rec) : null;
  const unproven = unprovenIdentity(rec.identity);
  if (inside && unproven && !ctx.movedHere.has(rec.key)) {
    // It may be the container's look-alike: never on the host under a host name. A device at its
    // own ifindex on the host was put there by the host, so an operator's move home settles it.
    const home = findOnHost(ctx, rec);
    if (home) return convergeOnHost(ctx, rec, home, false);
    throw new PlanError(`device ${rec.key}: ${unproven}; left in the container's network namespace, which stays pinned, and not put on the host as ${orig.name}` +
      `${rec.adopted ? '' : ` (once it is checked, moving it home at ifindex ${orig.index} lets oci-netdev gc finish the restore)`}`, { device: rec.key, op: 'restore' });
  }
  let home: LinkInfo | null;
  if (ct && inside) {
    // Down first, in a request of its own, as in moveIn; then MTU and MAC back while the device is
    // still in the container; then out, under the ifindex it had when that is free.
    if (inside.up) setLink(ct.sock, inside.index, { up: false }, ctxOf(rec, 'restore in container: take down'));
    setWhileDown(ct.sock, { ...inside, up: false }, {
      ...(inside.mtu !== orig.mtu ? { mtu: orig.mtu } : {}),
      ...(orig.mac && inside.mac !== orig.mac ? { mac: orig.mac } : {}),
    }, rec, 'restore in container');
    dropAltNames(ctx, ct, rec, inside);
    const name = hostNameFor(ctx, rec, undefined);
    const indexFree = !rec.adopted && !getLink(ctx.host.sock, { index: orig.index });
    setLink(ct.sock, inside.index, { netnsFd: ctx.host.ns.fd, name, ...(indexFree ? { newIndex: orig.index } : {}) }, ctxOf(rec, 'move to host'));
    // The host is ours: the name just given finds it.
    home = getLink(ctx.host.sock, { name });
  } else {
    if (ct) refuseImpostor(ctx, rec);
    // Returned by the kernel, brought home by an interrupted run, or never moved.
    home = findOnHost(ctx, rec);
  }
  if (!home) {
    if (!provablyGone(ctx, rec)) {
      const why = unproven ? `, and ${unproven}, so nothing shows it gone` : '';
      throw new PlanError(`device ${rec.key}: not found in the container nor on the host (ifindex ${rec.containerIndex} in the container, original name ${orig.name}); it may be in another namespace${why}; its record is kept`, { device: rec.key, op: 'restore' });
    }
    rec.lost = ct ? `the kernel shows it exists no more: not in the container (ifindex ${rec.containerIndex}) nor on the host (original name ${orig.name})`
      : `its network namespace is gone and it is not on the host (original name ${orig.name})`;
    throw new DeviceLostError(`device ${rec.key}: lost: ${rec.lost}`, { device: rec.key, op: 'restore' });
  }
  convergeOnHost(ctx, rec, home, inside !== null);
});

/** Name, MTU, MAC, alias, group, altnames, state and addresses as recorded, on the device at home. */
function convergeOnHost(ctx: ApplyContext, rec: HostRecord, home: LinkInfo, justMoved: boolean): void {
  const orig = rec.original;
  // A device moved out just now has the name moveOut chose for it.
  const name = home.name === orig.name || justMoved ? home.name : hostNameFor(ctx, rec, home);
  const fix = {
    ...(home.name !== name ? { name } : {}),
    ...(home.mtu !== orig.mtu ? { mtu: orig.mtu } : {}),
    ...(orig.mac && home.mac !== orig.mac ? { mac: orig.mac } : {}),
  };
  setWhileDown(ctx.host.sock, home, fix, rec, 'restore on host');
  const marks = {
    ...(home.alias !== orig.alias ? { alias: orig.alias } : {}),
    ...(home.group !== orig.group ? { group: orig.group } : {}),
  };
  if (Object.keys(marks).length) setLink(ctx.host.sock, home.index, marks, ctxOf(rec, 'restore alias and group'));
  restoreAltNames(ctx, rec, home);
  // While still down: the link and ethtool settings (the container's XDP program off before the
  // device carries host traffic), sysctls (disable_ipv6 before addresses). Addresses once up, so
  // that the kernel makes their prefix routes, those with finite lifetimes too; then what needs them.
  if (orig.state) {
    const now = getLink(ctx.host.sock, { index: home.index }) ?? home;
    restoreLinkSettings(ctx.host.sock, orig.state, now, rec.key, ctx.warn);
    restoreEthtool(ctx.host.ns, orig.state, home.index, rec.key, name, ctx.warn);
    restoreSysctls(ctx.host.ns, orig.state, rec.key, name, ctx.warn);
    restoreTokenAndMulticast(ctx.host.sock, orig.state, home.index, rec.key, name, ctx.warn);
  }
  const wasDown = !home.up || Object.keys(fix).length > 0;
  if (orig.up && wasDown) setLink(ctx.host.sock, home.index, { up: true }, ctxOf(rec, 'restore state'));
  if (!orig.up && !wasDown) setLink(ctx.host.sock, home.index, { up: false }, ctxOf(rec, 'restore state'));
  // Bringing the device up resets its IPv6 MTU once the link is ready.
  if (orig.state && orig.up && wasDown) restoreSysctlsAfterUp(ctx.host.ns, orig.state, rec.key, name, orig.mtu, ctx.warn);
  // A device that just changed namespace has no addresses left: the kernel flushes them.
  const present = new Set(justMoved ? [] : listAddresses(ctx.host.sock, home.index).map((a) => `${a.address}/${a.prefixlen}`));
  const labelFrom = (rec.adopted ? rec.containerName : undefined) ?? orig.name;
  const elapsed = ctx.observedAt === undefined ? 0 : Math.max(0, Math.floor((Date.now() - ctx.observedAt) / 1000));
  for (const a of restoreOrder(orig.addresses)) {
    if (present.has(`${a.address}/${a.prefixlen}`) || isLeftToKernel(a)) continue;
    const left = aged(a, elapsed);
    if (!left) continue; // its lease ran out while the container held the device
    const info = addressInfo({ ...left, label: translateLabel(a.label, labelFrom, name) });
    try {
      addAddress(ctx.host.sock, home.index, settledAddress(info), ctxOf(rec, 'restore address'));
    } catch (err) {
      // The kernel may have made it again by itself (an IPv6 address of the device's own).
      if (!(err instanceof NetlinkError && err.errnoName === 'EEXIST')) throw err;
      continue;
    }
    // Added without duplicate address detection: now its own flags back, which starts none.
    if (info.flags !== settledAddress(info).flags) replaceAddress(ctx.host.sock, home.index, info, ctxOf(rec, 'restore address flags'));
  }
  dropNewKernelLinkLocals(ctx, rec, home.index);
  if (orig.state) restoreRoutesNeighboursTc(ctx.host.sock, orig.state, orig.index, home.index, rec.key, ctx.warn);
}

/**
 * A link-local address the kernel made on the device's return that it did not have before (a
 * random one from a new secret, an EUI-64 one from a MAC changed since the old one was made) goes.
 */
function dropNewKernelLinkLocals(ctx: ApplyContext, rec: HostRecord, index: number): void {
  const recorded = new Set(rec.original.addresses.map((a) => `${a.address}/${a.prefixlen}`));
  for (const a of listAddresses(ctx.host.sock, index)) {
    if (!isKernelLinkLocal(a) || recorded.has(`${a.address}/${a.prefixlen}`)) continue;
    try {
      deleteAddress(ctx.host.sock, index, a, ctxOf(rec, 'remove new link-local'));
    } catch (err) {
      // Gone already (it failed duplicate address detection).
      if (!(err instanceof NetlinkError && err.errnoName === 'EADDRNOTAVAIL')) throw err;
    }
  }
}

/**
 * An IPv6 address that had passed duplicate address detection when recorded comes home without a
 * new one (IFA_F_NODAD), usable at once as it was; the same address on the same link was unique.
 */
function settledAddress(a: AddressInfo): AddressInfo {
  const settled = a.family === AF_INET6 && !(a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED));
  return settled ? { ...a, flags: a.flags | IFA_F_NODAD } : a;
}

const copyAddresses: Op = (ctx, rec) => {
  const { sock } = container(ctx, rec);
  const link = inContainer(ctx, rec);
  const from = rec.kind === 'host' ? rec.original.name : rec.key;
  for (const a of rec.containerAddresses) {
    try {
      addAddress(sock, link.index, addressInfo({ ...a, label: translateLabel(a.label, from, link.name) }), ctxOf(rec, 'add address'));
    } catch (err) {
      // Already there (a retried step) is what we wanted.
      if (!(err instanceof NetlinkError && err.errnoName === 'EEXIST')) throw err;
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
  ctx.seen.delete(rec.key);
  if (link.up && Object.keys(changes).length) setWhileDown(sock, link, changes, rec, 'configure');
  setLink(sock, link.index, { ...(link.up ? {} : changes), up: true }, ctxOf(rec, 'configure'));
};

/** The routes of the config, once the device is up (the kernel refuses a route on a device that is down). */
const addRoutes: Op = (ctx, rec) => {
  const { sock } = container(ctx, rec);
  const link = inContainer(ctx, rec);
  for (const r of rec.containerRoutes ?? []) {
    try {
      addRoute(sock, routeEntry({ ...r, oif: link.index }), link.index, link.index, ctxOf(rec, 'add route'));
    } catch (err) {
      // Already there (a retried step) is what we wanted.
      if (!(err instanceof NetlinkError && err.errnoName === 'EEXIST')) throw err;
    }
  }
};

/**
 * The pair in one request, the host end with its MAC and in its bridge; then the host end's
 * addresses. All of it goes when the host end is deleted, so deleteCreated undoes it.
 */
const createVethOp = forKind('veth', (ctx, rec) => {
  const ct = container(ctx, rec);
  const bridge = rec.hostBridge;
  if (bridge) {
    const now = getLink(ctx.host.sock, { index: bridge.index });
    if (!now || now.name !== bridge.name || now.kind !== 'bridge') {
      throw new PlanError(`device ${rec.key}: hostBridge ${bridge.name} changed on the host while being planned`, { device: rec.key });
    }
  }
  withChosenIndex(ctx,
    () => createVeth(ctx.host.sock, { name: rec.key, index: rec.hostIndex, master: bridge?.index, mac: rec.hostMac }, {
      name: rec.tempName, index: rec.containerIndex, netnsFd: ct.ns.fd, group: ctx.plan.group, mtu: rec.mtu, mac: rec.mac,
    }, ctxOf(rec, 'create veth')),
    () => {
      rec.hostIndex = freeIndex(ctx.host.sock);
      rec.identity.hostPeerIndex = rec.hostIndex;
      rec.containerIndex = freeIndex(ct.sock);
    });
  for (const a of rec.hostAddresses ?? []) addAddress(ctx.host.sock, rec.hostIndex, addressInfo(a), ctxOf(rec, 'add host end address'));
});

const createMacvlanOp = forKind('macvlan', (ctx, rec) => {
  const ct = container(ctx, rec);
  const master = getLink(ctx.host.sock, { index: rec.identity.hostLowerIndex });
  if (!master || master.name !== rec.master) {
    throw new PlanError(`device ${rec.key}: macvlan master ${rec.master} changed on the host while being planned`, { device: rec.key });
  }
  const mode = rec.mode;
  try {
    withChosenIndex(ctx,
      () => createMacvlan(ctx.host.sock, master.index, mode, {
        name: rec.tempName, index: rec.containerIndex, netnsFd: ct.ns.fd, group: ctx.plan.group, mtu: rec.mtu, mac: rec.mac,
      }, ctxOf(rec, 'create macvlan')),
      () => { rec.containerIndex = freeIndex(ct.sock); });
  } catch (err) {
    // The kernel says EINVAL without an extended ack when passthru and other modes meet on one master.
    if (!(err instanceof NetlinkError && err.errnoName === 'EINVAL' && !err.extack)) throw err;
    const hint = mode === 'passthru'
      ? `mode passthru needs a master that carries no other macvlan, and ${rec.master} may carry one (here or in another namespace)`
      : `master ${rec.master} may carry a passthru macvlan, which allows no other`;
    throw new NetlinkError(err.errno, err.errnoName, 'Invalid argument', { ...ctxOf(rec, 'create macvlan'), extack: hint });
  }
});

const renameInContainer: Op = (ctx, rec) => {
  const { sock } = container(ctx, rec);
  const link = inContainer(ctx, rec);
  setLink(sock, link.index, { name: rec.targetName }, ctxOf(rec, 'rename'));
  const renamed = isTemplate(rec.targetName) ? getLink(sock, { index: link.index }) : link;
  if (!renamed) throw new PlanError(`device ${rec.key}: gone from the container after the rename`, { device: rec.key, op: 'rename' });
  rec.containerName = isTemplate(rec.targetName) ? renamed.name : rec.targetName;
  ctx.seen.set(rec.key, { ...link, name: rec.containerName });
};

/**
 * The host ends of this plan's veths, which the container cannot touch, go in one RTM_DELLINK by
 * group when the group holds exactly them (deleting a host end takes its container end along).
 * Anything else in the group (someone's device, a device that came home with the group) makes
 * it one request per device.
 */
function deleteVethsByGroup(ctx: ApplyContext): void {
  if (ctx.vethGroupChecked) return;
  ctx.vethGroupChecked = true;
  const ours = new Set(ctx.plan.devices.filter((d) => d.kind === 'veth').map((d) => d.hostIndex));
  const members = listLinks(ctx.host.sock).filter((l) => l.group === ctx.plan.group);
  if (members.length && members.every((l) => l.kind === 'veth' && ours.has(l.index))) {
    deleteLinkGroup(ctx.host.sock, ctx.plan.group, { op: 'delete created veths', device: `group ${ctx.plan.group}` });
  }
}

const MACVLAN_MODE_NAMES = new Map<number, string>([...Object.entries(MACVLAN_MODES).map(([name, mode]): [number, string] => [mode, name]), [MACVLAN_MODE_SOURCE, 'source']]);

/**
 * What the container changed on a created macvlan beyond what was allowed, or undefined: its mode
 * (the kernel lets CAP_NET_ADMIN in the container set any, source and vepa too) and source MACs.
 */
export function macvlanChanges(rec: MacvlanRecord, link: LinkInfo): string | undefined {
  const now = link.macvlan;
  if (!now) return undefined;
  const changes = [
    ...(now.mode !== MACVLAN_MODES[rec.mode] ? [`mode ${MACVLAN_MODE_NAMES.get(now.mode) ?? now.mode} (created as ${rec.mode})`] : []),
    ...(now.sourceMacs ? [`${now.sourceMacs} source MAC${now.sourceMacs === 1 ? '' : 's'}`] : []),
  ];
  return changes.length ? changes.join(', ') : undefined;
}

const deleteCreated: Op = (ctx, rec) => {
  // A version 1 record its device was not matched to (src/apply/legacy.ts): gone with its pair or namespace.
  if (rec.v1) return;
  if (rec.kind === 'veth') {
    deleteVethsByGroup(ctx);
    const hostEnd = getLink(ctx.host.sock, { index: rec.hostIndex });
    if (hostEnd && hostEnd.kind === 'veth' && hostEnd.group === ctx.plan.group) {
      deleteLink(ctx.host.sock, hostEnd.index, ctxOf(rec, 'delete veth'));
    }
    return;
  }
  const refused = deleteMacvlans(ctx).get(rec.key);
  if (refused) throw refused;
};

/**
 * A macvlan lives in the container only: gone with its namespace, or deleted there once it proves
 * to be ours (kind, and its master on the host). The first macvlan undo of a run deletes every
 * macvlan of the plan that proves so; each refusal is kept for its own device's undo
 * (ctx.macvlansDeleted).
 *
 * The kernel unregisters the links of one RTM_DELLINK together and waits for RCU once; N requests,
 * even in one send, wait N times (about 20 ms each, BENCHMARKS.md). So when the plan's link group
 * in the container holds exactly the macvlans proven ours, one RTM_DELLINK by group deletes them.
 * The container may regroup its links in the meantime, but only links it could delete itself (both
 * need CAP_NET_ADMIN in its namespace, and the group delete reaches no other namespace), and the
 * kernel refuses the whole group when one member cannot be deleted (a NIC). Then, and for any of
 * ours the container took out of the group, each goes by its ifindex, all in one send.
 */
function deleteMacvlans(ctx: ApplyContext): Map<string, NetlinkError | null> {
  if (ctx.macvlansDeleted) return ctx.macvlansDeleted;
  const outcomes = new Map<string, NetlinkError | null>();
  ctx.macvlansDeleted = outcomes;
  const ct = ctx.container;
  if (!ct) return outcomes;
  const links = listLinks(ct.sock);
  const inside = new Map(links.map((l) => [l.index, l]));
  const ours = ctx.plan.devices.flatMap((rec) => {
    const link = rec.kind === 'macvlan' && !rec.v1 ? inside.get(rec.containerIndex) : undefined;
    return link && rec.kind === 'macvlan' && isTheDevice(ctx, rec, link, 'container') ? [{ rec, link }] : [];
  });
  const deleted = (rec: MacvlanRecord, link: LinkInfo): void => {
    outcomes.set(rec.key, null);
    const changed = macvlanChanges(rec, link);
    if (changed) ctx.warn(`device ${rec.key}: the container changed macvlan ${link.name} to ${changed}; deleted`);
  };
  const group = links.filter((l) => l.group === ctx.plan.group);
  const proven = new Set(ours.map(({ link }) => link.index));
  let rest = ours;
  if (group.length > 1 && group.every((l) => proven.has(l.index))) {
    try {
      if (deleteLinkGroup(ct.sock, ctx.plan.group, { op: 'delete created macvlans', device: `group ${ctx.plan.group}` })) {
        for (const { rec, link } of ours) if (link.group === ctx.plan.group) deleted(rec, link);
        rest = ours.filter(({ link }) => link.group !== ctx.plan.group);
      }
    } catch (err) {
      if (!(err instanceof NetlinkError)) throw err;
    }
  }
  const refusals = deleteLinks(ct.sock, rest.map(({ rec, link }) => ({ index: link.index, ctx: ctxOf(rec, 'delete macvlan') })));
  rest.forEach(({ rec, link }, i) => {
    const refused = refusals[i];
    if (refused) outcomes.set(rec.key, refused);
    else deleted(rec, link);
  });
  return outcomes;
}

/**
 * Deletes the global addresses on host devices `names` that `before` (addresses as observed
 * earlier) does not hold: what a failed CNI ADD put on the host and its DEL left there (the
 * bridge plugin's gateway on its bridge). Returns them, as DEVICE ADDRESS/PREFIX; throws on the
 * first the kernel refuses to delete.
 */
export function deleteNewHostAddresses(host: Side, before: (AddressRecord & { index: number })[], names: string[]): string[] {
  const indexes = new Map(listLinks(host.sock).filter((l) => names.includes(l.name)).map((l) => [l.index, l.name]));
  const known = new Set(before.map((a) => `${a.index} ${a.local ?? a.address}/${a.prefixlen}`));
  const deleted: string[] = [];
  for (const a of listAddresses(host.sock)) {
    const name = indexes.get(a.index);
    if (name === undefined || a.scope !== 0 || known.has(`${a.index} ${a.local ?? a.address}/${a.prefixlen}`)) continue;
    deleteAddress(host.sock, a.index, a, { op: 'delete address left by a failed ADD', device: name });
    deleted.push(`${name} ${a.local ?? a.address}/${a.prefixlen}`);
  }
  return deleted;
}

export const OPERATIONS: Record<Operation, Op> = {
  moveIn, moveOut, copyAddresses, configure, addRoutes,
  createVeth: createVethOp, createMacvlan: createMacvlanOp, renameInContainer, deleteCreated,
};
