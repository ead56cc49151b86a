// Throwaway network namespaces, stand-in NICs and temp dirs, all removed in teardown even after a
// failure, plus snapshots of devices taken with iproute2 (independent of the code under test).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { RUN_DIR, uniqueId } from './names';

/** The repository root (this file runs from dist/test/helpers). */
export const REPO_ROOT = resolve(__dirname, '../../..');

export interface ShResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ShOptions {
  /** Written to stdin; stdin is empty otherwise. */
  input?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Default 60 s; the child is killed with SIGKILL and sh throws. */
  timeoutMs?: number;
}

/** Runs a command to completion. Throws only if it cannot be run or times out. */
export function sh(cmd: string, args: string[], opts: ShOptions = {}): ShResult {
  const r = spawnSync(cmd, args, {
    input: opts.input ?? '',
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`${[cmd, ...args].join(' ')}: ${r.error.message}\n${r.stderr ?? ''}`);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Like sh, but throws with the command's stderr unless it exits 0; returns stdout. */
export function shOk(cmd: string, args: string[], opts: ShOptions = {}): string {
  const r = sh(cmd, args, opts);
  if (r.status !== 0) {
    throw new Error(`${[cmd, ...args].join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Single-quoted for sh. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the shell `script` in a private mount namespace where every node on this machine is
 * /dev/null and /tmp is an empty noexec tmpfs (none of it reaches the machine's own mounts), and
 * prints what /tmp holds at the end after a line `/tmp:`. A checkout under /tmp (CI clones into
 * /tmp/fresh-PID) is bound back in place, through a descriptor opened before the tmpfs hid it (mount
 * must not canonicalize that /proc path, which would name the hidden folder), and left out of that listing.
 */
export function withoutNode(script: string, opts: ShOptions = {}): ShResult {
  const nodes = [...new Set(shOk('which', ['-a', 'node', 'nodejs']).split('\n').filter(Boolean).map((p) => realpathSync(p)))];
  const repo = realpathSync(REPO_ROOT);
  const inTmp = repo.startsWith('/tmp/') ? repo : undefined;
  const setup = [
    'set -e',
    ...(inTmp ? [`exec 9< ${shQuote(inTmp)}`] : []),
    'mount -t tmpfs -o noexec,nosuid,nodev,size=1m oci-netdev-test-tmp /tmp',
    ...(inTmp ? [`mkdir -p ${shQuote(inTmp)}`, `mount --no-canonicalize --bind /proc/self/fd/9 ${shQuote(inTmp)}`, 'exec 9<&-'] : []),
    ...nodes.map((n) => `mount --bind /dev/null ${shQuote(n)}`),
    'set +e',
  ];
  const listing = inTmp ? `{ ls -A /tmp | grep -v -x -F ${shQuote(inTmp.split('/')[2])}; true; }` : 'ls -A /tmp';
  return sh('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', [...setup, script, `echo /tmp:; ${listing}`].join('\n')], opts);
}

export const netnsPath = (ns: string): string => `/run/netns/${ns}`;

/**
 * [cmd, args] running argv in the network namespace `ns` only. Not `ip netns exec`: that also
 * unshares the mount namespace, which would hide the hook's netns pins from everyone else.
 * Use as `sh(...inSimHost(ns, argv))`.
 */
export function inSimHost(ns: string, argv: string[]): [string, string[]] {
  return ['nsenter', [`--net=${netnsPath(ns)}`, '--', ...argv]];
}

/** Mount points from /proc/self/mountinfo, octal escapes decoded. */
export function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** What a test registers its cleanups with; a tap Test fits. */
export interface Teardownable {
  teardown(fn: () => void): void;
}

/** Everything created through a Sandbox is removed, newest first, when the test ends. */
export class Sandbox {
  private readonly cleanups: (() => void)[] = [];

  constructor(t: Teardownable) {
    t.teardown(() => this.teardown());
  }

  /** Registers a cleanup; it runs even if an earlier cleanup throws. */
  defer(fn: () => void): void {
    this.cleanups.push(fn);
  }

  teardown(): void {
    const errors: unknown[] = [];
    for (let fn = this.cleanups.pop(); fn; fn = this.cleanups.pop()) {
      try {
        fn();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw new AggregateError(errors, errors.map(String).join('\n'));
  }

  /** A new named netns `ondt-<run>-<role>-<n>`. Deleting it destroys the veths inside. */
  createNetns(role = 'ns'): string {
    const ns = uniqueId(role);
    shOk('ip', ['netns', 'add', ns]);
    this.defer(() => shOk('ip', ['netns', 'del', ns]));
    return ns;
  }

  /** A veth pair a <-> b inside `ns` (a stand-in NIC and its peer), both up. */
  createVethPair(ns: string, a: string, b: string): void {
    shOk('ip', ['-n', ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    shOk('ip', ['-n', ns, 'link', 'set', a, 'up']);
    shOk('ip', ['-n', ns, 'link', 'set', b, 'up']);
  }

  /**
   * A fresh directory under RUN_DIR. Teardown detaches mounts beneath it, removes it, and removes
   * RUN_DIR too once it is empty.
   */
  tempDir(role: string): string {
    mkdirSync(RUN_DIR, { recursive: true });
    const dir = mkdtempSync(join(RUN_DIR, `${role}-`));
    this.defer(() => {
      for (const mp of mountPoints().filter((m) => m.startsWith(dir + '/')).reverse()) {
        shOk('umount', ['--lazy', mp]);
      }
      rmSync(dir, { recursive: true, force: true });
      if (!readdirSync(RUN_DIR).length) rmdirSync(RUN_DIR);
    });
    return dir;
  }
}

/** `ip -n ns addr add cidr dev dev ...extra`, e.g. extra = ['broadcast', '+', 'label', 'x:1']. */
export function addAddress(ns: string, dev: string, cidr: string, extra: string[] = []): void {
  shOk('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', dev, ...extra]);
}

export interface AddrSnapshot {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
  label: string | null;
  broadcast: string | null;
  /** Lasting flags (secondary, nodad, noprefixroute, ...), sorted; not tentative and the like. */
  flags: string[];
}

export interface LinkSnapshot {
  name: string;
  kind: string | null;
  mtu: number;
  mac: string;
  /** Device flags as ip shows them, sorted. */
  flags: string[];
  /** Administratively up (IFF_UP), whatever the operstate. */
  up: boolean;
  alias: string | null;
  /** Sorted by family and address; kernel-made fe80::/64 link-locals left out. */
  addresses: AddrSnapshot[];
}

const TRANSIENT_ADDR_FLAGS = new Set(['tentative', 'optimistic', 'dadfailed', 'deprecated']);

interface IpAddr {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
  label?: string;
  broadcast?: string;
  [flag: string]: unknown;
}

interface IpLink {
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  addr_info: IpAddr[];
}

const isKernelLinkLocal = (a: IpAddr): boolean =>
  a.family === 'inet6' && a.prefixlen === 64 && a.scope === 'link' && a.local.startsWith('fe80:');

function normalize(l: IpLink): LinkSnapshot {
  return {
    name: l.ifname,
    kind: l.linkinfo?.info_kind ?? null,
    mtu: l.mtu,
    mac: l.address,
    flags: [...l.flags].sort(),
    up: l.flags.includes('UP'),
    alias: l.ifalias ?? null,
    addresses: l.addr_info
      .filter((a) => !isKernelLinkLocal(a))
      .map((a) => ({
        family: a.family,
        local: a.local,
        prefixlen: a.prefixlen,
        scope: a.scope,
        label: a.label ?? null,
        broadcast: a.broadcast ?? null,
        flags: Object.keys(a)
          .filter((k) => a[k] === true && !TRANSIENT_ADDR_FLAGS.has(k))
          .sort(),
      }))
      .sort((x, y) => x.family.localeCompare(y.family) || x.local.localeCompare(y.local)),
  };
}

function ipLinks(ns: string, dev?: string): IpLink[] {
  return JSON.parse(shOk('ip', ['-n', ns, '-j', '-d', 'addr', 'show', ...(dev ? ['dev', dev] : [])])) as IpLink[];
}

/** One device in `ns`, normalized for comparison; throws if it does not exist. */
export function linkSnapshot(ns: string, dev: string): LinkSnapshot {
  return normalize(ipLinks(ns, dev)[0]);
}

/** Every device in `ns`, by name. */
export function nsSnapshot(ns: string): Record<string, LinkSnapshot> {
  return Object.fromEntries(ipLinks(ns).map((l) => [l.ifname, normalize(l)]));
}

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

export type NsSnapshot = Record<string, LinkSnapshot>;

/**
 * nsSnapshot once the kernel's asynchronous link state (carrier and operstate, which linkwatch
 * updates after the fact) has settled: two reads 100 ms apart agree.
 */
export async function steady(ns: string): Promise<NsSnapshot> {
  let last = nsSnapshot(ns);
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const next = nsSnapshot(ns);
    if (isDeepStrictEqual(next, last)) return next;
    last = next;
  }
  throw new Error(`devices in ${ns} do not settle`);
}

/** nsSnapshot, read again for up to 3 s until it equals `expected` (carrier may lag); for t.same. */
export async function settledTo(ns: string, expected: NsSnapshot): Promise<NsSnapshot> {
  let snap = nsSnapshot(ns);
  for (let i = 0; i < 30 && !isDeepStrictEqual(snap, expected); i++) {
    await sleep(100);
    snap = nsSnapshot(ns);
  }
  return snap;
}
