// The device policy: which host devices each source of requests may use.
//
// The hook runs as root, but whoever writes its input is not always root's equal: on podman and
// CRI-O nodes the annotation oci-netdev.netDevices comes from whoever may create a container or a
// pod. The policy file (root's, spec/policy.schema.json) says, per source, which host devices may
// be moved or created (allowDevices), which masters macvlan devices may use (allowMasters), which
// macvlan modes they may use (allowModes), which host bridges veth host ends may join
// (allowBridges), and how many entries a container may ask for
// (maxDevices). Without a file, linux.netDevices in config.json may use every device and mode (as
// before policies existed) and the annotation no device, no bridge, and macvlan mode bridge only.
//
// These checks need only names, so they run before anything is observed (a host entry with a
// selector is checked once the engine has found its device). The rules that need
// kernel state (what the host depends on, what the kernel cannot move, claims) are the planner's
// (src/plan/refusals.ts) and apply whatever the policy says.

import { ConfigError, PolicyError, preview, show } from '../errors';
import { ANNOTATION, MAX_DEVICES } from './load';
import { parseJson } from './read';
import { readRegularFile, sizeText } from '../state/files';
import { validate } from '../schema/validate';
import type { DeviceSource, DeviceSpec, MacvlanMode, NetworkSpec } from './types';
import { hostDeviceName } from './types';

export const DEFAULT_POLICY_FILE = '/etc/oci-netdev/policy.json';
export const MAX_POLICY_BYTES = 1024 * 1024;
/** Longest glob accepted, in characters; device names have at most 15 bytes. */
const MAX_GLOB_LENGTH = 256;

const WHERE: Record<DeviceSource, string> = {
  config: 'linux.netDevices',
  annotation: `annotation ${ANNOTATION}`,
  cni: 'the CNI network config',
};

// ---------------------------------------------------------------------------------------------
// Globs: `*` any run of characters, `?` one character, `[...]` one character of a set (`[a-z]`,
// `[!0-9]` or `[^0-9]`; `]` first in the set is literal), `\` quotes the next character.
// Characters are Unicode code points. Matching is linear-backtracking, never exponential.

type Token =
  | { t: 'char'; c: string }
  | { t: 'any' }
  | { t: 'star' }
  | { t: 'set'; negate: boolean; ranges: [string, string][] };

export interface Glob {
  readonly pattern: string;
  matches(name: string): boolean;
}

