// Runs one slice of a fuzz campaign in a worker thread, so that the parent can stop a case that
// never ends (worker.terminate() interrupts a JavaScript loop) and cap the heap (resourceLimits).
// Messages to the parent: progress {index}, finding {index, result}, done {stats}. The case being
// run is also kept in shared memory (workerData.current), which the parent reads when a case
// stalls or the worker dies, so that the finding names the exact case.
import { parentPort, workerData } from 'node:worker_threads';
import { Rng } from './prng';
import { targets } from './targets';
import type { CaseResult } from './target';

interface Job {
  target: string;
  seed: number;
  first: number;
  end: number;
  caseLimitMs: number;
  current: SharedArrayBuffer;
}

const job = workerData as Job;
const target = targets[job.target];
const stats: Record<string, number> = {};
/** [case being run, cases passed]. */
const current = new Int32Array(job.current);
const flush = () => {
  const out = { ...stats };
  for (const k of Object.keys(stats)) delete stats[k];
  return out;
};
target.setup?.();
try {
  let last = Date.now();
  for (let i = job.first; i < job.end; i++) {
    const now = Date.now();
    if (i === job.first || now - last > 100) {
      // Outcome counts go with each progress report, so that a worker that dies loses few.
      parentPort!.postMessage({ type: 'progress', index: i, stats: flush() });
      last = now;
    }
    Atomics.store(current, 0, i);
    const started = Date.now();
    let result: CaseResult;
    try {
      result = target.runCase(Rng.forCase(job.seed, i), i);
    } catch (err) {
      // The target judges the code under test; what escapes it is a fault of the harness.
      result = { ok: false, kind: 'harness-error', message: String((err as Error)?.stack ?? err), input: '' };
    }
    const took = Date.now() - started;
    if (!result.ok) parentPort!.postMessage({ type: 'finding', index: i, result });
    else if (took > job.caseLimitMs) {
      parentPort!.postMessage({ type: 'finding', index: i, result: { ok: false, kind: 'slow', message: `case took ${took} ms (limit ${job.caseLimitMs})`, input: '' } });
    } else {
      stats[result.outcome] = (stats[result.outcome] ?? 0) + 1;
      Atomics.add(current, 1, 1);
    }
  }
} finally {
  target.teardown?.();
}
parentPort!.postMessage({ type: 'done', stats: flush() });
