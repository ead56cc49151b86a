// The state directory: one folder per container holding its journal (journal.ts), what it claims
// (claims.ts), its netns pin and its lock (locks.ts), plus a global lock for claiming devices.
// StateDir is the state layer's door: the engine and the front doors use it and the types
// re-exported here; the folders' names and checks are in folders.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { StateError, oneLine } from '../errors';
import { checkRegular, readRegularFile, replaceFile, writeAll } from '../fsio/files';
import { CLAIMS, MAX_CLAIMS_BYTES, claimRecordOf, claimsData, decodeClaims, writeClaims, type ClaimRecord } from './claims';
import { ID_FILE, MAX_ID_BYTES, checkDir, checkOwner, decodeId, folderName, isHashedFolder } from './folders';
import { JOURNAL, MAX_JOURNAL_BYTES, createJournalFile, journalData, journalOwner, readJournalFile, swapJournalFile, type BadJournal, type HostNamespace, type Journal } from './journal';
import { Lock, lockFile } from './locks';

export type { ClaimRecord } from './claims';
export { claimRecordOf } from './claims';
export { encodeId } from './folders';
export type { BadJournal, HostNamespace, Journal, JournalNetwork, JournalOrigin } from './journal';
export { encodeJournal } from './journal';
export { Lock } from './locks';

export const DEFAULT_STATE_DIR = '/run/oci-netdev';
/** How long a hook waits for another hook's lock before it gives up with an error. */
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
/** In the root: a token rewritten in place whenever a container's folder is removed (releaseMark). */
const RELEASED = 'released';
/** The host's network namespace the hooks attached in (JSON HostNamespace), for what no journal holds. */
const HOST_NETNS = 'host-netns';
const MAX_HOST_NETNS_BYTES = 4096;
const MARK_BYTES = 64;

export class StateDir {
  constructor(readonly root: string, readonly lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS) {}

