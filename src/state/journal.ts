// The journal file (spec/journal.schema.json): one line of JSON, an envelope with the format
// version and the sha256 of the journal's text, followed by reserved space that readers ignore.
// Its space is reserved when it is created, before the first kernel change: journal.json and a
// spare, journal.next, both preallocated. Each write fills journal.next from its start, fsyncs it,
// and swaps the two names atomically (renameat2 RENAME_EXCHANGE), so the old journal becomes the
// next spare, already allocated; then the folder is fsynced, unless no kernel change waits on the
// write (a new phase): both names then hold a whole journal anyway. No write after the reservation
// allocates space, and a hook killed at any point leaves the old journal or the new one, never a
// torn one. The fsyncs cost 1-4 ms a write on a disk-backed /run (nothing on a tmpfs); see
// BENCHMARKS.md.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as libc from '../../native/libc';
import { ConfigError, StateError, oneLine } from '../errors';
import { unknownFields, validate } from '../schema/validate';
import { migrateV1 } from './migrate';
import type { Plan } from './journal-records';
import { checkRegular, createExclusive, fsyncDir, preallocate, readRegularFile, sizeText, writeAll } from '../fsio/files';
import { sleepSync } from '../fsio/sleep';
import { envelopeOf, seal, unseal } from './sealed';
import { sha256Hex as sha256 } from './sha256';

/**
 * Journal versions. This release writes version 2 and reads every version any release wrote:
 * version 1 is migrated on read (src/state/migrate.ts) and written back as version 2 at the next
 * write. The rule for every later change: a field added as optional, whose absence means "written
 * by an older release", keeps the version; anything an older reader would misread (a field made
 * required or given another meaning, a new step) takes the next version, and this reader keeps a
 * migration from every earlier one. A journal of a higher version, or of this version with fields
 * this release does not know, was written by a newer release: it is reported with what to do
 * (run that release's gc, or upgrade) and left as it is; the other journals go on.
 */
const JOURNAL_VERSION = 2;
/** The most a journal file may hold, reserved space included. */
export const MAX_JOURNAL_BYTES = 64 * 1024 * 1024;
/** Reserved at creation: this, or four times the first journal if more. */
const MIN_RESERVE_BYTES = 64 * 1024;
const PAGE = 4096;
export const JOURNAL = 'journal.json';
const SPARE = 'journal.next';
/** The first journal while its space is reserved; renamed to journal.json once complete. */
const FIRST = 'journal.first';

type Phase = 'attaching' | 'attached' | 'detaching';

/** A CNI plugin ADD: the network, the runtime's container id and the interface name. */
export interface JournalOrigin {
  door: 'cni';
  network: string;
  containerId: string;
  ifname: string;
  /** The IPAM plugin that reserved addresses, the config it was given and CNI_PATH: for gc's IPAM DEL. */
  ipam?: { plugin: string; config: Record<string, unknown>; path: string[] };
}

/** What the envelope holds (spec/journal.schema.json). */
export interface Journal {
  containerId: string;
  /** The bundle the container was created from: a poststop from another bundle is not its. */
  bundle?: string;
  /** Made by another front door than the OCI hooks (spec/journal.schema.json). */
  origin?: JournalOrigin;
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
  /** Why the last restore could not finish, when one ran to its end and failed. */
  restoreFailure?: string;
  /** The host's network namespace, the only one restores happen in; absent in journals of older releases. */
  hostNetns?: HostNamespace;
  /**
   * Every device is home, but some under a fallback name or without an altname, because the host
   * uses those names (their records say which): gc gives them back once free, then closes the journal.
   */
  namesPending?: boolean;
  /** The CNI networks attached after the devices, in order; DEL runs in reverse. */
  networks?: JournalNetwork[];
}

/** A network namespace as a journal records it (spec/journal.schema.json, hostNetns). */
export interface HostNamespace {
  dev: number;
  ino: number;
  /** The kernel's boot id: after a restart the same numbers may name another namespace. */
  bootId: string;
  /**
   * Its SO_NETNS_COOKIE (a u64, in decimal): an inode number may be reused once the namespace
   * dies, a cookie is not. Absent on kernels before 5.14 and in journals of older releases.
   */
  cookie?: string;
  /** The path it was opened by (EngineOptions.hostNetns), when it was given one. */
  path?: string;
}

/**
 * One CNI network of a container, with all that DEL needs whatever happens to the files and
 * options it was added with: the list as loaded, the plugin path, the cache dir, the arguments.
 */
