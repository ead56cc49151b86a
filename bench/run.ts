// `make bench`: oci-netdev against the kernel floor, an iproute2 shell hook and the CNI plugins.
// Prints one table of medians over several rounds taken in this run. Needs root.
//
// The outer process makes a simulated host (a netns), runs the measuring process inside it with
// nsenter, and removes everything afterwards, even after a failure or a signal. Measuring from
// inside the simulated host means every method's processes are started the same way, without an
// nsenter per process. Nothing outside the simulated host and /run/onb-<run>/ is touched.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { CONTAINERS, DEVICES_EACH, HOOK_METHODS, concurrency } from './concurrency';
import type { ConcurrencyResult, HookMethod } from './concurrency';
import { CREATED_METHODS, createMaster, deleteMaster, measureCreated } from './created';
import type { CreatedMethod, Kind } from './created';
import { Fleet, METHODS, hook, measure, settle, withFreshNetns } from './moves';
import { CATEGORIES, profile } from './profile';
import type { ProfileResult } from './profile';
import { routes } from './routes';
import type { RoutesResult } from './routes';
import type { Method, Variant } from './moves';
import {
  CNI_DIR, EXE, HOOK, NS_PREFIX, PREFIX, REPO, RID, RUN_DIR, SIM, fmt, log, median, nsPath, ok, ratio, run, table,
} from './util';

/** BENCH_SIZES=1,32 and BENCH_ONLY=startup,profile,moves,created,routes,concurrency narrow a run (for development). */
const SIZES = process.env.BENCH_SIZES ? process.env.BENCH_SIZES.split(',').map(Number) : [1, 8, 32];
const ONLY = new Set(process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : ['startup', 'profile', 'moves', 'created', 'routes', 'concurrency']);
/** Rounds per size; BENCH_ROUNDS overrides all of them. */
const ROUNDS: Record<number, number> = { 1: 9, 8: 9, 32: 5 };
const STARTUP_ROUNDS = 31;
const rounds = (n: number) => Number(process.env.BENCH_ROUNDS) || ROUNDS[n] || 5;

/** Starts each round with a different method, so that no method always runs first or last. */
function rotated<T>(xs: T[], r: number): T[] {
  return xs.map((_, i) => xs[(i + r) % xs.length]);
}

interface Sample { attach: number; detach: number }

