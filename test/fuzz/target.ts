// What a fuzz target is: one case from a seeded generator, judged on the spot.
import type { Rng } from './prng';

export type CaseResult =
  /** `outcome` names what happened (decoded, or the typed error's class) for the statistics. */
  | { ok: true; outcome: string }
  /** A finding: `input` reproduces it (hex for bytes, JSON text otherwise, maybe shortened). */
  | { ok: false; kind: string; message: string; input: string };

export interface Target {
  name: string;
  /** One case; `index` is only for targets that test the harness itself. */
  runCase(rng: Rng, index: number): CaseResult;
  /** Called once in the worker before the first case (temp files and the like). */
  setup?(): void;
  teardown?(): void;
}