export interface JournalNetwork {
  network: string;
  ifname: string;
  args: Array<[string, string]>;
  runtimeConfig: Record<string, unknown>;
  /** The network list as loaded (a .conf made into a list). */
  config: Record<string, unknown>;
  cniPath: string[];
  cacheDir: string;
  /** pending: not started; adding: its ADD began, so a DEL is owed; added: `result` holds the final result. */
  state: 'pending' | 'adding' | 'added';
  /** The final ADD result, in the list's version. */
  result?: Record<string, unknown>;
}

/** A journal that does not parse or check; a read during a swap can see one (see readJournal). */
const CHECK_JOURNAL = 'check journal';
const corrupt = (message: string): StateError => new StateError(message, { op: CHECK_JOURNAL });

/** A container that has a folder here but whose journal cannot be used. */
export interface BadJournal {
  containerId: string;
  /** One line naming the journal and what is wrong with it. */
  reason: string;
}

/** The file's first line: the envelope holding the journal and the sha256 of its text. */
export function encodeJournal(j: Journal): Buffer {
  return seal('journal', j, JOURNAL_VERSION);
}

/** A journal this release cannot read because a newer one wrote it, with what to do. */
const newer = (where: string, why: string): StateError =>
  new StateError(`${where} was written by a newer oci-netdev (${why}): run that release's oci-netdev gc, or upgrade to it`, { op: 'read journal' });

/** The journal in `data` (a whole journal file), checked; `where` names it in errors. */
function decodeJournal(data: Buffer, id: string, where: string): Journal {
  let envelope: unknown;
  try {
    envelope = envelopeOf(data);
  } catch (err) {
    throw corrupt(`${where} is corrupt: ${oneLine((err as Error).message)}`);
  }
  const version = (envelope as { version?: unknown } | null)?.version;
  const readable = `this one reads versions 1 to ${JOURNAL_VERSION}`;
  if (Number.isSafeInteger(version) && (version as number) > JOURNAL_VERSION) throw newer(where, `journal version ${version as number}; ${readable}`);
  // Version 1 had no envelope: the file is the journal itself, checked once migrated.
  const v1 = version === 1;
  if (!v1 && version !== JOURNAL_VERSION) throw corrupt(`${where} is corrupt: it has version ${JSON.stringify(version) ?? 'none'}; ${readable}`);
  const journal = v1 ? migrateV1(envelope as Record<string, unknown>) : unseal(envelope, 'journal');
  if (journal === undefined) throw corrupt(`${where} is corrupt: checksum mismatch`);
  const checked = v1 ? { version: JOURNAL_VERSION, sha256: sha256(JSON.stringify(journal)), journal } : envelope;
  try {
    validate('journal', checked, where);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Whole (its checksum holds) but with fields we do not know: a newer release added them.
    const unknown = v1 ? null : unknownFields('journal', checked);
    if (unknown) throw newer(where, `its field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} unknown here`);
    throw corrupt(`${where} is invalid${v1 ? ' (version 1)' : ''}: ${err.problem!}`);
  }
  const j = journal as Journal;
  if (j.containerId !== id) throw corrupt(`${where} is corrupt: it belongs to container ${JSON.stringify(j.containerId)}`);
  return j;
}

