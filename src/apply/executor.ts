// Runs a plan's steps in order, recording each start in the journal before
// touching the kernel; on failure, or later at poststop/gc, undoes every
// started step in reverse order.

import { OPERATIONS, ApplyContext } from './operations';
import type { Journal } from '../state/statedir';
import { ApplyError } from '../errors';

export function applyPlan(ctx: ApplyContext, journal: Journal): void {
  const { steps, devices } = journal.plan;
  const byKey = new Map(devices.map((d) => [d.key, d]));
  try {
    for (let i = journal.started; i < steps.length; i++) {
      journal.started = i + 1;
      // Only a step with an undo must be on disk before it runs; the others, and the names that
      // steps resolve, are recorded with the next write (no undo depends on them).
      if (steps[i].undo) ctx.persist();
      OPERATIONS[steps[i].do](ctx, byKey.get(steps[i].device)!);
      ctx.info(`device ${steps[i].device}: ${steps[i].do}`);
    }
  } catch (err) {
    throw new ApplyError(err as Error, rollback(ctx, journal));
  }
}

/** Undoes every started step, last first, carrying on past failures; returns them. */
export function rollback(ctx: ApplyContext, journal: Journal): Error[] {
  const { steps, devices } = journal.plan;
  const byKey = new Map(devices.map((d) => [d.key, d]));
  const errors: Error[] = [];
  for (let i = journal.started - 1; i >= 0; i--) {
    const undo = steps[i].undo;
    if (!undo) continue;
    try {
      OPERATIONS[undo](ctx, byKey.get(steps[i].device)!);
      ctx.info(`device ${steps[i].device}: ${undo} (undoes ${steps[i].do})`);
    } catch (err) {
      errors.push(err as Error);
    }
  }
  return errors;
}
