// Runs a plan's steps in order, recording each start in the journal before
// touching the kernel; on failure, or later at poststop/gc, undoes every
// started step in reverse order. `operations` is the step table (OPERATIONS);
// the executor's tests give their own to watch the journal as each step starts.

import { OPERATIONS } from './operations';
import type { ApplyContext, Op } from './operations';
import type { Journal } from '../state/statedir';
import type { DeviceRecord, Operation, Step } from '../state/journal-records';
import { ApplyError, StateError } from '../errors';

type Operations = Record<Operation, Op>;

/** The record a step names; a journal whose step names no record is broken. */
function recordFor(journal: Journal, step: Step): DeviceRecord {
  const rec = journal.plan.devices.find((d) => d.key === step.device);
  if (!rec) throw new StateError(`container ${journal.containerId}: journal step ${step.do} names device ${step.device}, which it has no record of`);
  return rec;
}

export function applyPlan(ctx: ApplyContext, journal: Journal, operations: Operations = OPERATIONS): void {
  const { steps } = journal.plan;
  try {
    for (let i = journal.started; i < steps.length; i++) {
      journal.started = i + 1;
      // Only a step with an undo must be on disk before it runs; the others, and the names that
      // steps resolve, are recorded with the next write (no undo depends on them).
      if (steps[i].undo) ctx.persist();
      operations[steps[i].do](ctx, recordFor(journal, steps[i]));
      ctx.info(`device ${steps[i].device}: ${steps[i].do}`);
    }
  } catch (err) {
    throw new ApplyError(err as Error, rollback(ctx, journal, operations));
  }
}

/** Undoes every started step, last first, carrying on past failures; returns them. */
export function rollback(ctx: ApplyContext, journal: Journal, operations: Operations = OPERATIONS): Error[] {
  const { steps } = journal.plan;
  const errors: Error[] = [];
  for (let i = journal.started - 1; i >= 0; i--) {
    const undo = steps[i].undo;
    if (!undo) continue;
    try {
      operations[undo](ctx, recordFor(journal, steps[i]));
      ctx.info(`device ${steps[i].device}: ${undo} (undoes ${steps[i].do})`);
    } catch (err) {
      errors.push(err as Error);
    }
  }
  return errors;
}
