// The state directory: one folder per container holding its journal, its
// netns pin and its lock, plus a global lock for claiming devices. Journals
// are written as DESIGN.md asks (temp file, fsync, rename, fsync of the
// folder), so a hook killed at any point leaves the old journal or the new
// one, never a torn one. The fsyncs cost 1-4 ms a write on a disk-backed /run
// (nothing on a tmpfs); see BENCHMARKS.md.

import * as fs from 'fs';
import * as path from 'path';
import * as libc from '../../native/libc';
import { StateError } from '../errors';
import type { Plan } from '../plan/types';

export const DEFAULT_STATE_DIR = '/run/oci-netdev';
/** How long a hook waits for another hook's lock before it gives up with an error. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
/** NAME_MAX: the longest path component. */
const MAX_COMPONENT_BYTES = 255;

export type Phase = 'attaching' | 'attached' | 'detaching';

export interface Journal {
  version: 1;
  containerId: string;
  /** The bundle the container was created from: a poststop from another bundle is not its. */
  bundle?: string;
  phase: Phase;
  createdAt: string;
  /** The container's init, to tell a live container from a dead one (pid + start time). */
  containerPid?: number;
  containerStartTime?: string;
  /** The namespace as the config named it, and its identity. */
  netnsPath: string;
  netnsDev: number;
  netnsIno: number;
  plan: Plan;
  /** How many steps have been started; the undo covers exactly these. */
  started: number;
}