/** Why `pattern` is not a valid glob, or undefined. */
export function checkGlob(pattern: string): string | undefined {
  try {
    parseGlob(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Compiles a glob; throws an Error whose message says what is wrong with it. */
export function compileGlob(pattern: string): Glob {
  const tokens = parseGlob(pattern);
  return { pattern, matches: (name: string) => matchTokens(tokens, Array.from(name)) };
}

function parseGlob(pattern: string): Token[] {
  if (typeof pattern !== 'string') throw new Error('must be a string');
  const cs = Array.from(pattern);
  if (cs.length === 0) throw new Error('must not be empty');
  if (cs.length > MAX_GLOB_LENGTH) throw new Error(`must be at most ${MAX_GLOB_LENGTH} characters`);
  const tokens: Token[] = [];
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i];
    if (c === '\\') {
      if (i + 1 >= cs.length) throw new Error("ends in a lone '\\'");
      tokens.push({ t: 'char', c: cs[++i] });
    } else if (c === '*') {
      if (tokens.at(-1)?.t !== 'star') tokens.push({ t: 'star' });
    } else if (c === '?') {
      tokens.push({ t: 'any' });
    } else if (c === '[') {
      let j = i + 1;
      const negate = cs[j] === '!' || cs[j] === '^';
      if (negate) j++;
      const ranges: [string, string][] = [];
      let first = true;
      for (;;) {
        if (j >= cs.length) throw new Error(`has an unterminated '[' at character ${i + 1}`);
        let lo = cs[j];
        if (lo === ']' && !first) break;
        first = false;
        if (lo === '\\') {
          if (++j >= cs.length) throw new Error(`has an unterminated '[' at character ${i + 1}`);
          lo = cs[j];
        }
        let hi = lo;
        if (cs[j + 1] === '-' && j + 2 < cs.length && cs[j + 2] !== ']') {
          j += 2;
          hi = cs[j];
          if (hi === '\\') {
            if (++j >= cs.length) throw new Error(`has an unterminated '[' at character ${i + 1}`);
            hi = cs[j];
          }
          if (hi.codePointAt(0)! < lo.codePointAt(0)!) throw new Error(`has a reversed range ${lo}-${hi}`);
        }
        ranges.push([lo, hi]);
        j++;
      }
      tokens.push({ t: 'set', negate, ranges });
      i = j;
    } else {
      tokens.push({ t: 'char', c });
    }
  }
  return tokens;
}

function matchOne(tok: Token, c: string): boolean {
  switch (tok.t) {
    case 'char':
      return tok.c === c;
    case 'any':
      return true;
    case 'set': {
      const cp = c.codePointAt(0)!;
      const hit = tok.ranges.some(([lo, hi]) => cp >= lo.codePointAt(0)! && cp <= hi.codePointAt(0)!);
      return hit !== tok.negate;
    }
    default:
      return false;
  }
}

/** Classic wildcard matching: on a mismatch, let the last `*` take one more character. */
function matchTokens(tokens: Token[], cs: string[]): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < cs.length) {
    if (p < tokens.length && tokens[p].t === 'star') {
      starP = p++;
      starS = s;
    } else if (p < tokens.length && matchOne(tokens[p], cs[s])) {
      p++;
      s++;
    } else if (starP >= 0) {
      p = starP + 1;
      s = ++starS;
    } else {
      return false;
    }
  }
  while (p < tokens.length && tokens[p].t === 'star') p++;
  return p === tokens.length;
}

// ---------------------------------------------------------------------------------------------
// The policy document.

type ListField = 'allowDevices' | 'allowMasters' | 'allowModes' | 'allowBridges' | 'allowNetworks';

/** Every macvlan mode, the names allowModes globs match against. */
const MACVLAN_MODE_NAMES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];

interface PolicySection {
  allowDevices: Glob[];
  allowMasters: Glob[];
  allowModes: Glob[];
  /** Host bridges that the host end of a veth may join (hostBridge). */
  allowBridges: Glob[];
  /** CNI networks (type cni entries) by name. */
  allowNetworks: Glob[];
  maxDevices: number;
  /** Which fields the file gave; the others hold their defaults. */
  given: { allowDevices: boolean; allowMasters: boolean; allowModes: boolean; allowBridges: boolean; allowNetworks: boolean; maxDevices: boolean };
}

export interface Policy {
  /** The policy file, given or default; named in every refusal. */
  file: string;
  /** False when the file does not exist and the defaults apply. */
  exists: boolean;
  config: PolicySection;
  annotation: PolicySection;
  /** The CNI plugin's network configs, written by root like config.json: every device by default. */
  cni: PolicySection;
}

interface SectionDoc {
  allowDevices?: string[];
  allowMasters?: string[];
  allowModes?: string[];
  allowBridges?: string[];
  allowNetworks?: string[];
  maxDevices?: number;
}

/**
 * Defaults per source and field: config.json may use any device and mode, the annotation no
 * device, and only macvlan mode bridge (the others reach the master's own traffic: passthru hands
 * the whole master over, vepa and private depend on the switch beyond it).
 */
const DEFAULT_GLOBS: Record<DeviceSource, Record<ListField, string[]>> = {
  config: { allowDevices: ['*'], allowMasters: ['*'], allowModes: ['*'], allowBridges: ['*'], allowNetworks: ['*'] },
  annotation: { allowDevices: [], allowMasters: [], allowModes: ['bridge'], allowBridges: [], allowNetworks: [] },
  cni: { allowDevices: ['*'], allowMasters: ['*'], allowModes: ['*'], allowBridges: ['*'], allowNetworks: ['*'] },
};

