// A wall-clock bound for the hook commands. The hook is synchronous: a timer in the main thread
// cannot fire while it waits in a system call. Each wait has its own bound (netlink receive
// timeout, lock wait deadline); this is the backstop for anything else, such as a runtime that
// never closes stdin or a namespace file on a hung filesystem. The runtime's own hook `timeout`
// (written by inject and hooks-d) is the first bound; this one holds where a hook entry has none.
//
// alarm(2): the kernel sends SIGALRM when the time is up, and its default action ends the process
// wherever it is, even blocked in a system call, with every C library. The runtime reports a hook
// killed by SIGALRM ("alarm clock"); a journal left behind is restored by `oci-netdev gc`, exactly
// as after any other crash. No message can come from the process itself: a JavaScript SIGALRM
// listener runs only when the (synchronous) hook returns to the event loop, and installing one
// replaces the default action, so a hook blocked in a system call would then never end.

import { alarm } from '../../native/libc';

/** Default bound on one hook run; OCI_NETDEV_TIMEOUT (seconds) changes it. */
export const DEFAULT_HOOK_TIMEOUT_S = 120;

/** Seconds from OCI_NETDEV_TIMEOUT, or the default; throws on a value that is not a positive number. */
export function hookTimeoutSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.OCI_NETDEV_TIMEOUT;
  if (text === undefined || text === '') return DEFAULT_HOOK_TIMEOUT_S;
  const s = Number(text);
  if (!Number.isFinite(s) || s <= 0 || s > 86400) {
    throw new Error(`OCI_NETDEV_TIMEOUT must be a number of seconds from 0 to 86400 (got ${JSON.stringify(text)})`);
  }
  return s;
}

/** Ends this process with SIGALRM after `seconds` (rounded up to whole seconds); it keeps nothing alive. */
export function startWatchdog(seconds: number): void {
  // A listener preloaded through NODE_OPTIONS (signal-exit, which test runners and many tools
  // use, listens for SIGALRM) would replace the default action; without listeners Node restores it.
  process.removeAllListeners('SIGALRM');
  alarm(seconds);
}
