// The CNI networks of a container (type "cni" entries), run through src/libcni after its devices
// are attached, in the pinned namespace, so that DEL always finds the namespace ADD used. The
// journal keeps each network's list, options and final result: DEL needs nothing else, even when
// the conflist changed or the hook runs with other options (gc from a shell).

import { selectorFor } from '../config';
import { DeviceBusyError } from '../errors';
import type { NetworkSpec, SelectorField } from '../config';
import type { LinkInfo } from '../netlink/link';
import { selects } from '../plan/select';
import type * as Crypto from 'node:crypto';
import * as path from 'node:path';
import {
  addNetworkList, attachmentKey, cacheFile, cachedAttachments, cachedRuntimeArgs, checkNetworkList, delNetworkList, DEFAULT_CACHE_DIR, gcNetworkList, statusNetworkList,
} from '../libcni/api';
import type { Attachment, CachedAttachment, CniOptions, GcOutcome, RuntimeConf } from '../libcni/api';
import { DEFAULT_NETCONF_PATH, loadNetworkList, parseNetworkList } from '../libcni/conf';
import type { PluginConf } from '../libcni/conf';
import { DEFAULT_CNI_PATH, findPlugin, splitCniPath } from '../libcni/invoke';
import { CniCode, CniError, parseCniArgs, parseResult, toVersion } from '../libcni/spec';
import type { Side } from '../apply/operations';
import type { PlannedNetwork } from '../plan/describe';
import { linksOf } from '../apply/observe';
import { isPinned } from '../netns/netns';
import { DEFAULT_STATE_DIR, StateDir } from '../state/statedir';
import type { Journal, JournalNetwork } from '../state/statedir';

/** Where networks and plugins are found, and where libcni's cache is. */
export interface CniSettings {
  /** NETCONFPATH. */
  confDir: string;
  /** CNI_PATH's directories. */
  path: string[];
  cacheDir: string;
  /** Per plugin exec; the invoke default when unset. */
  timeoutMs?: number;
}

export const DEFAULT_CNI_SETTINGS: CniSettings = { confDir: DEFAULT_NETCONF_PATH, path: DEFAULT_CNI_PATH, cacheDir: DEFAULT_CACHE_DIR };

// The defaults a front door names in its help.
export { DEFAULT_CACHE_DIR } from '../libcni/api';
export { DEFAULT_NETCONF_PATH } from '../libcni/conf';
export { DEFAULT_CNI_PATH } from '../libcni/invoke';
export { DEFAULT_CNI_IFNAME } from '../config';

/** The settings from what was given (options or NETCONFPATH, CNI_PATH as text), the defaults for the rest. */
export function cniSettings(given: { confDir?: string; path?: string; cacheDir?: string }): CniSettings {
  return { confDir: given.confDir ?? DEFAULT_NETCONF_PATH, path: splitCniPath(given.path), cacheDir: given.cacheDir ?? DEFAULT_CACHE_DIR };
}

/**
 * Each network's list, loaded and with every plugin found, before anything is touched: a missing
 * network or plugin, or (given the container's id) an attachment libcni's cache cannot name, is
 * bad input, refused with nothing changed.
 */
export function prepareNetworks(specs: NetworkSpec[], cni: CniSettings, containerId?: string): JournalNetwork[] {
  return specs.map((spec) => {
    const list = loadNetworkList(cni.confDir, spec.network);
    for (const p of list.plugins) findPlugin(p.type, cni.path);
    if (containerId !== undefined) cacheFile(list.name, { containerId, ifname: spec.ifname }, cni.cacheDir);
    return {
      network: spec.network, ifname: spec.ifname, args: spec.args, runtimeConfig: spec.runtimeConfig, config: list.raw,
      cniPath: cni.path, cacheDir: cni.cacheDir, state: 'pending',
    };
  });
}

