// Fuzz target: the parsers of everything a container's author or a runtime hands the hook: the
// OCI state (text and stdin), config.json (through the bundle, as the hook reads it), the
// annotation (from the state), a netDevices object, and the policy (text and file, then applied
// to devices). Inputs are random JSON, mutations of valid documents (structure and text), deep
// nesting, and documents just over each size limit. Only ConfigError may come out, and a
// document over its limit must be refused for its size.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rng } from './prng';
import type { CaseResult, Target } from './target';
import { ConfigError } from '../../src/errors';
import {
  ANNOTATION, MAX_ANNOTATION_BYTES, MAX_CONFIG_BYTES, MAX_POLICY_BYTES, MAX_STATE_BYTES, checkPolicy, loadContainerRequest,
  loadPolicy, parseNetDevices, parsePolicy, parseState, readStdinState,
} from '../../src/config';
import type { DeviceSpec, OciState } from '../../src/config';

// ---------------------------------------------------------------------------------------------
// Material.

const KEYS = [
  'ociVersion', 'id', 'status', 'pid', 'bundle', 'annotations', 'linux', 'netDevices', 'namespaces', 'type', 'path',
  'name', 'mtu', 'mac', 'master', 'mode', 'addresses', 'config', 'annotation', 'allowDevices', 'allowMasters',
  'allowModes', 'maxDevices', ANNOTATION, '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'eth0', 'eth1', 'lo', 'x%d', '', ' ',
  'é', '\u00a0', 'a/b', '..', 'network', '0', '10',
];

const STRINGS = [
  '', '.', '..', 'eth0', 'eth1', 'lo', 'veth0', 'eth%d', 'e%dx', '%d%d', 'a/b', 'x:y', ' ', '\t', '\u00a0', 'à', 'é',
  '\ud800', '\udfff', '\u0000', 'x'.repeat(15), 'x'.repeat(16), '__proto__', 'constructor', 'host', 'veth', 'macvlan',
  'bridge', 'private', 'vepa', 'passthru', 'network', '/run/netns/x', 'relative', '10.0.0.1/24', '0.0.0.0/0', '::/0',
  '::/129', '1.2.3.4/33', 'fe80::1%eth0/64', '02:00:00:00:00:01', '01:00:00:00:00:00', '00:00:00:00:00:00',
  'AA:BB:CC:DD:EE:FF', '*', '?', '[', ']', '[!]', '[a-]', '[z-a]', '\\', 'eth[0-9]', '**', '*[', 'creating', 'stopped',
  '1.0.2', '{"eth0":{}}', '{', 'null', '[]',
];

const NUMBERS = [0, -1, 1, 42, 67, 68, 1500, 65535, 65536, 255, 256, 257, 1.5, -0.5, 1e21, -1e21, 2 ** 31, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER];

function randomString(rng: Rng): string {
  if (rng.chance(0.7)) return rng.pick(STRINGS);
  const cs: string[] = [];
  for (let i = rng.small(24); i > 0; i--) cs.push(String.fromCodePoint(rng.chance(0.8) ? rng.range(0x20, 0x7e) : rng.range(0, 0x10ffff)));
  return cs.join('');
}

function randomValue(rng: Rng, depth: number): unknown {
  const k = rng.int(depth > 4 ? 5 : 8);
  switch (k) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: return rng.pick(NUMBERS);
    case 3:
    case 4: return randomString(rng);
    case 5: return Array.from({ length: rng.small(6) }, () => randomValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.small(6); i > 0; i--) o[rng.chance(0.8) ? rng.pick(KEYS) : randomString(rng)] = randomValue(rng, depth + 1);
      return o;
    }
  }
}

const DEVICES = {
  eth1: {},
  eth2: { name: 'ceth2' },
  eth3: { name: 'net%d', mtu: 9000, mac: 'aa:bb:cc:dd:ee:01' },
  vh0: { type: 'veth', name: 'c0', mtu: 1500, addresses: ['10.1.0.2/24', 'fd00::2/64'] },
  mv0: { type: 'macvlan', master: 'br0', mode: 'vepa', name: 'm0', addresses: ['192.0.2.9/32'] },
};

const SEEDS = {
  state: { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 42, bundle: '/b', annotations: { [ANNOTATION]: JSON.stringify({ eth9: {} }) } },
  config: {
    ociVersion: '1.0.2-dev',
    annotations: { [ANNOTATION]: JSON.stringify({ vh9: { type: 'veth' } }), other: 'x' },
    linux: { namespaces: [{ type: 'pid' }, { type: 'network', path: '/run/netns/x' }], netDevices: DEVICES },
  },
  annotation: DEVICES,
  policy: {
    config: { allowDevices: ['eth*', 'vh?'], allowMasters: ['br[0-9]'], allowModes: ['bridge', 'v*'], maxDevices: 4 },
    annotation: { allowDevices: ['pod-[!x]*', 'v\\*'], allowMasters: ['eth1'], allowModes: ['*'], maxDevices: 2 },
  },
};

