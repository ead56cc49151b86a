// Safe file I/O, the one copy everything that reads or writes a file uses: opens that refuse
// links and anything but a regular file, owner and mode checks, bounded reads, complete writes
// (short writes looped, every error checked), atomic replacement with fsync of the file and its
// folder, and space reserved ahead (fallocate) for writes that must not fail later.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as libc from '../../native/libc';
import { ConfigError, NetdevError, oneLine } from '../errors';
import { sleepSync } from './sleep';

/** The error a caller's messages are typed as (ConfigError for inputs, StateError for state). */
export type ErrorType = new (message: string) => NetdevError;

/** "1 MiB", "64 KiB": the limits in messages. */
export function sizeText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes / 1024} KiB`;
}

const errnoCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

export interface ReadRules {
  /** Names the file at the head of every message, e.g. "policy /etc/oci-netdev/policy.json". */
  where: string;
  maxBytes: number;
  error?: ErrorType;
  /** Follow a symbolic link (config.json in a bundle may be one); refused by default. */
  follow?: boolean;
  /** Appended to "is a symbolic link", e.g. "; give the file itself". */
  symlinkHint?: string;
  /** Whose file it must be: ours, or root's or ours. Unchecked when unset. */
  owner?: 'self' | 'root-or-self';
  /** Refuse a file that group or others may write. */
  ownerWritesOnly?: boolean;
  /** A missing file reads as null instead of failing. */
  missingOk?: boolean;
}

/**
 * Reads a whole regular file, at most `maxBytes`. Opened non-blocking, so that a FIFO planted in
 * its place cannot hold us at open(); refused before any read unless it is a regular file that
 * passes the owner and mode rules.
 */
export function readRegularFile(file: string, rules: ReadRules & { missingOk: true }): Buffer | null;
export function readRegularFile(file: string, rules: ReadRules): Buffer;
export function readRegularFile(file: string, rules: ReadRules): Buffer | null {
  const Err = rules.error ?? ConfigError;
  const { where } = rules;
  let fd: number;
  try {
    const nofollow = rules.follow ? 0 : fs.constants.O_NOFOLLOW;
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | nofollow);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && rules.missingOk) return null;
    if (errnoCode(err) === 'ELOOP' && !rules.follow) throw new Err(`${where}: is a symbolic link${rules.symlinkHint ?? ''}`);
    throw new Err(`${where}: cannot read: ${oneLine((err as Error).message)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    checkRegular(st, rules);
    if (st.size > rules.maxBytes) throw new Err(`${where}: larger than ${sizeText(rules.maxBytes)} (${st.size} bytes)`);
    return readBounded(fd, rules.maxBytes, where, 0, Err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Refuses anything but a regular file that passes `rules`' owner and mode checks. */
export function checkRegular(st: fs.Stats, rules: Pick<ReadRules, 'where' | 'error' | 'owner' | 'ownerWritesOnly'>): void {
  const Err = rules.error ?? ConfigError;
  const { where } = rules;
  if (!st.isFile()) throw new Err(`${where}: is not a regular file`);
  const me = process.geteuid?.() ?? 0;
  if (rules.owner === 'self' && st.uid !== me) throw new Err(`${where}: is owned by uid ${st.uid}, not by us (uid ${me})`);
  if (rules.owner === 'root-or-self' && st.uid !== 0 && st.uid !== me) throw new Err(`${where}: is owned by uid ${st.uid}; it must be root's`);
  if (rules.ownerWritesOnly && st.mode & 0o022) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new Err(`${where}: is writable by group or others (mode ${mode}); only its owner may write it`);
  }
}

/**
 * Reads `fd` synchronously to EOF, refusing more than `limit` bytes. A non-blocking fd with
 * nothing to read yet (EAGAIN) is polled every 10 ms for up to `waitMs`.
 */
export function readBounded(fd: number, limit: number, where: string, waitMs = 0, Err: ErrorType = ConfigError): Buffer {
  const chunks: Buffer[] = [];
  let used = 0;
  let waited = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, limit + 1 - used));
    let n: number;
    try {
      n = fs.readSync(fd, chunk, 0, chunk.length, null);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EINTR') continue;
      if (code === 'EAGAIN' && waited < waitMs) {
        sleepSync(10);
        waited += 10;
        continue;
      }
      throw new Err(`${where}: cannot read: ${oneLine((err as Error).message)}`);
    }
    if (n === 0) return Buffer.concat(chunks, used);
    chunks.push(chunk.subarray(0, n));
    used += n;
    if (used > limit) throw new Err(`${where}: larger than ${sizeText(limit)}`);
  }
}

/** Writes all of `data` at `position` (or at the file offset when null), looping on short writes. */
export function writeAll(fd: number, data: Buffer, position: number | null = null): void {
  for (let done = 0; done < data.length;) {
    let n: number;
    try {
      n = fs.writeSync(fd, data, done, data.length - done, position === null ? null : position + done);
    } catch (err) {
      if (errnoCode(err) === 'EINTR') continue;
      throw err;
    }
    // A write that makes no progress would loop forever; the kernel says why on the next call.
    if (n === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += n;
  }
}

/** fsync of a folder, so that a rename or a new name in it reaches the disk. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/**
 * Creates `file` (refusing any existing name, links included), owned by us with `mode`. A leftover
 * at that name (a temp file of a dead process) is removed first: O_EXCL then refuses links of any kind.
 */
export function createExclusive(file: string, mode: number): number {
  const flags = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
  try {
    return fs.openSync(file, flags, mode);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    fs.rmSync(file, { force: true });
    return fs.openSync(file, flags, mode);
  }
}

/**
 * Opens a file for appending (a log), created 0600 if missing. A link is refused (O_NOFOLLOW), and
 * so is anything but a regular file; O_NONBLOCK keeps a FIFO planted there from hanging the hook.
 */
export function openAppend(file: string): number {
  const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ELOOP' ? 'it is a symbolic link' : (code ?? String(err)), { cause: err });
  }
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw new Error('not a regular file');
  }
  return fd;
}

/** Reserves blocks for the first `size` bytes of `fd`, so later writes there need no space. */
export function preallocate(fd: number, size: number, what: string): void {
  libc.fallocate(fd, 0, size, what);
}

/** Appended to a file's name for the temp file replaceFile writes beside it: names must leave room for it. */
export const TEMP_SUFFIX = '.oci-netdev.tmp';

/**
 * Replaces `file` with `data` atomically: a temp file beside it (never through a planted link),
 * written completely and fsynced, renamed over `file`, then the folder fsynced. A failure leaves
 * `file` as it was and no temp file.
 */
export function replaceFile(file: string, data: Buffer | string, mode: number, owner?: { uid: number; gid: number }): void {
  const tmp = `${file}${TEMP_SUFFIX}`;
  const fd = createExclusive(tmp, mode);
  try {
    try {
      // The umask does not apply to fchmod: a 0600 file (config.json may hold secrets) stays 0600.
      fs.fchmodSync(fd, mode);
      if (owner && (owner.uid !== process.getuid?.() || owner.gid !== process.getgid?.())) fs.fchownSync(fd, owner.uid, owner.gid);
      writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(path.dirname(file));
}
