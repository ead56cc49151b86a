// The state directory: one folder per container holding its journal, its
// netns pin and its lock, plus a global lock for claiming devices. Journals
// are written crash-safely (temp file, fsync, rename, fsync of the folder).

import * as fs from 'fs';
import * as path from 'path';
import * as libc from '../../native/libc';
import { StateError } from '../errors';
import type { Plan } from '../plan/types';

export const DEFAULT_STATE_DIR = '/run/oci-netdev';

export type Phase = 'attaching' | 'attached' | 'detaching';

export interface Journal {
  version: 1;
  containerId: string;
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

export class StateDir {
  constructor(readonly root: string) {}

  /** Creates the root (0700, root-owned) and refuses one that is a symlink or someone else's. */
  ensure(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(this.root);
    if (!st.isDirectory()) throw new StateError(`state dir ${this.root} is not a directory`);
    if (st.uid !== process.getuid!()) throw new StateError(`state dir ${this.root} is owned by uid ${st.uid}, not by us`);
  }

  containerDir(id: string): string {
    return path.join(this.root, encodeId(id));
  }

  pinPath(id: string): string {
    return path.join(this.containerDir(id), 'netns');
  }

  private journalPath(id: string): string {
    return path.join(this.containerDir(id), 'journal.json');
  }

  /** Exclusive lock on one container's state; blocks. */
  lockContainer(id: string): Lock {
    fs.mkdirSync(this.containerDir(id), { recursive: true, mode: 0o700 });
    return lockFile(path.join(this.containerDir(id), 'lock'), true)!;
  }

  /** Like lockContainer but returns null when another process holds it. */
  tryLockContainer(id: string): Lock | null {
    return lockFile(path.join(this.containerDir(id), 'lock'), false);
  }

  /** Global lock held while observing, planning and writing claims. */
  lockClaims(): Lock {
    this.ensure();
    return lockFile(path.join(this.root, 'claims.lock'), true)!;
  }

  readJournal(id: string): Journal | null {
    let text: string;
    try {
      const fd = fs.openSync(this.journalPath(id), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try { text = fs.readFileSync(fd, 'utf8'); } finally { fs.closeSync(fd); }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StateError(`cannot read journal of container ${id}: ${(err as Error).message}`);
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
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(j));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.journalPath(j.containerId));
    const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  }

  /** Ids of every container that has state here. */
  containerIds(): string[] {
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

function lockFile(file: string, wait: boolean): Lock | null {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    if (libc.flock(fd, libc.LOCK_EX | (wait ? 0 : libc.LOCK_NB))) return new Lock(fd);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);
  return null;
}
