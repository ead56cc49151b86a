// The layering rules of DESIGN.md that the code already keeps, checked on every `make test` so
// that it goes on keeping them: only native/ reaches C, the planner does no I/O, nothing below the
// front doors imports them, and the netlink layer stands on native/ alone. Reads the TypeScript
// sources' import lines; prints one line per violation and exits 1 if there is any.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');

function sources(dir) {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'generated' ? [] : sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Each import of a file: what it names (a package, or a repository path) and whether it is type-only. */
function imports(file) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^\s*import\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => {
    const spec = m[2];
    const target = spec.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : spec;
    return { target, typeOnly: Boolean(m[1]) };
  });
}

/** The layer of a repository path: native, or the folder under src/. */
const layerOf = (path) => (path.startsWith('native/') ? 'native' : path.startsWith('src/') ? path.split('/')[1] : null);

const NODE_IO = new Set(['fs', 'node:fs', 'net', 'node:net', 'child_process', 'node:child_process', 'os', 'node:os']);
const FRONT_DOORS = new Set(['cli', 'oci', 'cdi', 'cni']);

const rules = [
  ['only native/ loads koffi', (from, imp) => imp.target === 'koffi' && from !== 'native'],
  ['native/ stands on nothing of src/', (from, imp) => from === 'native' && layerOf(imp.target) !== null && layerOf(imp.target) !== 'native'],
  ['the planner does no I/O', (from, imp) => from === 'plan' && (NODE_IO.has(imp.target)
    || (!imp.typeOnly && ['native', 'netns', 'state', 'apply', 'engine', 'log'].includes(layerOf(imp.target))))],
  ['nothing below the front doors imports them', (from, imp) => !FRONT_DOORS.has(from) && FRONT_DOORS.has(layerOf(imp.target))
    && !(from === 'cdi' || from === 'oci')],
  ['the netlink layer stands on native/ and errors only', (from, imp) => from === 'netlink' && layerOf(imp.target) !== null
    && !['netlink', 'native', 'errors'].includes(layerOf(imp.target))],
];

const violations = [];
for (const file of [...sources('src'), ...sources('native')]) {
  const from = layerOf(file);
  for (const imp of imports(file)) {
    for (const [rule, broken] of rules) if (broken(from, imp)) violations.push(`${file}: imports ${imp.target}: ${rule}`);
  }
}
for (const v of violations) console.error(`check-layers: ${v}`);
if (violations.length) process.exit(1);
console.log(`check-layers: ${rules.length} rules hold`);
