// A fuzz campaign: cases first..first+iterations-1 of one target from one seed, run in a worker
// thread. A case that stops reporting progress for `stallMs` is a finding ("stall"): the worker is
// terminated and a new one resumes after that case. The worker's heap is capped, so a case that
// allocates without bound ends the worker ("out-of-memory", also a finding).
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CaseResult } from './target';

export interface CampaignOptions {
  target: string;
  seed: number;
  iterations: number;
  first?: number;
  /** No progress for this long means a case loops (default 20 s). */
  stallMs?: number;
  /** One case may take this long (default 5 s): 16 MiB documents take a while. */
  caseLimitMs?: number;
  /** The worker's old-generation heap cap (default 768 MiB). */
  maxHeapMb?: number;
  /** Stop after this many findings (default 20). */
  maxFindings?: number;
  onProgress?: (index: number) => void;
}

export interface Finding {
  target: string;
  seed: number;
  index: number;
  kind: string;
  message: string;
  input: string;
}

export interface CampaignResult {
  target: string;
  seed: number;
  first: number;
  iterations: number;
  findings: Finding[];
  /** Outcomes of the cases that passed, by kind (a worker that died may not have reported its last ones). */
  stats: Record<string, number>;
  /** Cases that passed, exactly. */
  passed: number;
  ms: number;
}

const WORKER = join(__dirname, 'worker.js');

/** The seed of `make fuzz` and of the short campaigns in `make test`. */
export const DEFAULT_SEED = 20260501;

export async function runCampaign(opts: CampaignOptions): Promise<CampaignResult> {
  const first = opts.first ?? 0;
  const end = first + opts.iterations;
  const stallMs = opts.stallMs ?? 20_000;
  const maxFindings = opts.maxFindings ?? 20;
  const started = Date.now();
  const findings: Finding[] = [];
  const stats: Record<string, number> = {};
  let passed = 0;
  const merge = (more: Record<string, number> | undefined) => {
    for (const [k, v] of Object.entries(more ?? {})) stats[k] = (stats[k] ?? 0) + v;
  };
  const finding = (index: number, r: Extract<CaseResult, { ok: false }>) =>
    findings.push({ target: opts.target, seed: opts.seed, index, kind: r.kind, message: r.message, input: r.input });

  let next = first;
  while (next < end && findings.length < maxFindings) {
    const shared = new SharedArrayBuffer(8);
    const live = new Int32Array(shared);
    Atomics.store(live, 0, next);
    let current = next;
    const outcome = await new Promise<'done' | 'stall' | 'crash'>((resolve) => {
      const worker = new Worker(WORKER, {
        workerData: { target: opts.target, seed: opts.seed, first: next, end, caseLimitMs: opts.caseLimitMs ?? 5000, current: shared },
        resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb ?? 768 },
        stdout: false,
        stderr: false,
      });
      let settled = false;
      const settle = (o: 'done' | 'stall' | 'crash') => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      // Starting a thread (and the target's setup) is not a case: it gets a minute.
      let timer = setTimeout(() => stall(), Math.max(stallMs, 60_000));
      const stall = () => {
        current = Atomics.load(live, 0);
        finding(current, { ok: false, kind: 'stall', message: `no progress for ${stallMs} ms: the case never ends`, input: '' });
        void worker.terminate();
        settle('stall');
      };
      worker.on('message', (m: { type: string; index?: number; result?: CaseResult; stats?: Record<string, number> }) => {
        if (m.type === 'progress') {
          current = m.index!;
          merge(m.stats);
          opts.onProgress?.(current);
        } else if (m.type === 'finding') {
          current = m.index!;
          finding(m.index!, m.result as Extract<CaseResult, { ok: false }>);
          if (findings.length >= maxFindings) {
            void worker.terminate();
            settle('done');
            return;
          }
        } else if (m.type === 'done') {
          merge(m.stats);
          settle('done');
          return;
        }
        clearTimeout(timer);
        timer = setTimeout(() => stall(), stallMs);
      });
      worker.on('error', (err: Error & { code?: string }) => {
        current = Atomics.load(live, 0);
        const kind = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'out-of-memory' : 'crash';
        finding(current, { ok: false, kind, message: String(err.stack ?? err), input: '' });
        settle('crash');
      });
      worker.on('exit', (code) => {
        if (settled) return;
        current = Atomics.load(live, 0);
        finding(current, { ok: false, kind: 'crash', message: `worker exited with code ${code} before the end`, input: '' });
        settle('crash');
      });
    });
    passed += Atomics.load(live, 1);
    next = outcome === 'done' ? end : current + 1;
  }
  return { target: opts.target, seed: opts.seed, first, iterations: opts.iterations, findings, stats, passed, ms: Date.now() - started };
}

/** One line per finding, with how to replay it. */
export function describe(f: Finding): string {
  const input = f.input.length > 600 ? `${f.input.slice(0, 600)}...` : f.input;
  return `${f.target} seed ${f.seed} case ${f.index}: ${f.kind}: ${f.message.split('\n').slice(0, 6).join(' | ')}` +
    `${input ? `\n  input: ${input}` : ''}\n  replay: node dist/test/fuzz/run.js --target ${f.target} --seed ${f.seed} --case ${f.index}`;
}
