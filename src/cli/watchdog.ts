// A wall-clock bound for the hook commands. The hook is synchronous: a timer in the main thread
// cannot fire while it waits in a system call. Each wait has its own bound (netlink receive
// timeout, lock wait deadline, stdin wait); this is the backstop for anything else, such as a
// runtime that never closes stdin or a namespace file on a hung filesystem. A POSIX timer keeps
// the time (native/libc.ts killAfter: libc runs the expiry on a thread of its own); when it runs
// out, one line goes to stderr and the process is killed with SIGKILL, which the runtime reports
// as a failed hook. A journal left behind is restored by `oci-netdev gc`, exactly as after any
// other crash. (A worker thread did this before, at ~13 ms of every hook run: a second Node
// instance to start and tear down.)

import { killAfter } from '../../native/libc';

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

/** Starts the watchdog for `what`; it does not keep the process alive. */
export function startWatchdog(seconds: number, what: string): void {
  const message =
    `oci-netdev: ${what}: did not finish within ${seconds} s (OCI_NETDEV_TIMEOUT); killed. ` +
    'If devices were moved, run oci-netdev gc to restore them.\n';
  killAfter(seconds, message);
}