/** A container id as one safe path component: anything but [A-Za-z0-9_-] is %-encoded. */
export function encodeId(id: string): string {
  return Buffer.from(id, 'utf8').toString('latin1').replace(/[^A-Za-z0-9_-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function decodeId(name: string): string {
  return Buffer.from(name.replace(/%([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

export class Lock {
  constructor(private fd: number | null) {}
  release(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd); // closing drops the flock
    this.fd = null;
  }
}

/**
 * Refuses a directory that is a symlink, not a directory, someone else's, or writable by group or
 * others: whoever could write in it could plant links where we write journals and mount pins.
 */
function checkDir(dir: string, what: string): void {
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) throw new StateError(`${what} ${dir} is a symbolic link; refusing to use it`);
  if (!st.isDirectory()) throw new StateError(`${what} ${dir} is not a directory`);
  checkOwner(st, dir, what);
  if (st.mode & 0o022) {
    throw new StateError(`${what} ${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}); refusing to use it`);
  }
}

function checkOwner(st: fs.Stats, file: string, what: string): void {
  const me = process.geteuid!();
  if (st.uid !== me) throw new StateError(`${what} ${file} is owned by uid ${st.uid}, not by us (uid ${me}); refusing to use it`);
}

/** A file we are about to read or lock: a regular file of ours (opened with O_NOFOLLOW already). */
function checkOpenFile(fd: number, file: string, what: string): void {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) throw new StateError(`${what} ${file} is not a regular file`);
  checkOwner(st, file, what);
}

export class StateDir {
  constructor(readonly root: string, readonly lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS) {}

  /** Creates the root (0700, root-owned) and refuses one that is a symlink or someone else's. */
  ensure(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    checkDir(this.root, 'state dir');
  }

  /** Checks the root if it exists; false when it does not. */
  private rootExists(): boolean {
    try {
      checkDir(this.root, 'state dir');
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** The container's folder: its id %-encoded into one path component, so `../x` stays inside. */
  containerDir(id: string): string {
    if (typeof id !== 'string' || id === '') throw new StateError('container id must not be empty');
    const name = encodeId(id);
    if (Buffer.byteLength(name) > MAX_COMPONENT_BYTES) {
      throw new StateError(`container id is too long (${Buffer.byteLength(name)} bytes encoded, at most ${MAX_COMPONENT_BYTES})`);
    }
    return path.join(this.root, name);
  }

  /** Where the container's netns is pinned; refuses a path that is a symlink or someone else's. */
  pinPath(id: string): string {
    const pin = path.join(this.containerDir(id), 'netns');
    let st: fs.Stats;
    try {
      st = fs.lstatSync(pin);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return pin;
      throw err;
    }
    if (st.isSymbolicLink()) throw new StateError(`netns pin ${pin} is a symbolic link; refusing to use it`);
    checkOwner(st, pin, 'netns pin');
    return pin;
  }

  /** Creates the container's folder (0700) if needed and checks it. */
  private containerDirChecked(id: string, create: boolean): string {
    const dir = this.containerDir(id);
    if (create) {
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    checkDir(dir, `state of container ${id}:`);
    return dir;
  }

  private journalPath(id: string): string {
    return path.join(this.containerDir(id), 'journal.json');
  }

  /** Exclusive lock on one container's state; waits at most lockTimeoutMs for another hook. */
  lockContainer(id: string): Lock {
    if (!this.rootExists()) this.ensure();
    const dir = this.containerDirChecked(id, true);
    return lockFile(path.join(dir, 'lock'), this.lockTimeoutMs, `state of container ${id}`)!;
  }

  /** Like lockContainer but returns null when another process holds it. */
  tryLockContainer(id: string): Lock | null {
    const dir = this.containerDirChecked(id, false);
    return lockFile(path.join(dir, 'lock'), 0, `state of container ${id}`);
  }

  /** Global lock held while observing, planning and writing claims. */
  lockClaims(): Lock {
    this.ensure();
    return lockFile(path.join(this.root, 'claims.lock'), this.lockTimeoutMs, 'device claims')!;
  }

  readJournal(id: string): Journal | null {
    let text: string;
    const file = this.journalPath(id);
    try {
      const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      try {
        checkOpenFile(fd, file, 'journal');
        text = fs.readFileSync(fd, 'utf8');
      } finally { fs.closeSync(fd); }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      if (err instanceof StateError) throw err;
      const why = (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'it is a symbolic link' : (err as Error).message;
      throw new StateError(`cannot read journal of container ${id}: ${why}`);
    }
    try {
      return JSON.parse(text) as Journal;
    } catch {
      throw new StateError(`journal of container ${id} is corrupt (${this.journalPath(id)})`);
    }
  }

  writeJournal(j: Journal): void {
    const dir = this.containerDir(j.containerId);
    const tmp = path.join(dir, `.journal.${process.pid}.tmp`);
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
    let fd: number;
    try {
      fd = fs.openSync(tmp, flags, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A leftover of a dead process with our pid goes first: O_EXCL then refuses links of any kind.
      fs.rmSync(tmp, { force: true });
      fd = fs.openSync(tmp, flags, 0o600);
    }
    try {
      fs.writeSync(fd, JSON.stringify(j));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.journalPath(j.containerId));
    // The rename itself must reach the disk before the kernel is touched.
    const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  }

  /** Ids of every container that has state here. */
  containerIds(): string[] {
    if (!this.rootExists()) return [];
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter((n) => !n.endsWith('.lock') && fs.lstatSync(path.join(this.root, n)).isDirectory()).map(decodeId);
  }

  journals(): Journal[] {
    return this.containerIds().map((id) => this.readJournal(id)).filter((j): j is Journal => j !== null);
  }

  /** Removes a container's folder; the pin must already be released. */
  remove(id: string): void {
    fs.rmSync(this.containerDir(id), { recursive: true, force: true });
  }
}

/**
 * An exclusive flock on `file`, created 0600 without following links. Waits up to `waitMs` for
 * another holder (polling, so that a hung hook cannot hang every other one); null when `waitMs`
 * is 0 and the lock is taken; StateError when the wait runs out.
 */
function lockFile(file: string, waitMs: number, what: string): Lock | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new StateError(`lock ${file} is a symbolic link; refusing to use it`);
    throw err;
  }
  try {
    checkOpenFile(fd, file, 'lock');
    const deadline = Date.now() + waitMs;
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      if (libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB)) return new Lock(fd);
      if (waitMs === 0) break;
      if (Date.now() >= deadline) {
        throw new StateError(`${what}: still locked by another oci-netdev process after ${+(waitMs / 1000).toFixed(1)} s (${file})`);
      }
      Atomics.wait(SLEEPER, 0, 0, pause);
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);
  return null;
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
