// Running a network list as libcni does: each plugin at the highest version both sides speak,
// ADD through the chain with the previous result, DEL in reverse with the cached final result,
// CHECK against it, STATUS and GC per plugin; runtimeConfig filtered by each plugin's
// capabilities; the final result cached in libcni's layout (CACHE_DIR/results/NET-ID-IFNAME) so
// that other tools can DEL what we added. Every failure is one line naming the network, the
// operation, the plugin and the CNI code.

import * as fs from 'node:fs';
import { join } from 'node:path';
import { execPlugin, findPlugin, pluginVersions } from './invoke';
import type { CniCommand } from './invoke';
import type { NetworkList, PluginConf } from './conf';
import { CniCode, CniError, atLeast, compareVersions, parseResult, toVersion } from './spec';
import type { CniResult } from './spec';
import { replaceFile, TEMP_SUFFIX } from '../state/files';

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

/** The plugin's path and the version to speak with it: the highest the list and the plugin share. */
function negotiate(list: NetworkList, plugin: PluginConf, opts: CniOptions): { exe: string; version: string } {
  const exe = findPlugin(plugin.type, opts.path);
  const theirs = pluginVersions(exe, list.cniVersion, { path: opts.path, timeoutMs: opts.timeoutMs });
  const version = list.versions.find((v) => theirs.includes(v));
  if (!version) {
    throw new CniError(CniCode.incompatibleVersion,
      `${plugin.type}: speaks ${theirs.join(', ') || 'no version'}, the network ${list.versions.join(', ')}`);
  }
  return { exe, version };
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
      const { exe, version } = negotiate(list, plugin, opts);
      const out = execPlugin(exe, pluginConfig(list, plugin, version, rt.capabilityArgs, prev), invokeArgs('ADD', rt, opts));
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
 * DEL through the chain in reverse, each plugin of 0.4.0 and later given the final ADD result
 * (`cached`, else the cache's, else none: DEL must work after a failed ADD). The cache entry goes
 * once every plugin succeeded; the first failure stops the chain, as libcni does.
 */
export function delNetworkList(list: NetworkList, rt: RuntimeConf, opts: CniOptions, cached?: CniResult): void {
  const prev = cached ?? readCachedResult(list.name, rt, opts.cacheDir);
  try {
    for (const plugin of [...list.plugins].reverse()) {
      const { exe, version } = negotiate(list, plugin, opts);
      const withPrev = prev && atLeast(version, '0.4.0') ? prev : undefined;
      execPlugin(exe, pluginConfig(list, plugin, version, rt.capabilityArgs, withPrev), invokeArgs('DEL', rt, opts));
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
      const { exe, version } = negotiate(list, plugin, opts);
      if (!atLeast(version, '0.4.0')) throw new CniError(CniCode.incompatibleVersion, `${plugin.type}: CHECK needs 0.4.0 (it speaks ${version})`);
      execPlugin(exe, pluginConfig(list, plugin, version, rt.capabilityArgs, prev), invokeArgs('CHECK', rt, opts));
    }
  } catch (err) {
    throw chainError(list, 'CHECK', err);
  }
}

/**
 * STATUS or GC of each plugin that speaks 1.1.0 (older ones know neither and are skipped, as
 * libcni does). GC is given the attachments still valid.
 */
export function maintainNetworkList(
  list: NetworkList, command: 'STATUS' | 'GC', opts: CniOptions, validAttachments: Array<{ containerID: string; ifname: string }> = [],
): void {
  try {
    for (const plugin of list.plugins) {
      const { exe, version } = negotiate(list, plugin, opts);
      if (!atLeast(version, '1.1.0')) continue;
      const conf = pluginConfig(list, plugin, version, {});
      if (command === 'GC') conf['cni.dev/valid-attachments'] = validAttachments;
      execPlugin(exe, conf, { command, path: opts.path, timeoutMs: opts.timeoutMs });
    }
  } catch (err) {
    throw chainError(list, command, err);
  }
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
  result?: unknown;
  cniArgs?: unknown;
  capabilityArgs?: unknown;
}

function readCacheEntry(network: string, rt: Pick<RuntimeConf, 'containerId' | 'ifname'>, cacheDir: string): CacheEntry | undefined {
  try {
    const entry = JSON.parse(fs.readFileSync(cacheFile(network, rt, cacheDir), 'utf8')) as CacheEntry;
    return typeof entry === 'object' && entry !== null && entry.kind === CACHE_KIND ? entry : undefined;
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

/** The CNI_ARGS and capability args ADD was given, from the cache: what CHECK and DEL need again (portmap's rules). */
export function cachedRuntimeArgs(
  network: string, rt: Pick<RuntimeConf, 'containerId' | 'ifname'>, cacheDir: string,
): Pick<RuntimeConf, 'args' | 'capabilityArgs'> | undefined {
  const entry = readCacheEntry(network, rt, cacheDir);
  if (!entry) return undefined;
  const pairs = Array.isArray(entry.cniArgs) ? entry.cniArgs : [];
  const args = pairs.filter((p): p is [string, string] => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'string'));
  const caps = entry.capabilityArgs;
  return { args, capabilityArgs: typeof caps === 'object' && caps !== null && !Array.isArray(caps) ? (caps as Record<string, unknown>) : {} };
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

/** The attachments (container id, interface) the cache holds for `network`: GC keeps them. */
export function cachedAttachments(network: string, cacheDir: string): Array<{ containerID: string; ifname: string }> {
  const dir = join(cacheDir, 'results');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const found: Array<{ containerID: string; ifname: string }> = [];
  for (const name of names.filter((n) => n.startsWith(`${network}-`))) {
    try {
      const e = JSON.parse(fs.readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
      if (e.kind === CACHE_KIND && e.networkName === network && typeof e.containerId === 'string' && typeof e.ifName === 'string') {
        found.push({ containerID: e.containerId, ifname: e.ifName });
      }
    } catch {
      // a torn or foreign file: not an attachment
    }
  }
  return found;
}