function section(source: DeviceSource, doc: SectionDoc | undefined, where: string): PolicySection {
  const globs = (field: ListField): Glob[] =>
    (doc?.[field] ?? DEFAULT_GLOBS[source][field]).map((pattern, i) => {
      const f = `${source}.${field}[${i}]`;
      let glob: Glob;
      try {
        glob = compileGlob(pattern);
      } catch (err) {
        throw new ConfigError(`${where}: ${f}: ${(err as Error).message} (got ${preview(pattern)})`, { field: f });
      }
      // A misspelt mode would otherwise allow nothing, silently.
      if (field === 'allowModes' && !MACVLAN_MODE_NAMES.some((m) => glob.matches(m))) {
        throw new ConfigError(`${where}: ${f}: matches no macvlan mode; the modes are ${MACVLAN_MODE_NAMES.join(', ')} (got ${preview(pattern)})`, { field: f });
      }
      return glob;
    });
  return {
    allowDevices: globs('allowDevices'),
    allowMasters: globs('allowMasters'),
    allowModes: globs('allowModes'),
    allowBridges: globs('allowBridges'),
    allowNetworks: globs('allowNetworks'),
    maxDevices: doc?.maxDevices ?? MAX_DEVICES,
    given: {
      allowDevices: doc?.allowDevices !== undefined,
      allowMasters: doc?.allowMasters !== undefined,
      allowModes: doc?.allowModes !== undefined,
      allowBridges: doc?.allowBridges !== undefined,
      allowNetworks: doc?.allowNetworks !== undefined,
      maxDevices: doc?.maxDevices !== undefined,
    },
  };
}

/** The policy in force when `file` does not exist. */
export function defaultPolicy(file = DEFAULT_POLICY_FILE): Policy {
  const where = `policy ${show(file)}`;
  return {
    file, exists: false, config: section('config', undefined, where), annotation: section('annotation', undefined, where), cni: section('cni', undefined, where),
  };
}

/** Parses and validates a policy document; `file` is named in errors and refusals. */
export function parsePolicy(text: string | Buffer, file: string): Policy {
  const where = `policy ${show(file)}`;
  const size = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  if (size > MAX_POLICY_BYTES) throw new ConfigError(`${where}: larger than ${sizeText(MAX_POLICY_BYTES)} (${size} bytes)`);
  const doc = parseJson(text, where);
  validate('policy', doc, where);
  const d = doc as { config?: SectionDoc; annotation?: SectionDoc; cni?: SectionDoc };
  return {
    file, exists: true, config: section('config', d.config, where), annotation: section('annotation', d.annotation, where), cni: section('cni', d.cni, where),
  };
}

/**
 * Reads the policy. A missing default file means the defaults; a missing file that was asked for
 * (`explicit`: --policy or OCI_NETDEV_POLICY) is an error, so a typo cannot loosen anything.
 * The file must be a regular file, not a symbolic link, owned by root (or by us) and writable by
 * its owner only: whoever can write it decides which devices containers get.
 */
export function loadPolicy(file = DEFAULT_POLICY_FILE, explicit = false): Policy {
  const where = `policy ${show(file)}`;
  if (!file.startsWith('/')) throw new ConfigError(`${where}: must be an absolute path`);
  const text = readRegularFile(file, {
    where, maxBytes: MAX_POLICY_BYTES, symlinkHint: '; give the file itself', owner: 'root-or-self', ownerWritesOnly: true, missingOk: true,
  });
  if (text === null && !explicit) return defaultPolicy(file);
  if (text === null) throw new ConfigError(`${where}: does not exist`);
  return parsePolicy(text, file);
}

// ---------------------------------------------------------------------------------------------
// Enforcement.