function machine(): string[] {
  const git = run('git', ['-C', REPO, 'describe', '--always', '--dirty']).stdout.trim();
  const pkg = (name: string) => run('dpkg-query', ['-W', '-f', '${Version}', name]).stdout.trim() || '?';
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
      `kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `software: node ${process.version}, iproute2 ${pkg('iproute2')}, containernetworking-plugins ${pkg('containernetworking-plugins')}, ` +
      `runc ${pkg('runc')}, oci-netdev ${git}`,
    `state dir filesystem: ${run('stat', ['-f', '-c', '%T', '/run']).stdout.trim()} (/run)`,
    `the single executable: dist/oci-netdev (${(statSync(EXE).size / 2 ** 20).toFixed(0)} MiB, Bun ${bunVersion()})`,
    `bin/oci-netdev runs: dist/oci-netdev.js (${(statSync(`${REPO}/dist/oci-netdev.js`).size / 1024).toFixed(0)} KiB), ` +
      (cacheMatches() ? 'with its code cache' : 'WITHOUT a code cache (missing, or from another build: run make build)'),
  ];
}

/** The Bun that compiled the executable: the version package.json pins. */
function bunVersion(): string {
  return (JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.bun;
}

/** Whether bin/oci-netdev will take the code cache (as it decides: the first lines match). */
function cacheMatches(): boolean {
  const first = (file: string) => readFileSync(file, 'latin1').split('\n', 1)[0];
  try {
    return first(`${REPO}/dist/oci-netdev.js`) === first(`${REPO}/dist/oci-netdev.cache`);
  } catch {
    return false;
  }
}

/**
 * A copy of the installed layout without the code cache (launcher, bundle, node_modules), so that
 * the startup figures show what the cache buys: its launcher runs the same bundle, compiled by V8.
 */
function withoutCodeCache(): string {
  const root = `${RUN_DIR}/nocache`;
  mkdirSync(`${root}/bin`, { recursive: true });
  mkdirSync(`${root}/dist`, { recursive: true });
  copyFileSync(HOOK, `${root}/bin/oci-netdev`);
  copyFileSync(`${REPO}/dist/oci-netdev.js`, `${root}/dist/oci-netdev.js`);
  symlinkSync(`${REPO}/node_modules`, `${root}/node_modules`);
  return `${root}/bin/oci-netdev`;
}

/** Peak RSS (KiB) of one process, from /usr/bin/time. */
function peakRss(cmd: string, args: string[], input = ''): number {
  const r = run('/usr/bin/time', ['-f', 'RSS %M', cmd, ...args], { env: {}, input });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return Number(/RSS (\d+)/.exec(r.stderr)![1]);
}

function startup() {
  const dir = `${RUN_DIR}/bundle-empty`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/config.json`, JSON.stringify({
    ociVersion: '1.0.2', linux: { namespaces: [{ type: 'network', path: nsPath(SIM) }], netDevices: {} },
  }));
  const uncached = withoutCodeCache();
  const s = {
    node: [] as number[], nodeAmbient: [] as number[], version: [] as number[], empty: [] as number[], poststopNone: [] as number[],
    versionUncached: [] as number[], emptyUncached: [] as number[],
    exeVersion: [] as number[], exeValidate: [] as number[], exeEmpty: [] as number[], exePoststopNone: [] as number[], validate: [] as number[],
  };
  // Interleaved, so that the machine's load shifts every figure alike.
  for (let r = 0; r < STARTUP_ROUNDS; r++) {
    s.node.push(ok(process.execPath, ['-e', '0'], { env: {} }).ms);
    s.nodeAmbient.push(ok(process.execPath, ['-e', '0']).ms);
    s.version.push(ok(HOOK, ['--version'], { env: {}, argv0: 'oci-netdev' }).ms);
    s.versionUncached.push(ok(uncached, ['--version'], { env: {}, argv0: 'oci-netdev' }).ms);
    s.empty.push(hook('create-runtime', `onb-${RID}-empty`, dir));
    s.emptyUncached.push(hook('create-runtime', `onb-${RID}-empty`, dir, undefined, uncached));
    s.poststopNone.push(hook('poststop', `onb-${RID}-empty`, dir));
    s.validate.push(ok(HOOK, ['validate', `${dir}/config.json`], { env: {}, argv0: 'oci-netdev' }).ms);
    s.exeVersion.push(ok(EXE, ['--version'], { env: {}, argv0: 'oci-netdev' }).ms);
    s.exeValidate.push(ok(EXE, ['validate', `${dir}/config.json`], { env: {}, argv0: 'oci-netdev' }).ms);
    s.exeEmpty.push(hook('create-runtime', `onb-${RID}-empty`, dir, undefined, EXE));
    s.exePoststopNone.push(hook('poststop', `onb-${RID}-empty`, dir, undefined, EXE));
  }
  return {
    node: median(s.node), nodeAmbient: median(s.nodeAmbient), version: median(s.version), empty: median(s.empty), poststopNone: median(s.poststopNone),
    versionUncached: median(s.versionUncached), emptyUncached: median(s.emptyUncached),
    validate: median(s.validate), exeVersion: median(s.exeVersion), exeValidate: median(s.exeValidate), exeEmpty: median(s.exeEmpty),
    exePoststopNone: median(s.exePoststopNone),
  };
}

type MoveStats = Record<Variant, Record<Method, Record<number, { total: number; attach: number; detach: number }>>>;

function moves(rss: PeakRss): MoveStats {
  const out = { move: {}, macmtu: {} } as MoveStats;
  for (const v of ['move', 'macmtu'] as Variant[]) for (const m of METHODS) out[v][m] = {};
  for (const n of SIZES) {
    const fleet = new Fleet(n);
    settle();
    try {
      for (const variant of ['move', 'macmtu'] as Variant[]) {
        const samples: Record<Method, Sample[]> = { ours: [], exe: [], cni: [], iproute2: [], floor: [] };
        for (let r = 0; r < rounds(n); r++) {
          withFreshNetns(METHODS, (ns) => {
            for (const m of rotated(METHODS, r)) samples[m].push(measure(m, fleet, variant, ns.get(m)!));
          });
        }
        for (const m of METHODS) {
          out[variant][m][n] = {
            total: median(samples[m].map((s) => s.attach + s.detach)),
            attach: median(samples[m].map((s) => s.attach)),
            detach: median(samples[m].map((s) => s.detach)),
          };
        }
        log(`moves N=${n} ${variant}: ${METHODS.map((m) => `${m} ${fmt(out[variant][m][n].total)}`).join(', ')} ms`);
      }
      if (n === Math.max(...SIZES)) Object.assign(rss, peakRssOfHooks(fleet));
    } finally {
      fleet.destroy();
    }
  }
  return out;
}