/** The container id a journal file's envelope names, unchecked (readJournal checks it); undefined when it names none. */
export function journalOwner(data: Buffer | undefined): string | undefined {
  if (!data) return undefined;
  try {
    const id = (envelopeOf(data) as { journal?: { containerId?: unknown } } | null)?.journal?.containerId;
    return typeof id === 'string' && id !== '' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The space reserved for a journal whose first version takes `bytes`: never more than readJournal reads. */
const reserveFor = (bytes: number): number => Math.min(MAX_JOURNAL_BYTES, Math.ceil(Math.max(MIN_RESERVE_BYTES, 4 * bytes) / PAGE) * PAGE);

/**
 * How deep a CNI network's config, runtimeConfig or result may nest. JSON.stringify recurses, and
 * how deep it can go depends on the JavaScript engine (Node's V8 and the executable's
 * JavaScriptCore differ), so the journal sets a limit of its own, far above any real config.
 */
const MAX_NETWORK_DEPTH = 512;

/** Whether `value` nests objects or arrays more than `limit` deep; iterative, so any depth is safe to ask. */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [v, depth] = next;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The journal's file content; refused when readJournal would refuse the file (a huge CNI result),
 * or when a CNI config, runtimeConfig or result nests deeper than MAX_NETWORK_DEPTH (JSON.parse
 * took it, but writing it back recurses).
 */
export function journalData(j: Journal): Buffer {
  if ((j.networks ?? []).some((n) => nestedDeeperThan([n.config, n.runtimeConfig, n.result], MAX_NETWORK_DEPTH))) {
    throw new StateError(`the journal of container ${j.containerId} cannot be written: a CNI network's config or runtimeConfig is nested too deeply`);
  }
  const data = encodeJournal(j);
  if (data.length > MAX_JOURNAL_BYTES) {
    throw new StateError(`the journal of container ${j.containerId} would be ${data.length} bytes, larger than ${sizeText(MAX_JOURNAL_BYTES)}`);
  }
  return data;
}

/**
 * The journal in `file`, checked (version, checksum, schema, id); null when there is none. A
 * StateError names the journal and says what is wrong. A reader without the container's lock
 * may catch a journal while its spare is being rewritten (a swap during its read, then the next
 * write into the file it holds): the checksum shows it, and a second read gets a whole one.
 */
export function readJournalFile(file: string, id: string): Journal | null {
  const where = `journal of container ${id} (${file})`;
  for (let attempt = 1; ; attempt++) {
    const data = readRegularFile(file, { where, error: StateError, owner: 'self', maxBytes: MAX_JOURNAL_BYTES, missingOk: true });
    if (data === null) return null;
    try {
      return decodeJournal(data, id, where);
    } catch (err) {
      if (!(err instanceof StateError && err.op === CHECK_JOURNAL) || attempt === 3) throw err;
      sleepSync(5 * attempt);
    }
  }
}

/**
 * Writes the first journal (`data`, from journalData) in the container's folder `dir` and reserves
 * the space of every later write (see the top of this file); `stale`, a file that must not outlive
 * an earlier journal, goes before this one appears. On failure it leaves no journal behind and
 * throws one line, e.g. for a full file system. The journal is whole on disk when this returns;
 * what it returns makes its name durable (an fsync of the folder), and must be called before the
 * first kernel change. The spare is not fsynced: its content is never read, and its space is the
 * file system's to account from the fallocate on.
 */
export function createJournalFile(dir: string, data: Buffer, containerId: string, stale: string): () => void {
  const size = reserveFor(data.length);
  const made: string[] = [];
  try {
    for (const [name, content] of [[SPARE, null], [FIRST, data]] as const) {
      const file = path.join(dir, name);
      const fd = createExclusive(file, 0o600);
      made.push(file);
      try {
        preallocate(fd, size, `(${size} bytes for ${file})`);
        if (content) {
          writeAll(fd, content, 0);
          fs.fsyncSync(fd);
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    // A claims file left by an earlier journal of this id (a remove cut short) goes before
    // this journal appears: a hook killed next must not leave it standing for this one.
    fs.rmSync(stale, { force: true });
    fs.renameSync(path.join(dir, FIRST), path.join(dir, JOURNAL));
  } catch (err) {
    for (const file of made) fs.rmSync(file, { force: true });
    throw new StateError(`cannot reserve space for the journal of container ${containerId} in ${dir}: ${oneLine((err as Error).message)}`);
  }
  return () => {
    try {
      fsyncDir(dir);
    } catch (err) {
      throw new StateError(`cannot write the journal of container ${containerId}: ${oneLine((err as Error).message)}`);
    }
  };
}

/**
 * Replaces the journal in `dir` with `data`, completely and atomically, in the space
 * createJournalFile reserved; `stale`, when given, goes first. Fails (one line, journal unchanged)
 * only if the journal outgrew its reservation and the file system has no room for more.
 * `beforeChange` false: no kernel change waits on this write (a new phase, a restore's outcome),
 * so the swap is not fsynced in the folder; the new journal is fsynced as always, so after a power
 * cut the folder holds the old journal or the new one, both whole.
 */
export function swapJournalFile(dir: string, data: Buffer, containerId: string, stale: string | undefined, beforeChange: boolean): void {
  const spare = path.join(dir, SPARE);
  try {
    if (stale !== undefined) fs.rmSync(stale, { force: true });
    let fd: number;
    try {
      fd = fs.openSync(spare, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      // Removed by hand: a new spare, allocated now.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fd = createExclusive(spare, 0o600);
    }
    try {
      const st = fs.fstatSync(fd);
      checkRegular(st, { where: `journal spare ${spare}`, error: StateError, owner: 'self' });
      if (st.size < data.length) preallocate(fd, reserveFor(data.length), `(growing ${spare})`);
      writeAll(fd, data, 0);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      libc.exchangeNames(dfd, SPARE, JOURNAL);
      // The swap itself must reach the disk before the kernel is touched.
      if (beforeChange) fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (err) {
    if (err instanceof StateError) throw err;
    throw new StateError(`cannot write the journal of container ${containerId}: ${oneLine((err as Error).message)}`);
  }
}
