// A wall-clock bound for the hook commands. The hook is synchronous: a timer in the main thread
// cannot fire while it waits in a system call. Each wait has its own bound (netlink receive
// timeout, lock wait deadline, stdin wait); this is the backstop for anything else, such as a
// runtime that never closes stdin or a namespace file on a hung filesystem. A worker thread keeps
// the time; when it runs out, it writes one line on stderr and kills the process with SIGKILL,
// which the runtime reports as a failed hook. A journal left behind is restored by
// `oci-netdev gc`, exactly as after any other crash.

import { Worker } from 'node:worker_threads';

/** Default bound on one hook run; OCI_NETDEV_TIMEOUT (seconds) changes it. */
export const DEFAULT_HOOK_TIMEOUT_S = 120;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
setTimeout(() => {
  try { fs.writeSync(2, workerData.message); } catch {}
  process.kill(process.pid, 'SIGKILL');
}, workerData.ms);
`;

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
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ms: Math.round(seconds * 1000), message } });
  worker.unref();
}
