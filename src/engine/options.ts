// What every engine call is given (EngineOptions) and the policy in force. The engine's rooms:
// attach.ts (createRuntime, CNI ADD, validate and plan), detach.ts (poststop, CNI DEL, gc, forget),
// status.ts, claims.ts (what other containers' journals hold), sides.ts (the host's and the
// container's namespaces), networks.ts (the CNI networks), devices.ts (cdi generate).

import { DEFAULT_POLICY_FILE, loadPolicy } from '../config';
import type { HookSelf, Policy } from '../config';
import type { Journal } from '../state/statedir';
import type { CniSettings } from './networks';

// The defaults a front door names in its help.
export { DEFAULT_STATE_DIR } from '../state/statedir';
export { DEFAULT_POLICY_FILE } from '../config';

export interface EngineOptions {
  stateDir: string;
  /**
   * The policy file asked for (--policy, OCI_NETDEV_POLICY); it must exist. Unset: the default
   * file, whose absence means the default policy (config.json may use any device, the annotation none).
   */
  policyFile?: string;
  /** Loud, non-fatal reports (fallback names, lost devices). */
  warn: (message: string) => void;
  /** A change made to the host, for the logs only; the container is the one the hook runs for unless named. */
  info: (message: string, containerId?: string) => void;
  /** The hook run as its runtime started it: its --device arguments and its siblings' are devices too (CDI). */
  hookSelf?: HookSelf;
  /** Where CNI networks and plugins are found (type cni entries); the libcni defaults when unset. */
  cni?: CniSettings;
  /**
   * The host's network namespace, as a path (/run/netns/NAME): where devices come from and go
   * back to, and where the CNI plugins run. Unset: the namespace of the calling thread, as for a
   * hook. Opened once per call; the thread enters it only for what the kernel resolves in the
   * caller's namespace (netlink sockets, per-device sysctls, plugin processes).
   */
  hostNetns?: string;
  /**
   * Called by createRuntime (and CNI ADD) once the journal is written and the namespace pinned,
   * just before the first change to the kernel: where tests change the host between the plan and
   * its steps.
   */
  beforeApply?: (journal: Journal) => void;
}

/** The policy in force: the file asked for, which must exist, else the default file if there is one. */
export function policyOf(opts: Pick<EngineOptions, 'policyFile'>): Policy {
  return loadPolicy(opts.policyFile ?? DEFAULT_POLICY_FILE, opts.policyFile !== undefined);
}