/** A structural mutation of a JSON value: replace, delete, add, retype, duplicate. */
function mutateValue(rng: Rng, v: unknown, depth = 0): unknown {
  if (depth > 0 && rng.chance(0.15)) return randomValue(rng, depth);
  if (Array.isArray(v)) {
    const a = v.map((x) => (rng.chance(0.3) ? mutateValue(rng, x, depth + 1) : x));
    if (rng.chance(0.2)) a.push(randomValue(rng, depth + 1));
    if (rng.chance(0.1) && a.length) a.splice(rng.int(a.length), 1);
    if (rng.chance(0.05)) return Array.from({ length: rng.range(100, 1100) }, (_, i) => a[i % Math.max(a.length, 1)] ?? 'x');
    return a;
  }
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [key, x] of Object.entries(v)) {
      if (rng.chance(0.08)) continue;
      const k = rng.chance(0.05) ? randomString(rng) : key;
      o[k] = rng.chance(0.35) ? mutateValue(rng, x, depth + 1) : x;
    }
    if (rng.chance(0.2)) o[rng.pick(KEYS)] = randomValue(rng, depth + 1);
    if (rng.chance(0.03)) {
      // Many entries: the device and glob counts.
      for (let i = rng.range(200, 300); i > 0; i--) o[`d${i}`] = rng.chance(0.5) ? {} : { type: 'veth' };
    }
    return o;
  }
  if (typeof v === 'string') {
    if (rng.chance(0.4)) return randomString(rng);
    // A JSON text inside a string (the annotation): mutate it too.
    try {
      return JSON.stringify(mutateValue(rng, JSON.parse(v), depth + 1));
    } catch {
      return v + randomString(rng);
    }
  }
  if (typeof v === 'number') return rng.pick(NUMBERS);
  return randomValue(rng, depth);
}

const TOKENS = ['{', '}', '[', ']', '"', ':', ',', '\\', '\\u', '\\ud800', 'null', '-', '1e999', '0.5', '"x"', ' ', '\u0000', '\ufeff', '/*', '\n'];

function mutateText(rng: Rng, text: string): string {
  let s = text;
  for (let n = rng.range(1, 3); n > 0; n--) {
    const at = rng.int(s.length + 1);
    const op = rng.int(5);
    if (op === 0) s = s.slice(0, at) + rng.pick(TOKENS) + s.slice(at);
    else if (op === 1) s = s.slice(0, at) + s.slice(at + rng.range(1, 6));
    else if (op === 2) s = s.slice(0, at);
    else if (op === 3) s = s.slice(0, at) + s.slice(rng.int(s.length + 1)).slice(0, 40) + s.slice(at);
    else s = s.slice(0, at) + String.fromCharCode(rng.int(0x80)) + s.slice(at + 1);
  }
  return s;
}

function deep(rng: Rng): string {
  const n = rng.range(1000, 200_000);
  return rng.chance(0.5) ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n);
}

type Doc = keyof typeof SEEDS;

/** The text of one case for `doc`, and the byte limit it is held to. */
function documentText(rng: Rng, doc: Doc, limit: number): string {
  const r = rng.int(100);
  if (r < 2 && Number.isFinite(limit)) {
    // Just over the limit, padded inside valid JSON.
    const base = JSON.stringify(SEEDS[doc]);
    return base.slice(0, -1) + `,"pad":"${'x'.repeat(limit - base.length + rng.range(0, 8))}"}`;
  }
  if (r < 5) return deep(rng);
  if (r < 15) return JSON.stringify(randomValue(rng, 0));
  const mutated = JSON.stringify(mutateValue(rng, SEEDS[doc]));
  return r < 60 ? mutated : mutateText(rng, mutated);
}

// ---------------------------------------------------------------------------------------------
// The target.

let dir = '';
let bundle = '';
let policyPath = '';
let stateFile = '';

const SPECS: DeviceSpec[] = [
  { key: 'eth1', kind: 'host', name: 'eth1', source: 'config' },
  { key: 'pod-1', kind: 'host', name: 'net%d', source: 'annotation' },
  { key: 'v*', kind: 'veth', name: 'c0', source: 'annotation' },
  { key: 'm0', kind: 'macvlan', name: 'm0', master: 'eth1', mode: 'bridge', source: 'annotation' },
  { key: 'é[', kind: 'host', name: 'x', source: 'config' },
];

