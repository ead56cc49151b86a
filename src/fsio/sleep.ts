// A synchronous pause, for the loops that poll a file, a lock or the kernel: the hooks are
// synchronous throughout, so they wait with Atomics.wait rather than a timer.

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` milliseconds. */
export function sleepSync(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, ms);
}
