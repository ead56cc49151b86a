// Running a network list as libcni does: every plugin gets the list's cniVersion (no VERSION
// call: the version is the list's choice), ADD through the chain with the previous result, DEL in
// reverse with the cached final result, CHECK against it, STATUS and GC per plugin of a 1.1.0
// list, GC after a DEL of every cached attachment not valid; runtimeConfig filtered by each
// plugin's capabilities; the final result cached in libcni's layout
// (CACHE_DIR/results/NET-ID-IFNAME) so that other tools can DEL what we added. Every failure is
// one line naming the network, the operation, the plugin and the CNI code.

import * as fs from 'node:fs';
import { join } from 'node:path';
import { execPlugin, findPlugin } from './invoke';
import type { CniCommand } from './invoke';
import { parseNetworkList } from './conf';
import type { NetworkList, PluginConf } from './conf';
import { CniCode, CniError, atLeast, compareVersions, parseResult, toVersion } from './spec';
import type { CniResult } from './spec';
import { replaceFile, TEMP_SUFFIX } from '../fsio/files';

/** libcni's cache root when none is given. */
export const DEFAULT_CACHE_DIR = '/var/lib/cni';
const CACHE_KIND = 'cniCacheV1';
/** NAME_MAX, less the suffix of the temp file the cache is written through. */
const MAX_CACHE_NAME_BYTES = 255 - TEMP_SUFFIX.length;

/** What one attachment of a network to a container is run with (libcni's RuntimeConf). */
export interface RuntimeConf {
  containerId: string;
  /** The netns path; empty at DEL when it is gone. */
  netns: string;
  ifname: string;
  /** CNI_ARGS pairs. */
  args: Array<[string, string]>;
  /** runtimeConfig values, each given only to the plugins that declare the capability. */
  capabilityArgs: Record<string, unknown>;
}

export interface CniOptions {
  /** The directories of CNI_PATH. */
  path: string[];
  /** libcni's cache root (results/ is under it). */
  cacheDir: string;
  timeoutMs?: number;
}

/** A failure of one plugin of one network, as one line. */
function chainError(list: NetworkList, command: CniCommand, err: unknown): CniError {
  const e = err instanceof CniError ? err : new CniError(CniCode.internal, (err as Error).message);
  return new CniError(e.cniCode, `network ${list.name}: ${command}: ${e.message} (CNI code ${e.cniCode})`, e.details);
}

/** The plugin's stdin: its own config, with the list's name, the version, runtimeConfig and prevResult. */
export function pluginConfig(
  list: NetworkList, plugin: PluginConf, version: string, capabilityArgs: Record<string, unknown>, prev?: CniResult,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: version };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on === true && capabilityArgs[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
  else delete conf.runtimeConfig;
  if (prev) conf.prevResult = toVersion(prev, version);
  else delete conf.prevResult;
  return conf;
}

function invokeArgs(command: CniCommand, rt: RuntimeConf, opts: CniOptions) {
  return {
    command, containerId: rt.containerId, netns: rt.netns, ifname: rt.ifname, path: opts.path, timeoutMs: opts.timeoutMs,
    args: rt.args.map(([k, v]) => `${k}=${v}`).join(';'),
  };
}

/** ADD through the chain; the final result in the list's version, also written to the cache. */
export function addNetworkList(list: NetworkList, rt: RuntimeConf, opts: CniOptions): CniResult {
  // An attachment whose result could not be cached is refused before any plugin runs.
  cacheFile(list.name, rt, opts.cacheDir);
  let prev: CniResult | undefined;
  try {
    for (const plugin of list.plugins) {
      const exe = findPlugin(plugin.type, opts.path);
      const out = execPlugin(exe, pluginConfig(list, plugin, list.cniVersion, rt.capabilityArgs, prev), invokeArgs('ADD', rt, opts));
      if (out === undefined) throw new CniError(CniCode.decode, `${plugin.type}: ADD printed no result`);
      prev = parseResult(out);
    }
  } catch (err) {
    throw chainError(list, 'ADD', err);
  }
  const result = { ...prev!, cniVersion: list.cniVersion };
  writeCache(list, rt, opts.cacheDir, result);
  return result;
}

