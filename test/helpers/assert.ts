// Assertions the test files share: a command that succeeded, one refused as the contract says, and
// a function that throws. (What a hook must leave behind, allHome, is in host.ts.)
import type { Test } from 'tap';
import { userStderr } from './netdevices';
import type { ShResult } from './sandbox';

/** `r` exited 0; its stdout and stderr are shown when it did not. */
export function ok(t: Test, r: ShResult, what: string): void {
  t.equal(r.status, 0, `${what} exits 0`, { stdout: r.stdout, stderr: r.stderr });
}

/** ok, and without a warning: everything came back. */
export function okQuietly(t: Test, r: ShResult, what: string): void {
  ok(t, r, what);
  t.equal(r.stderr, '', `${what}: without a warning`);
}

/**
 * `r` was refused as the contract says: exit 1 and exactly one line on stderr besides the netlink
 * trace, equal to `line` (or matching it, where a part such as a kernel's wording is not ours).
 */
export function refused(t: Test, r: ShResult, line: string | RegExp, what: string): void {
  const lines = userStderr(r.stderr).split('\n').filter(Boolean);
  t.equal(r.status, 1, `${what}: exits 1`, { stderr: r.stderr });
  t.equal(lines.length, 1, `${what}: one line on stderr`, { stderr: r.stderr });
  if (typeof line === 'string') t.equal(lines[0], line, `${what}: the line says why`);
  else t.match(lines[0] ?? '', line, `${what}: the line says why`);
}

/** What `fn` throws; a test that calls this expects it to throw, so returning is an error. */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw, and nothing was thrown');
}
