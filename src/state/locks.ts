// The state directory's locks: flocks on files of ours, waited for by polling.

import * as fs from 'node:fs';
import * as libc from '../../native/libc';
import { StateError, causeOf, oneLine } from '../errors';
import { checkRegular } from '../fsio/files';
import { sleepSync } from '../fsio/sleep';

/** A held flock; `using lock = ...` releases it at the end of the block. */
export class Lock implements Disposable {
  constructor(private fd: number | null, private readonly file: string) {}

  /**
   * Whether the lock file held is still the one at its path: false once its folder was removed
   * (the container's state ended) between opening the file and getting the lock.
   */
  isCurrent(): boolean {
    if (this.fd === null) return false;
    try {
      const held = fs.fstatSync(this.fd);
      const now = fs.lstatSync(this.file);
      return held.ino === now.ino && held.dev === now.dev;
    } catch {
      return false;
    }
  }

  release(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd); // closing drops the flock
    this.fd = null;
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * An exclusive flock on `file`, created 0600 without following links. Waits up to `waitMs` for
 * another holder (polling, so that a hung hook cannot hang every other one); null when `waitMs`
 * is 0 and the lock is taken; StateError when the wait runs out.
 */
export function lockFile(file: string, waitMs: number, what: string): Lock | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new StateError(`lock ${file} is a symbolic link; refusing to use it`);
    // ENOENT keeps its code: the folder went (gc tells an ended container from a failure by it).
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
    throw new StateError(`${what}: cannot open its lock ${file}: ${causeOf(err)} (${oneLine((err as Error).message.replace(/^\w+: /, '').replace(/, open .*$/, ''))})`);
  }
  try {
    checkRegular(fs.fstatSync(fd), { where: `lock ${file}`, error: StateError, owner: 'self' });
    const deadline = Date.now() + waitMs;
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      if (libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB)) return new Lock(fd, file);
      if (waitMs === 0) break;
      if (Date.now() >= deadline) {
        throw new StateError(`${what}: still locked by another oci-netdev process after ${+(waitMs / 1000).toFixed(1)} s (${file})`);
      }
      sleepSync(pause);
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);
  return null;
}