/** "policy FILE", or the default policy and the file that does not exist: how refusals name it. */
export function policyRef(policy: Policy): string {
  return policy.exists ? `policy ${show(policy.file)}` : `the default policy (${show(policy.file)} does not exist)`;
}

function listText(policy: Policy, source: DeviceSource, field: ListField): string {
  const s = policy[source];
  const rule = `${source}.${field}`;
  if (s.given[field]) return `${rule} ${JSON.stringify(s[field].map((g) => g.pattern))}`;
  const what = { allowModes: 'mode', allowBridges: 'bridge', allowNetworks: 'network' }[field as string] ?? 'device';
  const defaults = DEFAULT_GLOBS[source][field];
  const allows = defaults.includes('*') ? `every ${what}` : defaults.length ? `only ${defaults.join(', ')}` : `no ${what}`;
  return `${rule}, which allows ${allows} by default`;
}

/** The first policy refusal among `devices`, thrown as a PolicyError; nothing when all pass. */
export function checkPolicy(devices: DeviceSpec[], policy: Policy): void {
  const refuse = (d: DeviceSpec, what: string, field: ListField): never => {
    const rule = `${d.source}.${field}`;
    throw new PolicyError(
      `device ${show(d.key)}: ${what} is refused for ${WHERE[d.source]} by ${policyRef(policy)}: ` +
        `it matches no pattern of ${listText(policy, d.source, field)}`,
      { device: d.key, source: d.source, rule, policyFile: policy.file },
    );
  };
  for (const d of devices) {
    const s = policy[d.source];
    if (d.kind === 'macvlan') {
      const master = d.master ?? '';
      if (!s.allowMasters.some((g) => g.matches(master))) refuse(d, `macvlan master ${show(master)}`, 'allowMasters');
      const mode = d.mode ?? 'bridge';
      if (!s.allowModes.some((g) => g.matches(mode))) refuse(d, `macvlan mode ${mode}`, 'allowModes');
    } else if (d.select && d.device === undefined) {
      // Its device is known once the engine has resolved the selector; checked again then.
    } else if (!s.allowDevices.some((g) => g.matches(hostDeviceName(d)))) {
      const picked = d.select ? ` (${d.select.by} ${d.select.value})` : '';
      refuse(d, d.kind === 'veth' ? `veth host end ${show(d.key)}` : `host device ${show(hostDeviceName(d))}${picked}`, 'allowDevices');
    }
    if (d.hostBridge !== undefined && !s.allowBridges.some((g) => g.matches(d.hostBridge!))) {
      refuse(d, `host bridge ${show(d.hostBridge)}`, 'allowBridges');
    }
  }
  for (const source of ['config', 'annotation', 'cni'] as const) {
    const mine = devices.filter((d) => d.source === source);
    const max = policy[source].maxDevices;
    if (mine.length > max) {
      const d = mine[max];
      const rule = `${source}.maxDevices`;
      throw new PolicyError(
        `device ${show(d.key)}: ${WHERE[source]} asks for ${mine.length} devices, more than ${rule} (${max}) ` +
          `of ${policyRef(policy)} allows`,
        { device: d.key, source, rule, policyFile: policy.file },
      );
    }
  }
}

/** The first cni entry whose network the policy of its source does not allow, thrown as a PolicyError. */
export function checkNetworkPolicy(networks: NetworkSpec[], policy: Policy): void {
  for (const n of networks) {
    if (policy[n.source].allowNetworks.some((g) => g.matches(n.network))) continue;
    const rule = `${n.source}.allowNetworks`;
    throw new PolicyError(
      `device ${show(n.network)}: CNI network ${show(n.network)} is refused for ${WHERE[n.source]} by ${policyRef(policy)}: ` +
        `it matches no pattern of ${listText(policy, n.source, 'allowNetworks')}`,
      { device: n.network, source: n.source, rule, policyFile: policy.file },
    );
  }
}