function run(rng: Rng): { doc: string; text: string; limit: number; fn: () => unknown } {
  const which = rng.int(7);
  const state = (extra: Partial<OciState> = {}): OciState => ({ ociVersion: '1.0.2', id: 'c', status: 'creating', bundle, ...extra });
  switch (which) {
    case 0: {
      const text = documentText(rng, 'state', MAX_STATE_BYTES);
      return { doc: 'state', text, limit: MAX_STATE_BYTES, fn: () => parseState(rng.chance(0.5) ? text : Buffer.from(text)) };
    }
    case 1: {
      const text = documentText(rng, 'state', MAX_STATE_BYTES);
      return {
        doc: 'state on stdin', text, limit: MAX_STATE_BYTES,
        fn: () => {
          fs.writeFileSync(stateFile, text);
          const fd = fs.openSync(stateFile, 'r');
          try { return readStdinState(fd, 0); } finally { fs.closeSync(fd); }
        },
      };
    }
    case 2: {
      // Big configs are costly to write: over-limit ones are rarer here.
      const text = rng.chance(0.2) ? documentText(rng, 'config', MAX_CONFIG_BYTES) : JSON.stringify(mutateValue(rng, SEEDS.config));
      return {
        doc: 'config.json', text, limit: MAX_CONFIG_BYTES,
        fn: () => {
          fs.writeFileSync(path.join(bundle, 'config.json'), text);
          return loadContainerRequest(state());
        },
      };
    }
    case 3: {
      const text = documentText(rng, 'annotation', MAX_ANNOTATION_BYTES);
      return { doc: 'annotation', text, limit: MAX_ANNOTATION_BYTES, fn: () => loadContainerRequest(state({ annotations: { [ANNOTATION]: text } })) };
    }
    case 4: {
      const text = documentText(rng, 'annotation', Infinity);
      return {
        doc: 'netDevices', text, limit: Infinity,
        fn: () => {
          let v: unknown;
          try { v = JSON.parse(text); } catch { return undefined; }
          return parseNetDevices(v, rng.chance(0.5) ? 'config' : 'annotation');
        },
      };
    }
    case 5: {
      const text = documentText(rng, 'policy', MAX_POLICY_BYTES);
      return {
        doc: 'policy', text, limit: MAX_POLICY_BYTES,
        fn: () => {
          const p = parsePolicy(text, '/etc/oci-netdev/policy.json');
          checkPolicy(SPECS.filter(() => rng.chance(0.6)), p);
          return p;
        },
      };
    }
    default: {
      const text = documentText(rng, 'policy', MAX_POLICY_BYTES);
      return {
        doc: 'policy file', text, limit: MAX_POLICY_BYTES,
        fn: () => {
          fs.writeFileSync(policyPath, text, { mode: 0o644 });
          return loadPolicy(policyPath, true);
        },
      };
    }
  }
}

export const parsersTarget: Target = {
  name: 'parsers',
  setup() {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-fuzz-'));
    bundle = path.join(dir, 'bundle');
    fs.mkdirSync(bundle);
    policyPath = path.join(dir, 'policy.json');
    stateFile = path.join(dir, 'state.json');
    // The annotation case reads this config.json; the config.json case overwrites it.
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', linux: { namespaces: [{ type: 'network' }] } }));
  },
  teardown() {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  },
  runCase(rng: Rng): CaseResult {
    const c = run(rng);
    const size = Buffer.byteLength(c.text);
    const show = () => `${c.doc}: ${c.text.length > 2000 ? `${c.text.slice(0, 2000)}... (${size} bytes)` : c.text}`;
    // The annotation is read from the state here, so the config.json case must not leave a broken one behind.
    try {
      c.fn();
      if (size > c.limit) return { ok: false, kind: 'limit-ignored', message: `${c.doc} of ${size} bytes accepted over its ${c.limit}-byte limit`, input: show() };
      return { ok: true, outcome: `${c.doc}: accepted` };
    } catch (err) {
      if (!(err instanceof ConfigError)) return { ok: false, kind: 'untyped-error', message: String((err as Error)?.stack ?? err), input: show() };
      if (size > c.limit && !/larger than/.test(err.message)) {
        return { ok: false, kind: 'limit-late', message: `${c.doc} over its limit refused for another reason: ${err.message}`, input: show() };
      }
      if (/\n/.test(err.message)) return { ok: false, kind: 'multi-line', message: err.message, input: show() };
      return { ok: true, outcome: `${c.doc}: ConfigError` };
    } finally {
      if (c.doc === 'config.json') {
        fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', linux: { namespaces: [{ type: 'network' }] } }));
      }
    }
  },
};