/** Plugin keys that name a host device by name (bridge, macvlan, ipvlan, vlan, host-device, and ours). */
const NAME_KEYS = ['master', 'bridge', 'device', 'hostName'] as const;
/** Plugin keys that pick a host device as host-device and ours do. */
const SELECTOR_KEYS: readonly SelectorField[] = ['hwaddr', 'pciBusID', 'kernelpath'];

/** A PCI address as host-device takes one in runtimeConfig.deviceID; anything else is an auxiliary device's name. */
const PCI_ADDRESS = /^([0-9A-Fa-f]{4,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$/;

/**
 * The host devices the plugins of network `n` name, as far as we can see them: by name (a bridge
 * plugin's bridge, a macvlan's master, ...), by a host-device selector matched against
 * `hostLinks`, or by the runtime's deviceID (a device plugin's PCI or auxiliary device), which a
 * plugin that declares the deviceID capability is given and host-device moves the NIC of.
 */
export function hostDevicesNamed(n: JournalNetwork, hostLinks: LinkInfo[]): { role: string; name: string }[] {
  const named: { role: string; name: string }[] = [];
  const picked = (role: string, matches: (link: LinkInfo) => boolean) => {
    for (const l of hostLinks.filter(matches)) named.push({ role: `${role} picks`, name: l.name });
  };
  const deviceID = n.runtimeConfig.deviceID;
  for (const plugin of parseNetworkList(n.config, `network ${n.network}`).plugins) {
    for (const key of NAME_KEYS) {
      const name = plugin[key];
      if (typeof name === 'string' && name !== '') named.push({ role: `plugin ${plugin.type}'s ${key}`, name });
    }
    for (const by of SELECTOR_KEYS) {
      const value = plugin[by];
      if (typeof value !== 'string' || value === '') continue;
      const select = selectorFor(by, value);
      picked(`plugin ${plugin.type}'s ${by} ${value}`, (link) => selects(select, link));
    }
    if (plugin.capabilities?.deviceID === true && typeof deviceID === 'string' && deviceID !== '') {
      const select = selectorFor('pciBusID', deviceID);
      picked(`plugin ${plugin.type}'s runtimeConfig.deviceID ${deviceID}`, PCI_ADDRESS.test(deviceID) ? (link) => selects(select, link)
        : (link) => link.parentBus === 'auxiliary' && link.parentDev === deviceID);
    }
  }
  return named;
}

/** Refuses networks whose plugins name a host device another container holds (`held`: name -> holder), naming the holder. */
export function refuseHeldByNetworks(networks: JournalNetwork[], hostLinks: LinkInfo[], held: Map<string, string>): void {
  for (const n of networks) {
    for (const { role, name } of hostDevicesNamed(n, hostLinks)) {
      const owner = held.get(name);
      if (owner !== undefined) throw new DeviceBusyError(name, owner, { entry: n.network, role });
    }
  }
}

/** The networks as a plan lists them: interface, plugins and the version they will be run with. */
export function plannedNetworks(networks: JournalNetwork[]): PlannedNetwork[] {
  return networks.map((n) => {
    const list = parseNetworkList(n.config, `network ${n.network}`);
    return { network: n.network, ifname: n.ifname, plugins: list.plugins.map((p) => p.type), cniVersion: list.cniVersion };
  });
}

function runtimeConf(j: Journal, n: JournalNetwork, netns: string): RuntimeConf {
  return { containerId: j.containerId, netns, ifname: n.ifname, args: n.args, capabilityArgs: n.runtimeConfig };
}

function optionsOf(n: JournalNetwork, timeoutMs?: number): CniOptions {
  return { path: n.cniPath, cacheDir: n.cacheDir, ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
}

/**
 * ADD of each network in order, in `netns` (`container` is a socket there). The journal says a DEL
 * is owed before a plugin runs, and keeps the final result once the chain is done. A network whose
 * interface name a device of the container already has is refused before its plugins run: the DEL
 * owed after its ADD failed would delete that device (the bridge plugin deletes CNI_IFNAME).
 */
export function addNetworks(j: Journal, netns: string, container: Side, persist: () => void, info: (m: string) => void, timeoutMs?: number): void {
  // The container's names and altnames, listed once: each network added then names its interfaces.
  let taken: Set<string> | undefined;
  for (const n of j.networks ?? []) {
    if (n.state === 'added') continue;
    taken ??= new Set(linksOf(container).flatMap((l) => [l.name, ...l.altNames]));
    if (taken.has(n.ifname)) {
      throw new CniError(CniCode.invalidConfig, `network ${n.network}: interface name ${n.ifname} is already taken in the container`);
    }
    const list = parseNetworkList(n.config, `network ${n.network} (journal)`);
    n.state = 'adding';
    persist();
    const result = addNetworkList(list, runtimeConf(j, n, netns), optionsOf(n, timeoutMs));
    for (const name of [n.ifname, ...(result.interfaces ?? []).filter((i) => i.sandbox).map((i) => i.name)]) taken.add(name);
    n.result = toVersion(result, list.cniVersion);
    n.state = 'added';
    persist();
    info(`network ${n.network}: added as ${n.ifname}${(result.ips ?? []).map((ip) => ` ${ip.address}`).join('')}`);
  }
}

/**
 * DEL of every network whose ADD began, last first, each with its final result when there is
 * one; `netns` is empty when the namespace is gone. Carries on past a failing network; returns
 * the failures, and the failed networks keep their records for the next try (gc).
 */
export function delNetworks(j: Journal, netns: string, persist: () => void, info: (m: string) => void, timeoutMs?: number): Error[] {
  const errors: Error[] = [];
  for (const n of [...(j.networks ?? [])].reverse()) {
    if (n.state === 'pending') continue;
    try {
      const list = parseNetworkList(n.config, `network ${n.network} (journal)`);
      delNetworkList(list, runtimeConf(j, n, netns), optionsOf(n, timeoutMs), n.result ? parseResult(n.result) : undefined);
      n.state = 'pending';
      delete n.result;
      persist();
      info(`network ${n.network}: deleted ${n.ifname}`);
    } catch (err) {
      errors.push(err as Error);
    }
  }
  return errors;
}

/** Whether a network's DEL is still owed. */
export function networksHeld(j: Journal): boolean {
  return (j.networks ?? []).some((n) => n.state !== 'pending');
}

// ---------------------------------------------------------------------------------------------
// `oci-netdev cni`: libcni's operations on one network, as cnitool runs them.

export interface CniToolRequest {
  network: string;
  /** ADD/CHECK/DEL: the namespace path. */
  netns?: string;
  /** cnitool's default: derived from the netns path. */
  containerId?: string;
  ifname: string;
  /** CNI_ARGS as text, K=V;K2=V2. */
  args?: string;
  runtimeConfig: Record<string, unknown>;
}

/** cnitool's container id for a namespace path: "cni-" and the start of its sha512. */
function containerIdFor(netns: string): string {
  // Required here: loading node:crypto costs every hook run, and only cnitool's ids need it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createHash } = require('node:crypto') as typeof Crypto;
  return `cni-${createHash('sha512').update(netns).digest('hex').slice(0, 20)}`;
}

/**
 * ADD (returns the result in the network's version), CHECK, DEL, STATUS or GC of one network.
 * GC is libcni's, the valid attachments being those the journals of `stateDir` hold: every other
 * attachment of the network in the cache is DELed, then a 1.1.0 list's plugins get GC.
 */
export function cniTool(
  op: 'add' | 'check' | 'del' | 'status' | 'gc', req: CniToolRequest, cni: CniSettings, stateDir: string,
): Record<string, unknown> | undefined {
  const list = loadNetworkList(cni.confDir, req.network);
  const opts = cniOptions(cni);
  if (op === 'status') {
    statusNetworkList(list, opts);
    return undefined;
  }
  if (op === 'gc') {
    // The cache before the journals: an attachment cached now had its journal written before.
    const cached = cachedAttachments(cni.cacheDir).filter((a) => a.network === list.name);
    const held = journalHolds(stateDir);
    const { deleted, failures } = gcNetworkList(list, opts, distinct([...held.valid(list.name), ...cached.filter(held.holds)]), cached);
    const errors = [...deleted.flatMap((d) => (d.error ? [`${d.attachment.containerID} ${d.attachment.ifname}: ${d.error.message}`] : [])), ...failures.map((e) => e.message)];
    if (errors.length) throw new CniError(CniCode.delegate, `network ${list.name}: GC: ${errors.join('; ')}`);
    return undefined;
  }
  const netns = req.netns ?? '';
  const rt: RuntimeConf = {
    containerId: req.containerId ?? containerIdFor(netns), netns, ifname: req.ifname, args: parseCniArgs(req.args), capabilityArgs: req.runtimeConfig,
  };
  // CHECK and DEL without arguments of their own get those ADD was given (portmap needs its mappings to remove them).
  if (op !== 'add' && !rt.args.length && !Object.keys(rt.capabilityArgs).length) {
    Object.assign(rt, cachedRuntimeArgs(list.name, rt, cni.cacheDir));
  }
  if (op === 'add') return toVersion(addNetworkList(list, rt, opts), list.cniVersion);
  if (op === 'check') checkNetworkList(list, rt, opts);
  else delNetworkList(list, rt, opts);
  return undefined;
}

function cniOptions(cni: CniSettings): CniOptions {
  return { path: cni.path, cacheDir: cni.cacheDir, ...(cni.timeoutMs !== undefined ? { timeoutMs: cni.timeoutMs } : {}) };
}

/** The state dir's key for an attachment made through the CNI plugin door. */
export function cniAttachmentId(network: string, containerId: string, ifname: string): string {
  return `cni:${network}:${containerId}:${ifname}`;
}

/** The plugin type oci-netdev is installed under as a CNI plugin. */
const PLUGIN_TYPE = 'oci-netdev';

/**
 * What the journals of a state dir hold: the attachments they name (a network of the hooks whose
 * DEL is owed, or a plugin door attachment), and whether one of them holds a cached attachment;
 * a journal that cannot be read may hold any attachment of its container.
 */
function journalHolds(stateDir: string): { valid: (network: string) => Attachment[]; holds: (a: CachedAttachment) => boolean } {
  const { journals, bad } = new StateDir(stateDir).scanJournals();
  const named: Array<Attachment & { network: string }> = [];
  for (const j of journals) {
    for (const n of j.networks ?? []) if (n.state !== 'pending') named.push({ network: n.network, containerID: j.containerId, ifname: n.ifname });
    if (j.origin) named.push({ network: j.origin.network, containerID: j.origin.containerId, ifname: j.origin.ifname });
  }
  const key = (a: Attachment & { network: string }) => `${a.network}\0${attachmentKey(a)}`;
  const keys = new Set(named.map(key));
  const badIds = new Set(bad.map((b) => b.containerId));
  return {
    valid: (network) => named.filter((a) => a.network === network).map(({ containerID, ifname }) => ({ containerID, ifname })),
    holds: (a) => keys.has(key(a)) || badIds.has(a.containerID) || badIds.has(cniAttachmentId(a.network, a.containerID, a.ifname)),
  };
}

/** Each attachment once, as GC's valid list names it. */
function distinct(attachments: Attachment[]): Attachment[] {
  const byKey = new Map(attachments.map(({ containerID, ifname }) => [attachmentKey({ containerID, ifname }), { containerID, ifname }]));
  return [...byKey.values()];
}

/** What `oci-netdev gc` did with one attachment of libcni's cache, or with a network's GC. */
export interface CacheGcResult {
  containerId: string;
  action: 'removed' | 'kept' | 'failed';
  reason: string;
}

/**
 * libcni's GC over the cache, for the attachments oci-netdev made with `stateDir` (a network of
 * the hooks, whose namespace was a pin there, or a list whose oci-netdev plugin keeps its journals
 * there): each one that no journal holds and whose namespace is gone (a reboot) is DELed with its
 * cached config, which frees its IPAM lease and cache entry; then each such network of a 1.1.0
 * list gets GC, with every attachment left valid. The attachments of other runtimes and other
 * state dirs (one cache serves them all) are valid and never DELed; so is one whose namespace is
 * still there (its container may still run). `wrongHost`: why this is not the host's namespace the
 * state dir recorded; then each network of ours is refused, and nothing is deleted.
 */
export function gcCache(stateDir: string, cni: CniSettings, wrongHost?: string): CacheGcResult[] {
  const cached = cachedAttachments(cni.cacheDir);
  const held = journalHolds(stateDir);
  const root = path.resolve(stateDir);
  // A plugin door attachment's journal is in the state dir its config names (else the default).
  const doorOf = (p: PluginConf) => p.type === PLUGIN_TYPE && path.resolve(typeof p.stateDir === 'string' ? p.stateDir : DEFAULT_STATE_DIR) === root;
  const ours = (a: CachedAttachment) => (a.netns !== '' && path.resolve(a.netns).startsWith(root + path.sep)) || (a.config?.plugins.some(doorOf) ?? false);
  const results: CacheGcResult[] = [];
  for (const network of new Set(cached.filter(ours).map((a) => a.network))) {
    // From another namespace than the host's, a DEL or GC would act on the wrong one.
    if (wrongHost !== undefined) {
      results.push({ containerId: network, action: 'failed', reason: `network ${network}: ${wrongHost}` });
      continue;
    }
    const all = cached.filter((a) => a.network === network);
    const stale = all.filter((a) => ours(a) && !held.holds(a) && !isPinned(a.netns));
    for (const a of all.filter((x) => ours(x) && !held.holds(x) && isPinned(x.netns))) {
      results.push({ containerId: a.containerID, action: 'kept', reason: `network ${network} ${a.ifname}: cached without a journal, but its namespace ${a.netns} is there` });
    }
    // The list for the DELs without a cached config and for GC: ours first, as the network may be another's namesake.
    const list = [...all.filter(ours), ...all].find((a) => a.config)?.config;
    if (!list) {
      for (const a of stale) results.push({ containerId: a.containerID, action: 'failed', reason: `network ${network} ${a.ifname}: its cache entry holds no usable config` });
      continue;
    }
    const valid = distinct([...held.valid(network), ...all.filter((a) => !stale.includes(a))]);
    results.push(...cacheGcResults(network, gcNetworkList(list, cniOptions(cni), valid, stale)));
  }
  return results;
}

function cacheGcResults(network: string, { deleted, failures }: GcOutcome): CacheGcResult[] {
  return [
    ...deleted.map(({ attachment: a, error }): CacheGcResult => ({
      containerId: a.containerID,
      action: error ? 'failed' : 'removed',
      reason: `network ${network} ${a.ifname}: cached without a journal, ${error ? `DEL failed: ${error.message}` : 'DEL ran'}`,
    })),
    ...failures.map((e): CacheGcResult => ({ containerId: network, action: 'failed', reason: e.message })),
  ];
}

export interface StatusNetwork {
  network: string;
  ifname: string;
  /** added: the chain finished; adding: it began and did not (a DEL is owed); pending: nothing in place. */
  state: 'pending' | 'adding' | 'added';
  addresses: string[];
  portMappings: Array<{ hostPort: number; containerPort: number; protocol?: string; hostIP?: string }>;
}

/** A network as `status` shows it: its interface, the addresses of its result, its port mappings. */
export function networkStatus(n: JournalNetwork): StatusNetwork {
  const ports = n.runtimeConfig.portMappings;
  return {
    network: n.network,
    ifname: n.ifname,
    state: n.state,
    addresses: n.result ? (parseResult(n.result).ips ?? []).map((ip) => ip.address) : [],
    portMappings: Array.isArray(ports) ? (ports as StatusNetwork['portMappings']) : [],
  };
}