type PeakRss = { create: number; poststop: number; exeCreate: number; exePoststop: number };

/** Peak RSS of create-runtime and poststop moving the largest fleet, by each build. */
function peakRssOfHooks(fleet: Fleet): PeakRss {
  const ns = `${NS_PREFIX}rss`;
  ok('ip', ['netns', 'add', ns]);
  try {
    const dir = `${RUN_DIR}/bundle-rss`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/config.json`, JSON.stringify({
      ociVersion: '1.0.2',
      linux: { namespaces: [{ type: 'network', path: nsPath(ns) }], netDevices: Object.fromEntries(fleet.nics.map((n) => [n.name, { name: n.target }])) },
    }));
    const id = `onb-${RID}-rss`;
    const args = ['--state-dir', `${RUN_DIR}/state`];
    const creating = JSON.stringify({ ociVersion: '1.0.2', id, status: 'creating', pid: process.pid, bundle: dir });
    const stopped = JSON.stringify({ ociVersion: '1.0.2', id, status: 'stopped', bundle: dir });
    const create = peakRss(HOOK, [...args, 'create-runtime'], creating);
    const poststop = peakRss(HOOK, [...args, 'poststop'], stopped);
    fleet.verify('peak RSS run');
    const exeCreate = peakRss(EXE, [...args, 'create-runtime'], creating);
    const exePoststop = peakRss(EXE, [...args, 'poststop'], stopped);
    fleet.verify('peak RSS run, the executable');
    return { create, poststop, exeCreate, exePoststop };
  } finally {
    ok('ip', ['netns', 'del', ns]);
  }
}

type CreatedStats = Record<Kind, Record<CreatedMethod, Record<number, { setup: number; teardown: number }>>>;

function created(): CreatedStats {
  const out = { veth: {}, macvlan: {} } as CreatedStats;
  createMaster();
  try {
    for (const kind of ['veth', 'macvlan'] as Kind[]) {
      for (const m of CREATED_METHODS) out[kind][m] = {};
      for (const n of SIZES) {
        const samples: Record<CreatedMethod, { setup: number; teardown: number }[]> = { ours: [], exe: [], iproute2: [], floor: [] };
        for (let r = 0; r < rounds(n); r++) {
          withFreshNetns(CREATED_METHODS, (ns) => {
            for (const m of rotated(CREATED_METHODS, r)) samples[m].push(measureCreated(m, kind, n, ns.get(m)!));
          });
        }
        for (const m of CREATED_METHODS) {
          out[kind][m][n] = { setup: median(samples[m].map((s) => s.setup)), teardown: median(samples[m].map((s) => s.teardown)) };
        }
        log(`created ${kind} N=${n}: ${CREATED_METHODS.map((m) => `${m} ${fmt(out[kind][m][n].setup)}+${fmt(out[kind][m][n].teardown)}`).join(', ')} ms`);
      }
    }
  } finally {
    deleteMaster();
  }
  return out;
}

const verdict = (value: number, limit: number) => (value <= limit ? 'met' : `NOT met (${value.toFixed(2)}x)`);

interface Results {
  st?: ReturnType<typeof startup>;
  mv?: MoveStats;
  cr?: CreatedStats;
  rss: PeakRss & { node: number };
  rt?: RoutesResult;
  cc?: ConcurrencyResult;
  pf?: ProfileResult;
}

function report({ st, mv, cr, rss, rt, cc, pf }: Results): string {
  const rows: string[][] = [];
  const perN = (label: string, f: (n: number) => string, target = '') => rows.push([label, ...SIZES.map(f), target]);
  const three = (label: string, cells: string[], target = '') => rows.push([label, ...cells, target]);
  const big = Math.max(...SIZES);
  const small = Math.min(...SIZES);
  const names: Record<Variant, Record<Method, string>> = {
    move: {
      ours: 'oci-netdev create-runtime + poststop',
      exe: 'the same, the single executable',
      cni: 'CNI host-device ADD + DEL (2N execs)',
      iproute2: 'iproute2 shell hook (ip per command)',
      floor: 'kernel floor (ip -batch)',
    },
    macmtu: {
      ours: 'oci-netdev create-runtime + poststop',
      exe: 'the same, the single executable',
      cni: 'CNI host-device + tuning (4N execs)',
      iproute2: 'iproute2 shell hook (ip per command)',
      floor: 'kernel floor (ip -batch)',
    },
  };
  for (const v of mv ? (['move', 'macmtu'] as Variant[]) : []) {
    const tag = v === 'move' ? 'move' : 'move+MAC/MTU';
    const s = mv![v];
    rows.push([`${tag}: N devices in and out of a fresh netns, ms`, ...SIZES.map((n) => `N=${n}`), '']);
    for (const m of METHODS) perN(`  ${names[v][m]}`, (n) => fmt(s[m][n].total));
    perN('    of which oci-netdev create-runtime', (n) => fmt(s.ours[n].attach));
    perN('    of which oci-netdev poststop', (n) => fmt(s.ours[n].detach));
    perN('    of which executable create-runtime', (n) => fmt(s.exe[n].attach));
    perN('    of which executable poststop', (n) => fmt(s.exe[n].detach));
    perN('    of which floor attach', (n) => fmt(s.floor[n].attach));
    perN('    of which floor detach', (n) => fmt(s.floor[n].detach));
    const vsCni = (n: number) => s.ours[n].total / s.cni[n].total;
    const targets = v !== 'move' ? [] : [
      ...(SIZES.includes(1) ? [`N=1 <=2.5x: ${verdict(vsCni(1), 2.5)}`] : []),
      ...(SIZES.includes(8) ? [`N=8 <=1.2x: ${verdict(vsCni(8), 1.2)}`] : []),
      ...(SIZES.includes(32) ? [`N=32 <=1.0x: ${verdict(vsCni(32), 1.0)}`] : []),
    ];
    perN('  ours / CNI', (n) => ratio(s.ours[n].total, s.cni[n].total), targets.join('; '));
    perN('  executable / CNI', (n) => ratio(s.exe[n].total, s.cni[n].total));
    perN('  ours / iproute2', (n) => ratio(s.ours[n].total, s.iproute2[n].total));
    perN('  ours / floor', (n) => ratio(s.ours[n].total, s.floor[n].total));
    if (big > small) {
      const slope = (m: Method) => (s[m][big].total - s[m][small].total) / (big - small);
      three('  marginal per device, ms [ours | floor | ratio]', [fmt(slope('ours')), fmt(slope('floor')), ratio(slope('ours'), slope('floor'))],
        `<=1.10x: ${verdict(slope('ours') / slope('floor'), 1.1)}`);
      three('  marginal per device, ms [executable | floor | ratio]', [fmt(slope('exe')), fmt(slope('floor')), ratio(slope('exe'), slope('floor'))],
        `<=1.10x: ${verdict(slope('exe') / slope('floor'), 1.1)}`);
    }
  }
  if (st) {
    rows.push(['fixed cost per hook run, ms', 'ours', 'node -e 0', 'ratio', '']);
    if (mv && big > small) {
      // A run's time less its devices' marginal share, from the smallest and the largest N.
      const s = mv.move;
      const fixed = (k: 'attach' | 'detach', m: Method = 'ours') => s[m][small][k] - ((s[m][big][k] - s[m][small][k]) / (big - small)) * small;
      three('  create-runtime, devices to move (N -> 0)', [fmt(fixed('attach')), fmt(st.node), ratio(fixed('attach'), st.node)],
        `<=1.2x: ${verdict(fixed('attach') / st.node, 1.2)}`);
      three('  poststop, devices to restore (N -> 0)', [fmt(fixed('detach')), fmt(st.node), ratio(fixed('detach'), st.node)],
        `<=1.2x: ${verdict(fixed('detach') / st.node, 1.2)}`);
      three('  create-runtime, devices to move (N -> 0), executable', [fmt(fixed('attach', 'exe')), fmt(st.node), ratio(fixed('attach', 'exe'), st.node)],
        `<=0.7x: ${verdict(fixed('attach', 'exe') / st.node, 0.7)}`);
      three('  poststop, devices to restore (N -> 0), executable', [fmt(fixed('detach', 'exe')), fmt(st.node), ratio(fixed('detach', 'exe'), st.node)],
        `<=0.7x: ${verdict(fixed('detach', 'exe') / st.node, 0.7)}`);
    }
    three('  create-runtime, empty netDevices', [fmt(st.empty), fmt(st.node), ratio(st.empty, st.node)], `<=1.2x: ${verdict(st.empty / st.node, 1.2)}`);
    three('  poststop, nothing attached', [fmt(st.poststopNone), fmt(st.node), ratio(st.poststopNone, st.node)], `<=1.2x: ${verdict(st.poststopNone / st.node, 1.2)}`);
    three('  --version', [fmt(st.version), fmt(st.node), ratio(st.version, st.node)]);
    three('  validate CONFIG', [fmt(st.validate), fmt(st.node), ratio(st.validate, st.node)]);
    three('  create-runtime, empty netDevices, executable', [fmt(st.exeEmpty), fmt(st.node), ratio(st.exeEmpty, st.node)],
      `<=0.7x: ${verdict(st.exeEmpty / st.node, 0.7)}`);
    three('  poststop, nothing attached, executable', [fmt(st.exePoststopNone), fmt(st.node), ratio(st.exePoststopNone, st.node)],
      `<=0.7x: ${verdict(st.exePoststopNone / st.node, 0.7)}`);
    three('  --version, executable', [fmt(st.exeVersion), fmt(st.node), ratio(st.exeVersion, st.node)]);
    three('  validate CONFIG, executable', [fmt(st.exeValidate), fmt(st.node), ratio(st.exeValidate, st.node)]);
    three('  create-runtime, empty netDevices, without the code cache', [fmt(st.emptyUncached), fmt(st.node), ratio(st.emptyUncached, st.node)]);
    three('  --version, without the code cache', [fmt(st.versionUncached), fmt(st.node), ratio(st.versionUncached, st.node)]);
    three("  (node -e 0 with this shell's environment)", ['', fmt(st.nodeAmbient), '']);
  }
  for (const kind of cr ? (['veth', 'macvlan'] as Kind[]) : []) {
    const c = cr![kind];
    rows.push([`created ${kind}: N devices with an address each, ms`, ...SIZES.map((n) => `N=${n}`), '']);
    perN('  setup: oci-netdev create-runtime', (n) => fmt(c.ours[n].setup));
    perN('  setup: executable create-runtime', (n) => fmt(c.exe[n].setup));
    perN('  setup: iproute2 shell hook', (n) => fmt(c.iproute2[n].setup));
    perN('  setup: kernel floor (ip -batch)', (n) => fmt(c.floor[n].setup));
    perN('  teardown: oci-netdev poststop', (n) => fmt(c.ours[n].teardown),
      big > small ? `N=${big} / N=${small} <=1.5x: ${verdict(c.ours[big].teardown / c.ours[small].teardown, 1.5)}` : '');
    perN('  teardown: executable poststop', (n) => fmt(c.exe[n].teardown),
      big > small ? `N=${big} / N=${small} <=1.5x: ${verdict(c.exe[big].teardown / c.exe[small].teardown, 1.5)}` : '');
    perN('  teardown: iproute2 shell hook', (n) => fmt(c.iproute2[n].teardown));
    perN('  teardown: kernel floor (ip -batch)', (n) => fmt(c.floor[n].teardown));
  }
  if (rss.create) {
    rows.push(['peak RSS, MiB', 'create-runtime', 'poststop', 'node -e 0', '']);
    three(`  moving N=${big}`, [(rss.create / 1024).toFixed(1), (rss.poststop / 1024).toFixed(1), (rss.node / 1024).toFixed(1)]);
    three(`  moving N=${big}, executable`, [(rss.exeCreate / 1024).toFixed(1), (rss.exePoststop / 1024).toFixed(1), '']);
  }
  if (rt) {
    rows.push([`one device moved in and out, host with ${rt.routes} routes, ms`, 'no routes', `${rt.routes}`, 'ratio', '']);
    three('  create-runtime', [fmt(rt.create[0]), fmt(rt.create[1]), ratio(rt.create[1], rt.create[0])],
      `<=1.10x: ${verdict(rt.create[1] / rt.create[0], 1.1)}`);
    three('  poststop', [fmt(rt.poststop[0]), fmt(rt.poststop[1]), ratio(rt.poststop[1], rt.poststop[0])],
      `<=1.10x: ${verdict(rt.poststop[1] / rt.poststop[0], 1.1)}`);
    three('  kernel floor in (ip -batch: down, netns; addr, up)', [fmt(rt.floorIn[0]), fmt(rt.floorIn[1]), ratio(rt.floorIn[1], rt.floorIn[0])]);
    three('  kernel floor out (ip -batch: down, netns; addr, up)', [fmt(rt.floorOut[0]), fmt(rt.floorOut[1]), ratio(rt.floorOut[1], rt.floorOut[0])]);
    three('  added by the routes: create-runtime | floor in, ms', [fmt(rt.create[1] - rt.create[0]), fmt(rt.floorIn[1] - rt.floorIn[0]), '']);
    three('  peak RSS of create-runtime, MiB', [(rt.rssCreate[0] / 1024).toFixed(1), (rt.rssCreate[1] / 1024).toFixed(1), ratio(rt.rssCreate[1], rt.rssCreate[0])]);
    three('  peak RSS of poststop, MiB', [(rt.rssPoststop[0] / 1024).toFixed(1), (rt.rssPoststop[1] / 1024).toFixed(1), ratio(rt.rssPoststop[1], rt.rssPoststop[0])]);
    three(`  (loading the ${rt.routes} routes: one ip -batch, s)`, ['', (rt.loadMs / 1000).toFixed(1), '']);
  }
  if (pf) {
    rows.push(['where a hook\'s time goes (CPU profiles), ms per run', 'create-rt', 'poststop', '+1 device', '']);
    if (st) three('  node\'s own start (node -e 0, above; before the profiler)', [fmt(st.node), fmt(st.node), '']);
    for (const c of CATEGORIES) {
      const [create, poststop] = pf.one.get(c)!;
      const [dc, dp] = pf.perDevice.get(c)!;
      three(`  ${c}`, [create.toFixed(1), poststop.toFixed(1), (dc + dp).toFixed(1)]);
    }
    three('  (wall time of the profiled runs, one device)', [fmt(pf.wall[0]), fmt(pf.wall[1]), '']);
  }
  if (cc) {
    const o = cc.runs.ours;
    rows.push([`${CONTAINERS} runc containers at once, ${DEVICES_EACH} devices each`, 'ok', 'wall, ms', 'leaks', '']);
    three('  runc run with oci-netdev (create-runtime, start, exit, poststop)', [`${o.succeeded}/${cc.started}`, fmt(o.wallMs), String(cc.leaks.length)],
      `leaks 0: ${cc.leaks.length === 0 ? 'met' : 'NOT met'}`);
    three('  the same with the single executable', [`${cc.runs.exe.succeeded}/${cc.started}`, fmt(cc.runs.exe.wallMs), ''],
      `<=1.0x CNI: ${verdict(cc.runs.exe.wallMs / cc.runs.cni.wallMs, 1.0)}`);
    three('  the same with the iproute2 shell hook', [`${cc.runs.iproute2.succeeded}/${cc.started}`, fmt(cc.runs.iproute2.wallMs), '']);
    three('  the same with CNI host-device (ADD/DEL per device)', [`${cc.runs.cni.succeeded}/${cc.started}`, fmt(cc.runs.cni.wallMs), '']);
    three('  the same without devices and hooks (runc alone)', [`${cc.started}/${cc.started}`, fmt(cc.baselineWallMs), '']);
    rows.push(['  per container, ms', 'p50', 'p99', '', '']);
    const names: Record<HookMethod, string> = { ours: 'oci-netdev', exe: 'oci-netdev executable', iproute2: 'iproute2 shell hook', cni: 'CNI host-device' };
    for (const m of HOOK_METHODS) three(`    runc run, ${names[m]}`, [fmt(cc.runs[m].runcP50), fmt(cc.runs[m].runcP99), '']);
    three('    runc run, runc alone', [fmt(cc.baselineP50), fmt(cc.baselineP99), '']);
    for (const m of HOOK_METHODS) {
      three(`    create-runtime hook, ${names[m]}`, [fmt(cc.runs[m].createP50), fmt(cc.runs[m].createP99), '']);
      three(`    poststop hook, ${names[m]}`, [fmt(cc.runs[m].poststopP50), fmt(cc.runs[m].poststopP99), '']);
    }
  }
  return table(['measurement (medians)', '', '', '', 'target'], rows);
}

async function inner(): Promise<void> {
  const header = machine();
  log(header.join('\n       '));
  const res: Results = { rss: { create: 0, poststop: 0, exeCreate: 0, exePoststop: 0, node: 0 } };
  if (ONLY.has('startup')) {
    log('startup costs');
    res.st = startup();
  }
  if (ONLY.has('profile')) {
    log('where a hook\'s time goes');
    res.pf = profile(rounds(1));
  }
  if (ONLY.has('moves')) {
    log('moved devices');
    res.rss.node = peakRss(process.execPath, ['-e', '0']);
    res.mv = moves(res.rss);
  }
  if (ONLY.has('created')) {
    log('created devices');
    res.cr = created();
  }
  if (ONLY.has('concurrency')) {
    log(`concurrency: ${CONTAINERS} runc containers`);
    res.cc = await concurrency();
    for (const f of res.cc.failures) log(`concurrency failure: ${f}`);
    for (const l of res.cc.leaks) log(`concurrency leak: ${l}`);
    if (res.cc.leaks.length || HOOK_METHODS.some((m) => res.cc!.runs[m].succeeded !== res.cc!.started)) process.exitCode = 1;
  }
  if (ONLY.has('routes')) {
    // Last: a namespace that held a million routes takes the kernel a while to free.
    log('a large routing table');
    res.rt = routes(rounds(1));
  }
  process.stdout.write(`${header.join('\n')}\nrounds: ${SIZES.map((n) => `N=${n}: ${rounds(n)}`).join(', ')}; startup: ${STARTUP_ROUNDS}\n\n`);
  process.stdout.write(report(res) + '\n');
}

/** Removes everything this run made: containers, pins, files, namespaces. */
function cleanup(): void {
  const inSim = (argv: string[]) => run('nsenter', [`--net=${nsPath(SIM)}`, '--', ...argv]);
  const runcRoot = `${RUN_DIR}/runc`;
  if (existsSync(runcRoot) && existsSync(nsPath(SIM))) {
    for (const id of run('runc', ['--root', runcRoot, 'list', '-q']).stdout.split('\n').filter(Boolean)) {
      inSim(['runc', '--root', runcRoot, 'delete', '--force', id]);
    }
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[4]).filter((m) => m.startsWith(RUN_DIR + '/')).reverse();
  for (const m of mounts) run('umount', ['--lazy', m]);
  run('rm', ['-rf', RUN_DIR]);
  for (const ns of run('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(NS_PREFIX))) {
    run('ip', ['netns', 'del', ns]);
  }
  for (const l of run('ip', ['-o', 'link', 'show']).stdout.split('\n')) {
    const name = l.split(': ')[1]?.split('@')[0];
    if (name?.startsWith(PREFIX)) run('ip', ['link', 'del', name]);
  }
}

async function outer(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('make bench needs root (network namespaces, netlink, runc)');
  for (const need of [HOOK, EXE, `${CNI_DIR}/host-device`, `${CNI_DIR}/tuning`, '/bin/busybox']) {
    if (!existsSync(need)) throw new Error(`missing ${need} (make bench builds and installs what it needs)`);
  }
  mkdirSync(RUN_DIR, { recursive: true });
  let code: number | null;
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  try {
    ok('ip', ['netns', 'add', SIM]);
    const child = spawn('nsenter', [`--net=${nsPath(SIM)}`, '--', process.execPath, __filename], {
      stdio: 'inherit',
      env: { ...process.env, ONB_INNER: '1', ONB_RID: RID },
    });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    for (const sig of signals) process.on(sig, forward);
    code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  } finally {
    for (const sig of signals) process.removeAllListeners(sig);
    cleanup();
  }
  process.exitCode = code ?? 1;
}

(process.env.ONB_INNER ? inner() : outer()).catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
