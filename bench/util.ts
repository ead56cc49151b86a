// Shared pieces of the benchmark: running and timing processes, statistics, names.
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

/** The repository root (this file runs from dist/bench). */
export const REPO = resolve(__dirname, '../..');
/** The Node launcher, and the single executable (the product, `make build`'s dist/oci-netdev). */
export const HOOK = `${REPO}/bin/oci-netdev`;
export const EXE = `${REPO}/dist/oci-netdev`;
export const CNI_DIR = '/usr/lib/cni';

/** Everything this run creates carries `onb` (oci-netdev bench) and the run id. */
export const RID = process.env.ONB_RID ?? randomBytes(2).toString('hex');
export const PREFIX = `onb${RID}`;
export const NS_PREFIX = `onb-${RID}-`;
export const RUN_DIR = `/run/onb-${RID}`;
export const SIM = `${NS_PREFIX}sim`;
export const nsPath = (ns: string): string => `/run/netns/${ns}`;

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Wall time of the child, ms. */
  ms: number;
}

export interface RunOptions {
  input?: string;
  /** The child's whole environment (default: this process's). */
  env?: Record<string, string>;
  argv0?: string;
  timeoutMs?: number;
}

/** Runs a command to completion and times it (spawn to exit). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Result {
  const o: SpawnSyncOptions = {
    input: opts.input ?? '',
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
  };
  if (opts.argv0) o.argv0 = opts.argv0;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, o);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr), ms };
}

/** Like run, but throws unless the command exits 0. */
export function ok(cmd: string, args: string[], opts: RunOptions = {}): Result {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** `ip -batch -` with the given lines, in `ns` (undefined: the namespace this process is in). */
export function ipBatch(lines: string[], ns?: string): Result {
  return ok('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: lines.join('\n') + '\n' });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
export const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;

/** A fixed-width text table. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}
