// Where a hook's time goes: create-runtime and poststop moving one device and eight, each run under
// `node --cpu-prof`, and every sample put in one category by its stack. The rows say why a target
// is or is not met: node's own start, loading our code, koffi, the kernel's work, fsync, sysctls,
// validation, garbage collection and our JavaScript. The profiler starts after node's bootstrap
// and costs a little itself, so the categories add up to less than a hook's wall time.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Fleet, settle, withFreshNetns } from './moves';
import { HOOK, RID, RUN_DIR, median, nsPath, ok } from './util';

/** One category per sample, the first rule that matches, in this order. */
export const CATEGORIES = [
  'loading our code (read, compile, module bodies)',
  'loading koffi (dlopen of its native module)',
  'C calls through koffi (netlink, setns, mount, flock)',
  'journal fsync',
  'per-device sysctls (/proc/sys)',
  'schema validation (config, state, journal)',
  'our JavaScript (plan, journal, netlink codec)',
  'node internals after bootstrap',
  'garbage collection',
  'V8 outside JavaScript (program)',
] as const;
export type Category = typeof CATEGORIES[number];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const BUNDLE = /\/dist\/oci-netdev\.js$/;
const LAUNCHER = /\/bin\/oci-netdev$/;

function categoryOf(stack: ProfileNode['callFrame'][]): Category | undefined {
  const leaf = stack[0];
  const has = (name: string) => stack.some((f) => f.functionName === name);
  if (leaf.functionName === '(garbage collector)') return 'garbage collection';
  if (leaf.functionName === '(program)') return 'V8 outside JavaScript (program)';
  // Idle: the thread waits (a child, the event loop); the wall time shows it, the profile need not.
  if (leaf.functionName === '(idle)' || leaf.functionName === '(root)') return undefined;
  if (leaf.functionName === 'fsync' || has('fsyncSync')) return 'journal fsync';
  if (has('Module._extensions..node')) return 'loading koffi (dlopen of its native module)';
  if (has('callC')) return 'C calls through koffi (netlink, setns, mount, flock)';
  if (has('readDeviceSysctls') || has('writeDeviceSysctl') || has('writable')) return 'per-device sysctls (/proc/sys)';
  const inBundle = stack.filter((f) => BUNDLE.test(f.url));
  if (inBundle.some((f) => f.functionName === 'validate')) return 'schema validation (config, state, journal)';
  // Anything below the CLI's main is the command's work; above it, the launcher loading the bundle.
  if (inBundle.some((f) => f.functionName === 'main')) return BUNDLE.test(leaf.url) ? 'our JavaScript (plan, journal, netlink codec)' : 'node internals after bootstrap';
  if (stack.some((f) => LAUNCHER.test(f.url))) return 'loading our code (read, compile, module bodies)';
  return 'node internals after bootstrap';
}

/** Milliseconds per category in one profile. */
function categorize(profile: CpuProfile): Map<Category, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackCache = new Map<number, Category | undefined>();
  const out = new Map<Category, number>(CATEGORIES.map((c) => [c, 0]));
  profile.samples.forEach((id, i) => {
    if (!stackCache.has(id)) {
      const stack: ProfileNode['callFrame'][] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!.callFrame);
      stackCache.set(id, categoryOf(stack));
    }
    const category = stackCache.get(id);
    if (category) out.set(category, out.get(category)! + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return out;
}

export interface ProfileResult {
  /** Median ms per category: [create-runtime, poststop] with one device, and per extra device (of eight). */
  one: Map<Category, [number, number]>;
  perDevice: Map<Category, [number, number]>;
  /** Median wall time of the profiled runs, ms: [create-runtime, poststop] with one device. */
  wall: [number, number];
}

/** `rounds` profiled create-runtime + poststop pairs for N=1 and N=8 moved devices. */
export function profile(rounds: number): ProfileResult {
  const dir = `${RUN_DIR}/profiles`;
  const samples = new Map<number, { create: Map<Category, number>[]; poststop: Map<Category, number>[]; wall: [number[], number[]] }>();
  for (const n of [1, 8]) {
    const fleet = new Fleet(n, 'p', 211);
    const got = { create: [] as Map<Category, number>[], poststop: [] as Map<Category, number>[], wall: [[], []] as [number[], number[]] };
    samples.set(n, got);
    try {
      for (let r = 0; r < rounds; r++) {
        withFreshNetns(['ct'], (ns) => {
          const bundle = `${RUN_DIR}/bundle-prof${n}`;
          mkdirSync(bundle, { recursive: true });
          writeFileSync(`${bundle}/config.json`, JSON.stringify({
            ociVersion: '1.0.2',
            linux: { namespaces: [{ type: 'network', path: nsPath(ns.get('ct')!) }], netDevices: Object.fromEntries(fleet.nics.map((x) => [x.name, { name: x.target }])) },
          }));
          const id = `onb-${RID}-prof${n}`;
          const runProfiled = (stage: 'create-runtime' | 'poststop', state: object) => {
            rmSync(dir, { recursive: true, force: true });
            const r = ok(process.execPath, ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', dir, HOOK, '--state-dir', `${RUN_DIR}/state`, stage], { env: {}, input: JSON.stringify(state) });
            const [file] = readdirSync(dir);
            return { ms: r.ms, categories: categorize(JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as CpuProfile) };
          };
          const c = runProfiled('create-runtime', { ociVersion: '1.0.2', id, status: 'creating', pid: process.pid, bundle });
          const p = runProfiled('poststop', { ociVersion: '1.0.2', id, status: 'stopped', bundle });
          got.create.push(c.categories);
          got.poststop.push(p.categories);
          got.wall[0].push(c.ms);
          got.wall[1].push(p.ms);
        });
        fleet.verify(`profile N=${n}`);
      }
    } finally {
      fleet.destroy();
      settle();
    }
  }
  const med = (n: number, stage: 'create' | 'poststop', c: Category) => median(samples.get(n)![stage].map((m) => m.get(c)!));
  const one = new Map<Category, [number, number]>();
  const perDevice = new Map<Category, [number, number]>();
  for (const c of CATEGORIES) {
    one.set(c, [med(1, 'create', c), med(1, 'poststop', c)]);
    perDevice.set(c, [(med(8, 'create', c) - med(1, 'create', c)) / 7, (med(8, 'poststop', c) - med(1, 'poststop', c)) / 7]);
  }
  return { one, perDevice, wall: [median(samples.get(1)!.wall[0]), median(samples.get(1)!.wall[1])] };
}
