// The layering of DESIGN.md, checked on every `make lint`. Reads the import and re-export lines of
// the TypeScript sources; prints one line per violation and exits 1 if there is any.
//
// Layers, top to bottom; a layer may import those below it, never one above it nor another of its
// own rank ("sideways"):
//   cli                       arguments only: it calls a front door, the engine or the logger
//   oci, cdi, cni             the front doors (cdi belongs to the OCI front door: it may use oci)
//   engine, log               attach, detach, gc, status; the logger of the front doors
//   apply                     the executor: steps against the kernel, the observation before planning
//   plan                      pure functions from wanted and observed state to steps
//   config, libcni            reading and validating the inputs; the CNI protocol library
//   state, netns              the journal; namespace handles and pins
//   netlink                   the rtnetlink codec and client
//   fsio                      safe file I/O (and the synchronous pause of polling loops)
//   native                    the only code that touches C (koffi)
//   model                     the vocabulary of devices every layer speaks (kinds, macvlan modes)
//   schema                    the validators compiled from spec/, for config and the journal
//   errors                    the error hierarchy, which every layer uses
// and some layers may not reach past the one that wraps what they need:
//   cli imports only front doors, the engine, log and errors (types from anywhere below);
//   the engine works on devices through apply and netns, never with netlink directly;
//   the planner does no I/O (only types, and constants, from the layers that do);
//   the journal's format is its own: state takes nothing from netlink (src/apply/convert-records.ts converts).
// A type-only import may go down any number of layers; it may not go up or sideways either.
// Inside a layer, no file imports itself back through others (no import cycle anywhere in src/,
// type-only imports included): each cycle is printed as the files around it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');

const RANK = {
  cli: 9,
  oci: 8, cdi: 8.5, cni: 8,
  engine: 7, log: 7,
  apply: 6,
  plan: 5,
  config: 4, libcni: 4,
  state: 3, netns: 3,
  netlink: 2,
  fsio: 1.5,
  native: 1,
  model: 0.7,
  schema: 0.5,
  errors: 0,
};

function sources(dir) {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'generated' ? [] : sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Each import or re-export of a file: what it names (a package, or a repository path) and whether it is type-only. */
function imports(file) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^'";]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => {
    const spec = m[2];
    const target = spec.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : spec;
    return { target, typeOnly: Boolean(m[1]) };
  });
}

/** The layer of a repository path: native, errors, or the folder under src/. */
function layerOf(path) {
  if (path.startsWith('native/')) return 'native';
  if (path === 'src/errors' || path === 'src/errors.ts') return 'errors';
  return path.startsWith('src/') ? path.split('/')[1] : null;
}

const NODE_IO = new Set(['fs', 'node:fs', 'net', 'node:net', 'child_process', 'node:child_process', 'os', 'node:os']);

const rules = [
  ['every folder of src/ has its place in the layers', (from, _imp, file) => from !== null && !(from in RANK) && `${file} is in no layer`],
  ['only native/ loads koffi', (from, imp) => imp.target === 'koffi' && from !== 'native'],
  ['dependencies point down', (from, imp) => {
    const to = layerOf(imp.target);
    return to !== null && to !== from && to in RANK && from in RANK && RANK[to] >= RANK[from];
  }],
  ['cli calls a front door, the engine or the logger', (from, imp) => from === 'cli' && !imp.typeOnly
    && ['config', 'libcni', 'plan', 'apply', 'state', 'netns', 'netlink', 'fsio', 'native'].includes(layerOf(imp.target))],
  ['the engine works on devices through apply and netns, not netlink', (from, imp) => from === 'engine' && !imp.typeOnly
    && layerOf(imp.target) === 'netlink'],
  ['the planner does no I/O', (from, imp) => from === 'plan' && (NODE_IO.has(imp.target)
    || (!imp.typeOnly && ['native', 'fsio', 'netns', 'state', 'libcni'].includes(layerOf(imp.target))))],
  ['the journal keeps its own types: state does not import netlink', (from, imp) => from === 'state' && layerOf(imp.target) === 'netlink'],
];

const violations = [];
for (const file of [...sources('src'), ...sources('native')]) {
  const from = layerOf(file);
  const seen = new Set();
  for (const imp of imports(file)) {
    for (const [rule, broken] of rules) {
      const hit = broken(from, imp, file);
      if (!hit) continue;
      const line = typeof hit === 'string' ? `${hit}: ${rule}` : `${file}: imports ${imp.target}: ${rule}`;
      if (!seen.has(line)) violations.push(line);
      seen.add(line);
    }
  }
}
/** The source file an import of the repository names (`./x` is x.ts or x/index.ts); null for a package. */
function fileOf(target) {
  if (!target.startsWith('src/')) return null;
  return [`${target}.ts`, `${target}/index.ts`, target].find((f) => f.endsWith('.ts') && existsSync(join(ROOT, f))) ?? null;
}

/** The import cycles among `files`: each strongly connected set of more than one file, or a file importing itself (Tarjan). */
function importCycles(files) {
  const edges = new Map(files.map((f) => [f, [...new Set(imports(f).map((i) => fileOf(i.target)).filter((t) => t !== null))]]));
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const cycles = [];
  const visit = (f) => {
    index.set(f, index.size);
    low.set(f, index.get(f));
    stack.push(f);
    onStack.add(f);
    for (const t of edges.get(f) ?? []) {
      if (!index.has(t)) {
        visit(t);
        low.set(f, Math.min(low.get(f), low.get(t)));
      } else if (onStack.has(t)) low.set(f, Math.min(low.get(f), index.get(t)));
    }
    if (low.get(f) !== index.get(f)) return;
    const set = [];
    let t;
    do {
      t = stack.pop();
      onStack.delete(t);
      set.push(t);
    } while (t !== f);
    if (set.length > 1 || edges.get(f).includes(f)) cycles.push(set.sort());
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return cycles;
}

const cycleRule = 'no import cycles inside src/';
for (const cycle of importCycles(sources('src'))) violations.push(`${cycle.join(', ')} import each other: ${cycleRule}`);

for (const v of violations) console.error(`check-layers: ${v}`);
if (violations.length) process.exit(1);
console.log(`check-layers: ${rules.length + 1} rules hold`);