/**
 * DEL through the chain in reverse, each plugin of a 0.4.0 or later list given the final ADD
 * result (`cached`, else the cache's, else none: DEL must work after a failed ADD). The cache
 * entry goes once every plugin succeeded; the first failure stops the chain, as libcni does.
 */
export function delNetworkList(list: NetworkList, rt: RuntimeConf, opts: CniOptions, cached?: CniResult): void {
  const prev = atLeast(list.cniVersion, '0.4.0') ? cached ?? readCachedResult(list.name, rt, opts.cacheDir) : undefined;
  try {
    for (const plugin of [...list.plugins].reverse()) {
      const exe = findPlugin(plugin.type, opts.path);
      execPlugin(exe, pluginConfig(list, plugin, list.cniVersion, rt.capabilityArgs, prev), invokeArgs('DEL', rt, opts));
    }
  } catch (err) {
    throw chainError(list, 'DEL', err);
  }
  removeCache(list.name, rt, opts.cacheDir);
}

/** CHECK through the chain against the cached result (needs 0.4.0, and a list that allows it). */
export function checkNetworkList(list: NetworkList, rt: RuntimeConf, opts: CniOptions, cached?: CniResult): void {
  try {
    if (compareVersions(list.cniVersion, '0.4.0') < 0) {
      throw new CniError(CniCode.incompatibleVersion, `CHECK needs cniVersion 0.4.0 or later (the network speaks ${list.cniVersion})`);
    }
    if (list.disableCheck) return;
    const prev = cached ?? readCachedResult(list.name, rt, opts.cacheDir);
    if (!prev) throw new CniError(CniCode.unknownContainer, `no cached result for container ${rt.containerId} interface ${rt.ifname}`);
    for (const plugin of list.plugins) {
      const exe = findPlugin(plugin.type, opts.path);
      execPlugin(exe, pluginConfig(list, plugin, list.cniVersion, rt.capabilityArgs, prev), invokeArgs('CHECK', rt, opts));
    }
  } catch (err) {
    throw chainError(list, 'CHECK', err);
  }
}

/** A container's interface on a network, as GC's `cni.dev/valid-attachments` lists it. */
export interface Attachment {
  containerID: string;
  ifname: string;
}

/** STATUS of each plugin of a 1.1.0 list (older lists know no STATUS: nothing runs); the first failure stops. */
export function statusNetworkList(list: NetworkList, opts: CniOptions): void {
  if (!atLeast(list.cniVersion, '1.1.0')) return;
  try {
    for (const plugin of list.plugins) {
      execPlugin(findPlugin(plugin.type, opts.path), pluginConfig(list, plugin, list.cniVersion, {}), maintenanceArgs('STATUS', opts));
    }
  } catch (err) {
    throw chainError(list, 'STATUS', err);
  }
}

/** STATUS and GC name no container: libcni sets their CNI_* variables empty. */
function maintenanceArgs(command: 'STATUS' | 'GC', opts: CniOptions) {
  return { command, containerId: '', netns: '', ifname: '', path: opts.path, timeoutMs: opts.timeoutMs };
}

/** What a GC did: the DEL of each stale cached attachment (with its error when it failed), and the plugins' GC failures. */
export interface GcOutcome {
  deleted: Array<{ attachment: CachedAttachment; error?: Error }>;
  failures: Error[];
}

/**
 * libcni's GC of a network: a DEL of each attachment of the list in `cached` (the cache as read
 * before the caller decided what is valid) that is not in `valid`, with the config and arguments
 * its ADD cached (else the list's), then, for a 1.1.0 list, GC of each plugin with the valid
 * attachments. Carries on past failures.
 */
