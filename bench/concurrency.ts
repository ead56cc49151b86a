// 32 runc containers started at once, each asking for 2 moved devices: success count, hook times
// (p50/p99, from a timing wrapper around each hook) and leaks afterwards. The same containers also
// run with the iproute2 shell hook and with the CNI host-device plugin as their hooks
// (bench/oci-shell-hook.sh), and with no devices and no hooks at all (runc alone).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Fleet } from './moves';
import { EXE, HOOK, PREFIX, REPO, RID, RUN_DIR, ok, percentile, run } from './util';

export const CONTAINERS = 32;
export const DEVICES_EACH = 2;
const RUNC_ROOT = `${RUN_DIR}/runc`;
const STATE_DIR = `${RUN_DIR}/cstate`;
const TIMER = `${REPO}/bench/hook-timer.sh`;
const SHELL_HOOK = `${REPO}/bench/oci-shell-hook.sh`;

/** What moves the devices of the 32 containers: oci-netdev, or one of the two it is compared with. */
/** ours: the Node launcher; exe: the single executable. */
export type HookMethod = 'ours' | 'exe' | 'iproute2' | 'cni';
export const HOOK_METHODS: HookMethod[] = ['ours', 'exe', 'iproute2', 'cni'];

/** One run of the 32 containers with one method's hooks. */
export interface MethodRun {
  succeeded: number;
  createP50: number;
  createP99: number;
  poststopP50: number;
  poststopP99: number;
  /** Wall time from the first `runc run` to the last exit. */
  wallMs: number;
  /** Each `runc run` from start to exit. */
  runcP50: number;
  runcP99: number;
}

export interface ConcurrencyResult {
  started: number;
  runs: Record<HookMethod, MethodRun>;
  /** The same 32 containers without devices and hooks. */
  baselineWallMs: number;
  baselineP50: number;
  baselineP99: number;
  /** After oci-netdev's run (the others are checked, not counted: CNI restores less). */
  leaks: string[];
  failures: string[];
}

function makeRootfs(rootfs: string): void {
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const applet of ['sh', 'ip', 'true']) symlinkSync('busybox', join(rootfs, 'bin', applet));
}

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN', 'CAP_NET_RAW'];

/**
 * A bundle for `id` whose hooks move `netDevices` (host name -> { name }) by `method`; without
 * them, a plain container (no hooks) for the runc-only baseline.
 */
function makeBundle(dir: string, rootfs: string, id: string, netDevices: Record<string, { name: string }> | null, method: HookMethod = 'ours'): void {
  mkdirSync(dir, { recursive: true });
  const log = `${RUN_DIR}/hook-times-${method}.log`;
  const specs = Object.entries(netDevices ?? {}).map(([dev, { name }]) => `${dev}:${name}`);
  const ociNetdev = method === 'ours' || method === 'exe';
  const hookEntry = (stage: string) => (ociNetdev
    ? { path: TIMER, args: ['hook-timer', log, `${stage}:${id}`, method === 'exe' ? EXE : HOOK, '--state-dir', STATE_DIR, stage] }
    : {
      path: TIMER,
      args: ['hook-timer', log, `${stage}:${id}`, SHELL_HOOK, method, stage, `${RUN_DIR}/shell-hooks`, ...specs],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: netDevices ? ['sh', '-c', 'ip link show eth1 >/dev/null && ip link show eth2 >/dev/null'] : ['true'],
      env: ['PATH=/bin'],
      cwd: '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS, ambient: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: true },
    hostname: 'onb',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    ...(netDevices && { hooks: { createRuntime: [hookEntry('create-runtime')], poststop: [hookEntry('poststop')] } }),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      ...(netDevices && ociNetdev && { netDevices }),
    },
  }));
}

interface RuncResult {
  id: string;
  code: number | null;
  stderr: string;
  /** `runc run` from start to exit, ms. */
  ms: number;
}

function runcRun(bundle: string, id: string): Promise<RuncResult> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('runc', ['--root', RUNC_ROOT, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ id, code, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
  });
}

/** All of `ids` at once; the wall time from the first start to the last exit. */
async function runAll(ids: string[], dir: string): Promise<{ results: RuncResult[]; wallMs: number }> {
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(ids.map((id) => runcRun(`${dir}/${id}`, id)));
  return { results, wallMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[4]).filter((m) => m.startsWith(dir + '/'));
}