  /** Creates the root (0700, root-owned) and refuses one that is a symlink or someone else's. */
  ensure(): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    checkDir(this.root, 'state dir');
    if (this.releaseMark() === null) this.markRelease();
  }

  /**
   * Changes whenever a container's state is removed, which is when the devices it held become free
   * to claim; null when it cannot be read (then anything may have been released). A hook compares
   * it around reads made outside the claims lock: a device read while another container was still
   * bringing it home must be read again.
   */
  releaseMark(): string | null {
    return this.ownFile(this.root, RELEASED, MARK_BYTES)?.toString('latin1') || null;
  }

  /** The host's namespace the last attach recorded (recordHost); undefined when none or unreadable. */
  recordedHost(): HostNamespace | undefined {
    const raw = this.ownFile(this.root, HOST_NETNS, MAX_HOST_NETNS_BYTES)?.toString('utf8');
    try {
      const v = JSON.parse(raw ?? 'null') as Partial<HostNamespace> | null;
      return v && typeof v.dev === 'number' && typeof v.ino === 'number' && typeof v.bootId === 'string' ? v as HostNamespace : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records the host's namespace for the state dir (written only when it changed, through a rename). */
  recordHost(ns: HostNamespace): void {
    const text = JSON.stringify(ns);
    if (this.ownFile(this.root, HOST_NETNS, MAX_HOST_NETNS_BYTES)?.toString('utf8') === text) return;
    const tmp = path.join(this.root, `${HOST_NETNS}.${process.pid}.tmp`);
    try {
      fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'w' });
      fs.renameSync(tmp, path.join(this.root, HOST_NETNS));
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw new StateError(`cannot record the host's network namespace in ${this.root}: ${oneLine((err as Error).message)}`);
    }
  }

  /**
   * A new token for releaseMark, written over the old one in place so that a full file system
   * does not stop it; when even that fails, the mark goes, and no hook trusts a read ahead.
   */
  private markRelease(): void {
    const file = path.join(this.root, RELEASED);
    const token = Buffer.from(`${process.pid}-${Date.now()}-${Math.random()}`.padEnd(MARK_BYTES, '-').slice(0, MARK_BYTES), 'latin1');
    try {
      const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o600);
      try {
        checkRegular(fs.fstatSync(fd), { where: `release mark ${file}`, error: StateError, owner: 'self' });
        writeAll(fd, token, 0);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      try {
        fs.rmSync(file, { force: true });
      } catch {
        // Not a file (a folder planted there): it is never read as a mark either.
      }
    }
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

  /** The container's folder: its id %-encoded into one path component, so `../x` stays inside; hashed when too long. */
  containerDir(id: string): string {
    if (typeof id !== 'string' || id === '') throw new StateError('container id must not be empty');
    if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new StateError(`container id is too long (${Buffer.byteLength(id)} bytes, at most ${MAX_ID_BYTES})`);
    return path.join(this.root, folderName(id));
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

  /** A file of ours in a container folder; undefined when it is missing or not a plain file of ours (a planted link). */
  private ownFile(dir: string, name: string, maxBytes: number): Buffer | undefined {
    try {
      return readRegularFile(path.join(dir, name), { where: `${name} of state folder ${dir}`, error: StateError, owner: 'self', maxBytes, missingOk: true }) ?? undefined;
    } catch {
      return undefined;
    }
  }

  private journalPath(id: string): string {
    return path.join(this.containerDir(id), JOURNAL);
  }

  /**
   * Exclusive lock on one container's state; waits at most lockTimeoutMs for another hook. Under
   * the lock, a hashed folder gets its `id` file whenever it does not name this id: a hook killed
   * between the mkdir and that write must not leave the folder, and the journal written in it
   * later, invisible to gc and status.
   */
  lockContainer(id: string): Lock {
    if (!this.rootExists()) this.ensure();
    const dir = this.containerDirChecked(id, true);
    const lock = lockFile(path.join(dir, 'lock'), this.lockTimeoutMs, `state of container ${id}`)!;
    try {
      if (isHashedFolder(path.basename(dir)) && this.ownFile(dir, ID_FILE, MAX_ID_BYTES)?.toString('utf8') !== id) {
        replaceFile(path.join(dir, ID_FILE), id, 0o600);
      }
    } catch (err) {
      lock.release();
      throw err;
    }
    return lock;
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

  /** The claims lock if it is free now, else null. */
  tryLockClaims(): Lock | null {
    this.ensure();
    return lockFile(path.join(this.root, 'claims.lock'), 0, 'device claims');
  }

  /** The container's journal, checked; null when it has none (readJournalFile). */
  readJournal(id: string): Journal | null {
    return readJournalFile(this.journalPath(id), id);
  }

  /**
   * Writes the first journal and reserves the space of every later write (see journal.ts); on
   * failure it leaves no journal behind and throws one line, e.g. for a full file system. The
   * journal is whole on disk when this returns, and other hooks see its claims; what it returns
   * makes its name durable (an fsync of the folder), and must be called before the first kernel
   * change: the engine calls it once it has let go of the claims lock.
   */
  createJournal(j: Journal): () => void {
    const dir = this.containerDirChecked(j.containerId, false);
    const makeDurable = createJournalFile(dir, journalData(j), j.containerId, path.join(dir, CLAIMS));
    writeClaims(dir, claimsData(j));
    return makeDurable;
  }

  /**
   * Replaces the journal, completely and atomically, in the space createJournal reserved. Fails
   * (one line, journal unchanged) only if the journal outgrew its reservation and the file system
   * has no room for more. `beforeChange` false: no kernel change waits on this write (see
   * swapJournalFile), so the swap is not fsynced in the folder.
   */
  writeJournal(j: Journal, beforeChange = true): void {
    const dir = this.containerDir(j.containerId);
    const data = journalData(j);
    // A step that re-picked an ifindex changes what the journal claims: the old claims file goes
    // before the swap and the new one is written after it, so none is ever older than the journal.
    const claims = claimsData(j);
    const claimsChanged = !this.ownFile(dir, CLAIMS, MAX_CLAIMS_BYTES)?.equals(claims);
    swapJournalFile(dir, data, j.containerId, claimsChanged ? path.join(dir, CLAIMS) : undefined, beforeChange);
    if (claimsChanged) writeClaims(dir, claims);
  }

  /** Ids of every container that has a folder here. */
  containerIds(): string[] {
    if (!this.rootExists()) return [];
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.root, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries.filter((e) => e.isDirectory()).flatMap((e) => (isHashedFolder(e.name) ? this.hashedFolderId(e.name) : [decodeId(e.name)]));
  }

  /**
   * The id a hashed folder belongs to: the one its file `id` names, else the one its journal names
   * (the `id` file lost), provided it hashes to the folder's name; a forged or planted file names none.
   */
  private hashedFolderId(name: string): string[] {
    const dir = path.join(this.root, name);
    const named = this.ownFile(dir, ID_FILE, MAX_ID_BYTES)?.toString('utf8');
    if (named && folderName(named) === name) return [named];
    const owner = journalOwner(this.ownFile(dir, JOURNAL, MAX_JOURNAL_BYTES));
    return owner !== undefined && folderName(owner) === name ? [owner] : [];
  }

  /** Every readable journal, and the containers whose journal is not (never throws for one of them). */
  scanJournals(): { journals: Journal[]; bad: BadJournal[] } {
    const journals: Journal[] = [];
    const bad: BadJournal[] = [];
    for (const id of this.containerIds()) {
      try {
        const j = this.readJournal(id);
        if (j) journals.push(j);
      } catch (err) {
        bad.push({ containerId: id, reason: oneLine((err as Error).message) });
      }
    }
    return { journals, bad };
  }

  /**
   * What every container with a journal claims, for planning under the claims lock: from its
   * claims file when that is whole, else from its journal (one written before claims files, or
   * whose claims file was lost). A folder without a journal claims nothing, as in scanJournals.
   */
  scanClaims(): { claims: ClaimRecord[]; bad: BadJournal[] } {
    const claims: ClaimRecord[] = [];
    const bad: BadJournal[] = [];
    for (const id of this.containerIds()) {
      const dir = this.containerDir(id);
      if (!fs.existsSync(path.join(dir, JOURNAL))) continue;
      // Missing, or not a plain file of ours: the journal decides.
      const data = this.ownFile(dir, CLAIMS, MAX_CLAIMS_BYTES);
      const record = data && decodeClaims(data, id);
      if (record) {
        claims.push(record);
        continue;
      }
      try {
        const j = this.readJournal(id);
        if (j) claims.push(claimRecordOf(j));
      } catch (err) {
        bad.push({ containerId: id, reason: oneLine((err as Error).message) });
      }
    }
    return { claims, bad };
  }

  /** Removes a container's folder; the pin must already be released. The release is marked first (releaseMark). */
  remove(id: string): void {
    this.markRelease();
    // Retried: a gc that opened the lock file as it went may have made it again (ENOTEMPTY).
    fs.rmSync(this.containerDir(id), { recursive: true, force: true, maxRetries: 3, retryDelay: 5 });
  }
}
