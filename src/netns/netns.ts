// Network namespace handles: open by pid or path, make a netlink socket inside
// one, and pin one with a bind mount so its devices outlive its processes.

import * as fs from 'fs';
import * as libc from '../../native/libc';
import { NetlinkSocket } from '../netlink/client';
import { StateError, causeOf } from '../errors';

const SELF_PATH = '/proc/thread-self/ns/net';

/** A network namespace handle (an open nsfs file); `using ns = ...` closes it at the end of the block. */
export class Netns implements Disposable {
  private closed = false;

  private constructor(readonly fd: number, readonly path: string, readonly dev: number, readonly ino: number) {}

  /** The namespace the calling thread is in now: the engine's host unless it is given another. */
  static current(): Netns {
    return Netns.open(SELF_PATH);
  }

  static fromPid(pid: number): Netns {
    if (!Number.isInteger(pid) || pid <= 0) throw new StateError(`no network namespace: invalid pid ${pid}`);
    return Netns.open(`/proc/${pid}/ns/net`);
  }

  /**
   * Opens a namespace file; a plain file is refused here, and another kind of
   * namespace is refused by setns(CLONE_NEWNET) when a socket is made in it.
   */
  static open(path: string): Netns {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO planted at a namespace path must not hang the hook.
      fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw new StateError(`cannot open network namespace ${path}: ${causeOf(err)}`);
    }
    const st = fs.fstatSync(fd);
    if (st.dev !== nsfsDevice()) {
      fs.closeSync(fd);
      throw new StateError(`${path} is not a network namespace`);
    }
    return new Netns(fd, path, st.dev, st.ino);
  }

  /** Whether both handles name the same namespace. */
  sameAs(other: Netns): boolean {
    return this.dev === other.dev && this.ino === other.ino;
  }

  /**
   * Runs `fn` with the calling thread in this namespace, then returns and checks it did (a failed
   * return ends the process). For what the kernel resolves in the caller's namespace when it is
   * asked: a socket made, a /proc/sys/net file opened, a child process started. `fn` must be
   * synchronous: what it leaves for later runs at home. No setns when the thread is here already.
   */
  within<T>(fn: () => T): T {
    using home = Netns.current();
    if (this.sameAs(home)) return fn();
    libc.setns(this.fd, libc.CLONE_NEWNET);
    try {
      return fn();
    } finally {
      returnHome(home, this.path);
    }
  }

  /**
   * The kernel's cookie for this namespace (SO_NETNS_COOKIE): unlike its inode number, never given
   * to another namespace while the kernel runs. Undefined on kernels before 5.14.
   */
  cookie(): string | undefined {
    using sock = this.socket();
    return libc.netnsCookie(sock.fd);
  }

  /** A netlink socket that lives in this namespace, whichever the thread goes on to be in. */
  socket(): NetlinkSocket {
    return this.within(() => NetlinkSocket.open());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Back to the thread's own namespace after a visit. If that fails, whatever this process did next
 * would act on the container's namespace as if it were the host's, so the process ends here.
 */
function returnHome(home: Netns, visited: string): void {
  try {
    libc.setns(home.fd, libc.CLONE_NEWNET);
    const back = fs.statSync(SELF_PATH);
    if (back.ino === home.ino && back.dev === home.dev) return;
    throw new Error(`still in namespace ${back.ino}`);
  } catch (err) {
    fs.writeSync(2, `oci-netdev: fatal: could not return to network namespace ${home.ino} after entering ${visited}: ${causeOf(err)}\n`);
    process.exit(1);
  }
}

/** The kernel's boot id: after a restart, the numbers a journal recorded may name another namespace. */
export function bootId(): string {
  return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/** The entries of a folder, [] when it cannot be read. */
function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A path by which a process can enter the namespace `dev`:`ino`: one of `candidates`, one of
 * iproute2's /run/netns, else /proc/PID/ns/net of a process in it; undefined when none is found.
 */
export function pathInto(dev: number, ino: number, candidates: string[] = []): string | undefined {
  const holds = (path: string): boolean => {
    try {
      const st = fs.statSync(path);
      return st.dev === dev && st.ino === ino;
    } catch {
      return false;
    }
  };
  const named = entries('/run/netns').map((name) => `/run/netns/${name}`);
  const pids = entries('/proc').filter((name) => /^\d+$/.test(name)).map((pid) => `/proc/${pid}/ns/net`);
  return [...candidates, ...named, ...pids].find(holds);
}

let nsfsDev: number | undefined;
function nsfsDevice(): number {
  nsfsDev ??= fs.statSync('/proc/self/ns/net').dev;
  return nsfsDev;
}

/** Keeps `ns` alive by bind-mounting it on `target` (created here, mode 0600). */
export function pin(ns: Netns, target: string): void {
  const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  fs.closeSync(fd);
  try {
    libc.bindMount(`/proc/self/fd/${ns.fd}`, target);
  } catch (err) {
    fs.rmSync(target, { force: true });
    throw err;
  }
}

/** Whether `path` is a pin: a bind mount of a network namespace. */
export function isPinned(path: string): boolean {
  try {
    return fs.statSync(path).dev === nsfsDevice();
  } catch {
    return false;
  }
}

/** Releases a pin; a missing or unmounted pin is fine (unpin is idempotent). */
export function unpin(target: string): void {
  if (isPinned(target)) libc.unmount(target);
  fs.rmSync(target, { force: true });
}
