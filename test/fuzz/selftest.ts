// A target that misbehaves on purpose, so that the harness's own checks can be tested: by case
// number it passes, throws an untyped error, never ends, runs slowly, or allocates without bound.
import type { Rng } from './prng';
import type { CaseResult, Target } from './target';

export const SELFTEST_CASES = { untyped: 3, slow: 5, loop: 7, oom: 9 } as const;

export const selftestTarget: Target = {
  name: 'selftest',
  runCase(rng: Rng, index: number): CaseResult {
    if (index === SELFTEST_CASES.untyped) {
      try {
        void (null as unknown as { x: number }).x;
      } catch (err) {
        return { ok: false, kind: 'untyped-error', message: String(err), input: 'null' };
      }
    }
    if (index === SELFTEST_CASES.slow) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
    if (index === SELFTEST_CASES.loop) for (;;) rng.u32();
    if (index === SELFTEST_CASES.oom) {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array(1 << 16).fill(rng.u32()));
    }
    return { ok: true, outcome: 'fine' };
  },
};