export function gcNetworkList(list: NetworkList, opts: CniOptions, valid: Attachment[], cached: CachedAttachment[]): GcOutcome {
  const outcome: GcOutcome = { deleted: [], failures: [] };
  if (list.disableGC) return outcome;
  const keep = new Set(valid.map(attachmentKey));
  for (const a of cached) {
    if (a.network !== list.name || keep.has(attachmentKey(a))) continue;
    try {
      delCachedAttachment(a, opts, list);
      outcome.deleted.push({ attachment: a });
    } catch (err) {
      outcome.deleted.push({ attachment: a, error: err as Error });
    }
  }
  if (!atLeast(list.cniVersion, '1.1.0')) return outcome;
  const attachments = valid.map(({ containerID, ifname }) => ({ containerID, ifname }));
  for (const plugin of list.plugins) {
    try {
      // Both keys, as libcni sends them: `cni.dev/attachments` is the name an earlier spec text used.
      const conf = { ...pluginConfig(list, plugin, list.cniVersion, {}), 'cni.dev/valid-attachments': attachments, 'cni.dev/attachments': attachments };
      execPlugin(findPlugin(plugin.type, opts.path), conf, maintenanceArgs('GC', opts));
    } catch (err) {
      outcome.failures.push(chainError(list, 'GC', err));
    }
  }
  return outcome;
}

export function attachmentKey(a: Attachment): string {
  return `${a.containerID}\0${a.ifname}`;
}

/**
 * DEL of an attachment found in the cache, as its ADD was run: its cached config (else
 * `fallback`), netns, CNI_ARGS and capability args. The cache entry goes when the DEL succeeds.
 */
function delCachedAttachment(a: CachedAttachment, opts: CniOptions, fallback?: NetworkList): void {
  const list = a.config ?? fallback;
  if (!list) throw new CniError(CniCode.decode, `network ${a.network}: the cached attachment ${a.containerID} ${a.ifname} holds no usable config`);
  delNetworkList(list, { containerId: a.containerID, netns: a.netns, ifname: a.ifname, args: a.args, capabilityArgs: a.capabilityArgs }, opts);
}

// ---------------------------------------------------------------------------------------------
// libcni's result cache: CACHE_DIR/results/NETWORK-CONTAINERID-IFNAME.

/**
 * The cache file of an attachment; a CniError when its parts cannot name one (a `/`, or too long
 * for a file name with the temp suffix the write needs): ADD checks this before any plugin runs.
 */
export function cacheFile(network: string, rt: Pick<RuntimeConf, 'containerId' | 'ifname'>, cacheDir: string): string {
  for (const [what, v] of [['network name', network], ['container id', rt.containerId], ['interface name', rt.ifname]]) {
    if (!v || v.includes('/') || v === '.' || v === '..') {
      throw new CniError(CniCode.invalidConfig, `network ${network}: invalid ${what} ${JSON.stringify(v)} for the cache`);
    }
  }
  const name = `${network}-${rt.containerId}-${rt.ifname}`;
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_CACHE_NAME_BYTES) {
    throw new CniError(CniCode.invalidConfig,
      `network ${network}: the network name, container id and interface name are too long for libcni's result cache (${bytes} bytes, at most ${MAX_CACHE_NAME_BYTES})`);
  }
  return join(cacheDir, 'results', name);
}

function writeCache(list: NetworkList, rt: RuntimeConf, cacheDir: string, result: CniResult): void {
  const file = cacheFile(list.name, rt, cacheDir);
  const dir = join(cacheDir, 'results');
  const entry = {
    kind: CACHE_KIND,
    containerId: rt.containerId,
    config: Buffer.from(JSON.stringify(list.raw)).toString('base64'),
    ifName: rt.ifname,
    networkName: list.name,
    netns: rt.netns,
    ...(rt.args.length ? { cniArgs: rt.args } : {}),
    ...(Object.keys(rt.capabilityArgs).length ? { capabilityArgs: rt.capabilityArgs } : {}),
    result: toVersion(result, list.cniVersion),
  };
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    replaceFile(file, JSON.stringify(entry), 0o600);
  } catch (err) {
    throw new CniError(CniCode.io, `network ${list.name}: cannot write the result cache ${file}: ${(err as Error).message}`);
  }
}

interface CacheEntry {
  kind?: unknown;
  containerId?: unknown;
  ifName?: unknown;
  networkName?: unknown;
  netns?: unknown;
  config?: unknown;
  result?: unknown;
  cniArgs?: unknown;
  capabilityArgs?: unknown;
}

