// Network configurations as libcni finds them: the files of NETCONFPATH (.conflist, and the
// single-plugin .conf/.json), looked up by the network's name, and the version a list speaks.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularFile } from '../fsio/files';
import { parseJsonText } from '../schema/json';
import { CniCode, CniError, compareVersions, isSupportedVersion } from './spec';

/** Where cnitool and libcni's users look when NETCONFPATH is unset. */
export const DEFAULT_NETCONF_PATH = '/etc/cni/net.d';
/** A network file larger than this is refused, not read. */
const MAX_CONF_BYTES = 1024 * 1024;

/** One plugin's configuration as the list holds it; `type` names the executable. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface NetworkList {
  name: string;
  /**
   * The highest version the list names (cniVersion, cniVersions) that this library speaks: every
   * plugin is run with it, as libcni does (no plugin is asked for its versions).
   */
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  plugins: PluginConf[];
  /** The list as loaded (a .conf made into a list), what the journal and libcni's cache keep. */
  raw: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(where: string, problem: string): never {
  throw new CniError(CniCode.invalidConfig, `${where}: ${problem}`);
}

function checkPlugin(p: unknown, where: string): PluginConf {
  if (!isObject(p)) invalid(where, 'a plugin must be a JSON object');
  if (typeof p.type !== 'string' || !p.type) invalid(where, 'a plugin needs a type');
  if (p.capabilities !== undefined && !isObject(p.capabilities)) invalid(where, `plugin ${p.type}: capabilities must be an object`);
  return p as PluginConf;
}

/** A list from a .conflist document, or from a single plugin's .conf/.json document. */
export function parseNetworkList(doc: unknown, where: string): NetworkList {
  if (!isObject(doc)) invalid(where, 'not a JSON object');
  let raw = doc;
  if (!Array.isArray(doc.plugins)) {
    // A single plugin: the list of that one plugin, under its name and version.
    if (doc.plugins !== undefined) invalid(where, 'plugins must be a list');
    raw = { cniVersion: doc.cniVersion, name: doc.name, plugins: [doc] };
  }
  const name = raw.name;
  if (typeof name !== 'string' || !name) invalid(where, 'the network has no name');
  const plugins = (raw.plugins as unknown[]).map((p) => checkPlugin(p, `${where}: network ${name}`));
  if (!plugins.length) invalid(where, `network ${name} has no plugins`);
  const named = [raw.cniVersion, ...(Array.isArray(raw.cniVersions) ? (raw.cniVersions as unknown[]) : [])].filter((v) => v !== undefined && v !== '');
  const versions = [...new Set(named.filter(isSupportedVersion))].sort((a, b) => compareVersions(b, a));
  if (!versions.length) {
    throw new CniError(CniCode.incompatibleVersion, `${where}: network ${name}: no supported cniVersion (got ${JSON.stringify(named)})`);
  }
  return { name, cniVersion: versions[0], disableCheck: raw.disableCheck === true, disableGC: raw.disableGC === true, plugins, raw };
}

/** The network files of `dir`, by name, as libcni lists them (a missing dir holds none). */
function confFiles(dir: string, exts: string[]): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CniError(CniCode.io, `cannot read ${dir}: ${(err as Error).message}`);
  }
  return names.filter((n) => exts.some((e) => n.endsWith(e))).sort().map((n) => join(dir, n));
}

function readDoc(file: string): unknown {
  const text = readRegularFile(file, { where: file, maxBytes: MAX_CONF_BYTES, follow: true });
  try {
    return parseJsonText(text.toString('utf8'));
  } catch (err) {
    throw new CniError(CniCode.decode, `${file}: ${(err as Error).message}`);
  }
}

/**
 * The network named `name` in `dir`: the first .conflist (by file name) with that name, else the
 * first .conf or .json. A file that cannot be parsed is skipped unless it is the match.
 */
export function loadNetworkList(dir: string, name: string): NetworkList {
  for (const exts of [['.conflist'], ['.conf', '.json']]) {
    for (const file of confFiles(dir, exts)) {
      let doc: unknown;
      try {
        doc = readDoc(file);
      } catch {
        continue; // another network's broken file is not this network's problem
      }
      const docName = isObject(doc) ? doc.name : undefined;
      if (docName === name) return parseNetworkList(doc, file);
    }
  }
  throw new CniError(CniCode.invalidConfig, `network ${name} not found in ${dir}`);
}
