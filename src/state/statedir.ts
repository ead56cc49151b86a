// The state directory: one folder per container holding its journal, its netns pin and its lock,
// plus a global lock for claiming devices.
//
// The journal (spec/journal.schema.json) is one line of JSON, an envelope with the format version
// and the sha256 of the journal's text, followed by reserved space that readers ignore. Its space
// is reserved when it is created, before the first kernel change: journal.json and a spare,
// journal.next, both preallocated. Each write fills journal.next from its start, fsyncs it, and
// swaps the two names atomically (renameat2 RENAME_EXCHANGE), so the old journal becomes the
// next spare, already allocated; then the folder is fsynced, unless no kernel change waits on the
// write (a new phase): both names then hold a whole journal anyway. No write after the reservation
// allocates space, and a hook killed at any point leaves the old journal or the new one, never a
// torn one. The fsyncs cost 1-4 ms a write on a disk-backed /run (nothing on a tmpfs); see
// BENCHMARKS.md.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as libc from '../../native/libc';
import { ConfigError, StateError, causeOf, oneLine } from '../errors';
import { parseJsonText } from '../schema/json';
import { unknownFields, validate } from '../schema/validate';
import { migrateV1 } from './migrate';
import type { Plan } from './records';
import { checkRegular, createExclusive, fsyncDir, preallocate, readRegularFile, replaceFile, sizeText, writeAll } from './files';
import { sha256Hex as sha256 } from './sha256';

export const DEFAULT_STATE_DIR = '/run/oci-netdev';
/** How long a hook waits for another hook's lock before it gives up with an error. */
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
/** NAME_MAX: the longest path component. */
const MAX_COMPONENT_BYTES = 255;
/** How much of an id too long for a folder name its folder's name keeps, before the hash. */
const HASHED_PREFIX_BYTES = 64;
/** In a hashed folder (see folderName): the id it belongs to. */
const ID_FILE = 'id';
const MAX_ID_BYTES = 64 * 1024;

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
const MAX_JOURNAL_BYTES = 64 * 1024 * 1024;
/** Reserved at creation: this, or four times the first journal if more. */
const MIN_RESERVE_BYTES = 64 * 1024;
const PAGE = 4096;
const JOURNAL = 'journal.json';
const SPARE = 'journal.next';
/** The first journal while its space is reserved; renamed to journal.json once complete. */
const FIRST = 'journal.first';
/** What the journal claims (ClaimRecord), written once beside it for the claims scan. */
const CLAIMS = 'claims.json';
const MAX_CLAIMS_BYTES = 1024 * 1024;
/** In the root: a token rewritten in place whenever a container's folder is removed (releaseMark). */
const RELEASED = 'released';
const MARK_BYTES = 64;

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