/** The 32 containers with `method`'s hooks, all at once; hook times from the timer's log. */
async function runMethod(method: HookMethod, fleet: Fleet, rootfs: string): Promise<{ run: MethodRun; failures: string[] }> {
  const ids: string[] = [];
  for (let j = 0; j < CONTAINERS; j++) {
    const id = `onb-${RID}-${method[0]}${j}`;
    const nics = fleet.nics.slice(j * DEVICES_EACH, (j + 1) * DEVICES_EACH);
    makeBundle(`${RUN_DIR}/cc/${id}`, rootfs, id, Object.fromEntries(nics.map((nic, k) => [nic.name, { name: `eth${k + 1}` }])), method);
    ids.push(id);
  }
  const { results, wallMs } = await runAll(ids, `${RUN_DIR}/cc`);
  const log = `${RUN_DIR}/hook-times-${method}.log`;
  const times = new Map<string, { ms: number; rc: number }>();
  for (const line of (existsSync(log) ? readFileSync(log, 'utf8') : '').split('\n').filter(Boolean)) {
    const [label, start, end, rc] = line.split(' ');
    times.set(label, { ms: (Number(end) - Number(start)) * 1000, rc: Number(rc) });
  }
  const failures: string[] = [];
  let succeeded = 0;
  for (const r of results) {
    const c = times.get(`create-runtime:${r.id}`);
    const p = times.get(`poststop:${r.id}`);
    if (r.code === 0 && c?.rc === 0 && p?.rc === 0) succeeded++;
    else failures.push(`${method} ${r.id}: runc ${r.code}, create-runtime ${c?.rc ?? 'not run'}, poststop ${p?.rc ?? 'not run'}: ${r.stderr.trim().split('\n').pop()}`);
  }
  const creates = [...times].filter(([k]) => k.startsWith('create-runtime:')).map(([, v]) => v.ms);
  const poststops = [...times].filter(([k]) => k.startsWith('poststop:')).map(([, v]) => v.ms);
  return {
    run: {
      succeeded,
      wallMs,
      runcP50: percentile(results.map((r) => r.ms), 50),
      runcP99: percentile(results.map((r) => r.ms), 99),
      createP50: creates.length ? percentile(creates, 50) : NaN,
      createP99: creates.length ? percentile(creates, 99) : NaN,
      poststopP50: poststops.length ? percentile(poststops, 50) : NaN,
      poststopP99: poststops.length ? percentile(poststops, 99) : NaN,
    },
    failures,
  };
}

export async function concurrency(): Promise<ConcurrencyResult> {
  const fleet = new Fleet(CONTAINERS * DEVICES_EACH, 'k', 204);
  const rootfs = `${RUN_DIR}/rootfs`;
  makeRootfs(rootfs);
  mkdirSync(`${RUN_DIR}/shell-hooks`, { recursive: true });
  const plain: string[] = [];
  for (let j = 0; j < CONTAINERS; j++) {
    const id = `onb-${RID}-k${j}p`;
    makeBundle(`${RUN_DIR}/cc/${id}`, rootfs, id, null);
    plain.push(id);
  }
  // The same containers without devices or hooks: what runc and the kernel cost on their own.
  const baseline = await runAll(plain, `${RUN_DIR}/cc`);
  const baseFailed = baseline.results.filter((r) => r.code !== 0);
  if (baseFailed.length) throw new Error(`runc alone failed: ${baseFailed.map((r) => `${r.id}: ${r.stderr.trim()}`).join('; ')}`);

  const runs = {} as Record<HookMethod, MethodRun>;
  const failures: string[] = [];
  const leaks: string[] = [];
  for (const method of HOOK_METHODS) {
    const r = await runMethod(method, fleet, rootfs);
    runs[method] = r.run;
    failures.push(...r.failures);
    if (method === 'ours' || method === 'exe') leaks.push(...oursLeaks(fleet).map((l) => `${method}: ${l}`));
    // host-device leaves each device down, without its addresses and with its alias set.
    if (method === 'cni') {
      fleet.verify('cni concurrency', true);
      fleet.reset();
    } else {
      fleet.verify(`${method} concurrency`);
    }
  }
  fleet.destroy();
  return {
    started: CONTAINERS,
    runs,
    baselineWallMs: baseline.wallMs,
    baselineP50: percentile(baseline.results.map((r) => r.ms), 50),
    baselineP99: percentile(baseline.results.map((r) => r.ms), 99),
    leaks,
    failures,
  };
}

/**
 * Devices not back as they were, containers' state left (a folder in the state dir: its own files,
 * the claims lock and the `released` mark, stay by design), pins left, containers left, stray links.
 */
function oursLeaks(fleet: Fleet): string[] {
  const leaks = fleet.differences();
  const state = existsSync(STATE_DIR) ? readdirSync(STATE_DIR, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : [];
  if (state.length) leaks.push(`state dir holds ${state.join(' ')}`);
  leaks.push(...mountsUnder(RUN_DIR).map((m) => `mount ${m}`));
  const left = run('runc', ['--root', RUNC_ROOT, 'list', '-q']).stdout.split('\n').filter(Boolean);
  if (left.length) leaks.push(`runc still lists ${left.join(' ')}`);
  const stray = JSON.parse(ok('ip', ['-j', 'link', 'show']).stdout) as { ifname: string }[];
  const expected = new Set(fleet.nics.flatMap((n) => [n.name, n.name.replace(`${PREFIX}k`, `${PREFIX}kp`)]));
  const extra = stray.map((l) => l.ifname).filter((n) => n !== 'lo' && !expected.has(n) && !n.startsWith(PREFIX));
  if (extra.length) leaks.push(`unexpected links on the host: ${extra.join(' ')}`);
  return leaks;
}
