// A hook run: the OCI state the runtime writes on stdin, then the engine for that container.

import { readStdinState } from '../config';
import type { OciState } from '../config';
import { attach } from '../engine/attach';
import { detach } from '../engine/detach';
import type { EngineOptions } from '../engine/options';

/** createRuntime, poststop, or either one chosen by the state's status (hooks.d gives one command for both). */
export type HookStage = 'createRuntime' | 'poststop' | 'byStatus';

/** Runs one hook; `onState` learns whose container it is before anything is done (for the logs). */
export function runHook(stage: HookStage, opts: EngineOptions, onState: (state: OciState) => void): void {
  const state = readStdinState();
  onState(state);
  if (stage === 'poststop' || (stage === 'byStatus' && state.status === 'stopped')) detach(state, opts);
  else attach(state, opts);
}