/** A container id as one safe path component: anything but [A-Za-z0-9_-] is %-encoded. */
export function encodeId(id: string): string {
  return Buffer.from(id, 'utf8').toString('latin1').replace(/[^A-Za-z0-9_-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The folder name of an id whose encoding is longer than a path component may be (a CNI
 * attachment of a long network name and container id): a readable prefix, '=' (which encodeId
 * never writes) and the id's sha256, so that ids alike in their first bytes stay apart. The full
 * id is kept in the folder's file `id`, and in its journal.
 */
function folderName(id: string): string {
  const name = encodeId(id);
  return Buffer.byteLength(name) <= MAX_COMPONENT_BYTES ? name : `${name.slice(0, HASHED_PREFIX_BYTES)}=${sha256(id)}`;
}

const isHashedFolder = (name: string): boolean => name.includes('=');

function decodeId(name: string): string {
  return Buffer.from(name.replace(/%([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

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

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

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
  const text = JSON.stringify(j);
  return Buffer.from(`{"version":${JOURNAL_VERSION},"sha256":"${sha256(text)}","journal":${text}}\n`);
}

/** A journal this release cannot read because a newer one wrote it, with what to do. */
const newer = (where: string, why: string): StateError =>
  new StateError(`${where} was written by a newer oci-netdev (${why}): run that release's oci-netdev gc, or upgrade to it`, { op: 'read journal' });

/** The journal in `data` (a whole journal file), checked; `where` names it in errors. */
function decodeJournal(data: Buffer, id: string, where: string): Journal {
  const end = data.indexOf(0x0a);
  let envelope: unknown;
  try {
    envelope = parseJsonText(data.subarray(0, end === -1 ? data.length : end).toString('utf8'));
  } catch (err) {
    throw corrupt(`${where} is corrupt: ${oneLine((err as Error).message)}`);
  }
  const version = (envelope as { version?: unknown } | null)?.version;
  const readable = `this one reads versions 1 to ${JOURNAL_VERSION}`;
  if (Number.isSafeInteger(version) && (version as number) > JOURNAL_VERSION) throw newer(where, `journal version ${version as number}; ${readable}`);
  // Version 1 had no envelope: the file is the journal itself, checked once migrated.
  const v1 = version === 1;
  if (!v1 && version !== JOURNAL_VERSION) throw corrupt(`${where} is corrupt: it has version ${JSON.stringify(version) ?? 'none'}; ${readable}`);
  const journal = v1 ? migrateV1(envelope as Record<string, unknown>) : (envelope as { journal?: unknown }).journal;
  const sum = v1 ? sha256(JSON.stringify(journal)) : (envelope as { sha256?: unknown }).sha256;
  if (journal === undefined || sum !== sha256(JSON.stringify(journal))) throw corrupt(`${where} is corrupt: checksum mismatch`);
  const checked = v1 ? { version: JOURNAL_VERSION, sha256: sum, journal } : envelope;
  try {
    validate('journal', checked, where);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Whole (its checksum holds) but with fields we do not know: a newer release added them.
    const unknown = v1 ? null : unknownFields('journal', checked);
    if (unknown) throw newer(where, `its field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} unknown here`);
    throw corrupt(`${where} is invalid${v1 ? ' (version 1)' : ''}: ${err.message.slice(where.length + 2)}`);
  }
  const j = journal as Journal;
  if (j.containerId !== id) throw corrupt(`${where} is corrupt: it belongs to container ${JSON.stringify(j.containerId)}`);
  return j;
}

/** The container id a journal file's envelope names, unchecked (readJournal checks it); undefined when it names none. */
function journalOwner(data: Buffer | undefined): string | undefined {
  if (!data) return undefined;
  const end = data.indexOf(0x0a);
  try {
    const id = (JSON.parse(data.subarray(0, end === -1 ? data.length : end).toString('utf8')) as { journal?: { containerId?: unknown } } | null)?.journal?.containerId;
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
function journalData(j: Journal): Buffer {
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
 * What a container's journal holds against every other createRuntime: taken from its plan, which
 * is fixed when the journal is made. The claims scan (scanClaims), under the claims lock, reads
 * these small files instead of every whole journal (BENCHMARKS.md: the 32-container rows).
 */
export interface ClaimRecord {
  containerId: string;
  /** The plan's link group. */
  group: number;
  netnsDev: number;
  netnsIno: number;
  /** Host device names held: a moved device's original name, its altnames and the fallback it is home under, a created veth's key. */
  hostNames: string[];
  /** The ifindexes its devices were given in its namespace. */
  containerIndexes: number[];
  /** Host ifindexes of the lower devices its macvlans sit on. */
  macvlanLowers: number[];
  /** The MACs its devices have or were given, on either side (a claims file without them is read from the journal). */
  macs: string[];
  /** The addresses, without prefix, its devices have or were given, and those its networks asked for. */
  addresses: string[];
}

/** The MACs and addresses a network's capability args (mac, ips) and CNI_ARGS (MAC=, IP=) ask for. */
function networkAddresses(n: JournalNetwork): { macs: string[]; addresses: string[] } {
  const rc = n.runtimeConfig;
  const texts = (v: unknown): string[] => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
  const arg = (key: string) => n.args.filter(([k]) => k === key).flatMap(([, v]) => v.split(','));
  return { macs: [...texts(rc.mac), ...arg('MAC')], addresses: [...texts(rc.ips), ...arg('IP')].map((a) => a.split('/')[0]) };
}

export function claimRecordOf(j: Journal): ClaimRecord {
  const devices = j.plan.devices;
  return {
    containerId: j.containerId,
    group: j.plan.group,
    netnsDev: j.netnsDev,
    netnsIno: j.netnsIno,
    // A lost device's name is free for new claims: its record has ended. A fallback name is held with
    // the original, and so are its own altnames: one taken meanwhile would come home without the device.
    hostNames: devices.flatMap((d) => (d.lost !== undefined ? []
      : d.kind === 'host' ? [d.original.name, ...d.original.altNames, ...(d.fallbackName !== undefined ? [d.fallbackName] : [])] : d.kind === 'veth' ? [d.key] : [])),
    containerIndexes: devices.map((d) => d.containerIndex),
    macvlanLowers: devices.flatMap((d) => (d.kind === 'macvlan' && d.identity.hostLowerIndex !== undefined ? [d.identity.hostLowerIndex] : [])),
    macs: [
      ...devices.flatMap((d) => [d.mac, d.kind === 'host' ? d.original.mac : undefined, d.kind === 'veth' ? d.hostMac : undefined]),
      ...(j.networks ?? []).flatMap((n) => networkAddresses(n).macs),
    ].filter((m): m is string => typeof m === 'string' && m !== '').map((m) => m.toLowerCase()),
    addresses: [
      ...devices.flatMap((d) => [
        ...d.containerAddresses, ...(d.kind === 'host' ? d.original.addresses : []), ...(d.kind === 'veth' ? d.hostAddresses ?? [] : []),
      ].map((a) => a.local ?? a.address)),
      ...(j.networks ?? []).flatMap((n) => networkAddresses(n).addresses),
    ],
  };
}

/** A claims file's content: the record and the sha256 of its text. */
function claimsData(j: Journal): Buffer {
  const text = JSON.stringify(claimRecordOf(j));
  return Buffer.from(`{"sha256":"${sha256(text)}","claims":${text}}\n`);
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const ints = (v: unknown): boolean => Array.isArray(v) && v.every(isInt);
const strings = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** A claims file's record, if it is whole (its checksum holds), well-formed and the container's. */
function decodeClaims(data: Buffer, id: string): ClaimRecord | null {
  try {
    const end = data.indexOf(0x0a);
    const { sha256: sum, claims } = JSON.parse(data.subarray(0, end === -1 ? data.length : end).toString('utf8')) as { sha256?: unknown; claims?: unknown };
    if (sum !== sha256(JSON.stringify(claims))) return null;
    const c = claims as Partial<ClaimRecord>;
    const ok = c.containerId === id && isInt(c.group) && isInt(c.netnsDev) && isInt(c.netnsIno)
      && strings(c.hostNames) && ints(c.containerIndexes) && ints(c.macvlanLowers) && strings(c.macs) && strings(c.addresses);
    return ok ? c as ClaimRecord : null;
  } catch {
    return null;
  }
}

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

  /**
   * The container's journal, checked (version, checksum, schema, id); null when it has none. A
   * StateError names the journal and says what is wrong. A reader without the container's lock
   * may catch a journal while its spare is being rewritten (a swap during its read, then the next
   * write into the file it holds): the checksum shows it, and a second read gets a whole one.
   */
  readJournal(id: string): Journal | null {
    const file = this.journalPath(id);
    const where = `journal of container ${id} (${file})`;
    for (let attempt = 1; ; attempt++) {
      const data = readRegularFile(file, { where, error: StateError, owner: 'self', maxBytes: MAX_JOURNAL_BYTES, missingOk: true });
      if (data === null) return null;
      try {
        return decodeJournal(data, id, where);
      } catch (err) {
        if (!(err instanceof StateError && err.op === CHECK_JOURNAL) || attempt === 3) throw err;
        Atomics.wait(SLEEPER, 0, 0, 5 * attempt);
      }
    }
  }

  /**
   * Writes the first journal and reserves the space of every later write (see the top of this
   * file); on failure it leaves no journal behind and throws one line, e.g. for a full file system.
   * The journal is whole on disk when this returns, and other hooks see its claims; what it
   * returns makes its name durable (an fsync of the folder), and must be called before the first
   * kernel change: the engine calls it once it has let go of the claims lock. The spare is not
   * fsynced: its content is never read, and its space is the file system's to account from the
   * fallocate on.
   */
  createJournal(j: Journal): () => void {
    const dir = this.containerDirChecked(j.containerId, false);
    const data = journalData(j);
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
      fs.rmSync(path.join(dir, CLAIMS), { force: true });
      fs.renameSync(path.join(dir, FIRST), this.journalPath(j.containerId));
    } catch (err) {
      for (const file of made) fs.rmSync(file, { force: true });
      throw new StateError(`cannot reserve space for the journal of container ${j.containerId} in ${dir}: ${oneLine((err as Error).message)}`);
    }
    this.writeClaims(dir, claimsData(j));
    return () => {
      try {
        fsyncDir(dir);
      } catch (err) {
        throw new StateError(`cannot write the journal of container ${j.containerId}: ${oneLine((err as Error).message)}`);
      }
    };
  }

  /**
   * The journal's claim record, after the journal: no fsync and no error, because a claims file that
   * is missing, torn or unwritable only sends the scan back to the journal itself.
   */
  private writeClaims(dir: string, data: Buffer): void {
    const file = path.join(dir, CLAIMS);
    try {
      fs.rmSync(file, { force: true });
      const fd = createExclusive(file, 0o600);
      try {
        writeAll(fd, data);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      fs.rmSync(file, { force: true });
    }
  }

  /**
   * Replaces the journal, completely and atomically, in the space createJournal reserved. Fails
   * (one line, journal unchanged) only if the journal outgrew its reservation and the file system
   * has no room for more. `beforeChange` false: no kernel change waits on this write (a new phase,
   * a restore's outcome), so the swap is not fsynced in the folder; the new journal is fsynced as
   * always, so after a power cut the folder holds the old journal or the new one, both whole.
   */
  writeJournal(j: Journal, beforeChange = true): void {
    const dir = this.containerDir(j.containerId);
    const data = journalData(j);
    const spare = path.join(dir, SPARE);
    // A step that re-picked an ifindex changes what the journal claims: the old claims file goes
    // before the swap and the new one is written after it, so none is ever older than the journal.
    const claims = claimsData(j);
    const claimsFile = path.join(dir, CLAIMS);
    const claimsChanged = !this.ownFile(dir, CLAIMS, MAX_CLAIMS_BYTES)?.equals(claims);
    try {
      if (claimsChanged) fs.rmSync(claimsFile, { force: true });
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
      throw new StateError(`cannot write the journal of container ${j.containerId}: ${oneLine((err as Error).message)}`);
    }
    if (claimsChanged) this.writeClaims(dir, claims);
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
      Atomics.wait(SLEEPER, 0, 0, pause);
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);
  return null;
}