/** A cache file's entry when it is one of libcni's (a torn or foreign file is none). */
function parseCacheEntry(file: string): CacheEntry | undefined {
  try {
    const entry = JSON.parse(fs.readFileSync(file, 'utf8')) as CacheEntry;
    return typeof entry === 'object' && entry !== null && entry.kind === CACHE_KIND ? entry : undefined;
  } catch {
    return undefined;
  }
}

function readCacheEntry(network: string, rt: Pick<RuntimeConf, 'containerId' | 'ifname'>, cacheDir: string): CacheEntry | undefined {
  try {
    return parseCacheEntry(cacheFile(network, rt, cacheDir));
  } catch {
    return undefined;
  }
}

/** The cached final result, or undefined when there is none or it cannot be read (DEL goes on without it). */
export function readCachedResult(network: string, rt: Pick<RuntimeConf, 'containerId' | 'ifname'>, cacheDir: string): CniResult | undefined {
  const entry = readCacheEntry(network, rt, cacheDir);
  try {
    return entry?.result !== undefined ? parseResult(entry.result) : undefined;
  } catch {
    return undefined;
  }
}

function runtimeArgsOf(entry: CacheEntry): Pick<RuntimeConf, 'args' | 'capabilityArgs'> {
  const pairs = Array.isArray(entry.cniArgs) ? (entry.cniArgs as unknown[]) : [];
  const args = pairs.filter((p): p is [string, string] => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'string'));
  const caps = entry.capabilityArgs;
  return { args, capabilityArgs: typeof caps === 'object' && caps !== null && !Array.isArray(caps) ? (caps as Record<string, unknown>) : {} };
}

/** The CNI_ARGS and capability args ADD was given, from the cache: what CHECK and DEL need again (portmap's rules). */
export function cachedRuntimeArgs(
  network: string, rt: Pick<RuntimeConf, 'containerId' | 'ifname'>, cacheDir: string,
): Pick<RuntimeConf, 'args' | 'capabilityArgs'> | undefined {
  const entry = readCacheEntry(network, rt, cacheDir);
  return entry && runtimeArgsOf(entry);
}

/** An attachment as libcni's cache holds it: what its ADD was run with. */
export interface CachedAttachment extends Attachment {
  network: string;
  netns: string;
  args: Array<[string, string]>;
  capabilityArgs: Record<string, unknown>;
  /** The list its ADD ran, when the entry holds one this library can run. */
  config?: NetworkList;
}

/** Every attachment libcni's cache under `cacheDir` holds, of any network (libcni's GetCachedAttachments). */
export function cachedAttachments(cacheDir: string): CachedAttachment[] {
  const dir = join(cacheDir, 'results');
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
  const found: CachedAttachment[] = [];
  for (const name of names) {
    const e = parseCacheEntry(join(dir, name));
    if (!e || typeof e.containerId !== 'string' || typeof e.ifName !== 'string' || typeof e.networkName !== 'string' || !e.ifName || !e.networkName) continue;
    found.push({
      network: e.networkName, containerID: e.containerId, ifname: e.ifName, netns: typeof e.netns === 'string' ? e.netns : '',
      ...runtimeArgsOf(e), ...configOf(e, name),
    });
  }
  return found;
}

/** The list a cache entry's config (base64 JSON, as Go writes bytes) holds; none when it cannot be read or run. */
function configOf(e: CacheEntry, file: string): { config?: NetworkList } {
  if (typeof e.config !== 'string') return {};
  try {
    return { config: parseNetworkList(JSON.parse(Buffer.from(e.config, 'base64').toString('utf8')), `libcni cache ${file}`) };
  } catch {
    return {};
  }
}

function removeCache(network: string, rt: RuntimeConf, cacheDir: string): void {
  let file: string;
  try {
    file = cacheFile(network, rt, cacheDir);
  } catch {
    return; // no ADD can have cached a result under a name the cache refuses
  }
  fs.rmSync(file, { force: true });
}
