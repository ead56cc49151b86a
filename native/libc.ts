// The only module that calls C: koffi bindings to the few libc calls Node does not offer (netlink
// and unix datagram sockets, setns, mount, flock, fallocate, renameat2, alarm, the multicast ioctl). Every failure becomes a SyscallError
// carrying errno. koffi and the C library are loaded on first use, so commands that never reach the
// kernel do not pay for them, and each function is bound on its own first call, so a C library
// without one fails only the feature that needs it. Struct layouts and numbers: platform.ts.

import type * as Koffi from 'koffi';
import { loadKoffi } from './koffi-loader';
import { LIBC_NAME, LINUX, Platform, platformFor } from './platform';
import { SyscallError } from '../src/errors';

/** A failed call as the typed error every layer knows: errno with its name and text. */
function syscallError(syscall: string, errno: number, detail?: string): SyscallError {
  return new SyscallError(syscall, errno, errnoName(errno), strerror(errno), detail);
}

// Numbers every Linux architecture shares (platform.ts); callers pass some of them to the functions below.
export const { SOL_NETLINK, MSG_TRUNC, CLONE_NEWNET, LOCK_EX, LOCK_NB } = LINUX;
const { AF_UNIX, AF_NETLINK, MSG_DONTWAIT, MSG_NOSIGNAL, MS_BIND, MNT_DETACH } = LINUX;

/**
 * Every C function the binding uses, by name, with its koffi prototype. Each is bound on its first
 * call (lazily, one by one), so a C library that lacks one fails only the feature that needs it.
 * All are in libc.so.6 itself since glibc 2.14 or earlier (the unit tests check against 2.28), and in musl.
 */
export const PROTOTYPES = {
  socket: 'int socket(int, int, int)',
  bind: 'int bind(int, const void *, uint32_t)',
  connect: 'int connect(int, const void *, uint32_t)',
  getsockname: 'int getsockname(int, void *, void *)',
  send: 'intptr_t send(int, const void *, size_t, int)',
  sendto: 'intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)',
  recv: 'intptr_t recv(int, void *, size_t, int)',
  recvfrom: 'intptr_t recvfrom(int, void *, size_t, int, void *, void *)',
  setsockopt: 'int setsockopt(int, int, int, const void *, uint32_t)',
  getsockopt: 'int getsockopt(int, int, int, void *, void *)',
  setns: 'int setns(int, int)',
  mount: 'int mount(const char *, const char *, const char *, unsigned long, const void *)',
  umount2: 'int umount2(const char *, int)',
  flock: 'int flock(int, int)',
  close: 'int close(int)',
  strerror: 'const char *strerror(int)',
  alarm: 'unsigned int alarm(unsigned int)',
  fallocate: 'int fallocate(int, int, int64_t, int64_t)',
  renameat2: 'int renameat2(int, const char *, int, const char *, unsigned int)',
  // Variadic in C; its third argument is always a pointer here, passed the same way.
  ioctl: 'int ioctl(int, unsigned long, void *)',
} as const satisfies Record<keyof Libc, string>;

interface Libc {
  socket: (domain: number, type: number, protocol: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  getsockname: (fd: number, addr: Buffer, len: Buffer) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number;
  recvfrom: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: Buffer) => number;
  setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
  setns: (fd: number, nstype: number) => number;
  mount: (source: string, target: string, fstype: string | null, flags: number, data: null) => number;
  umount2: (target: string, flags: number) => number;
  flock: (fd: number, op: number) => number;
  close: (fd: number) => number;
  strerror: (errno: number) => string;
  fallocate: (fd: number, mode: number, offset: number, len: number) => number;
  renameat2: (olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number;
  alarm: (seconds: number) => number;
  ioctl: (fd: number, request: number, arg: Buffer) => number;
}

interface Loaded {
  koffi: typeof Koffi;
  lib: Koffi.IKoffiLib;
  platform: Platform;
}

let loaded: Loaded | undefined;

/** koffi and the C library, on first use; an unsupported architecture fails here, by name. */
function library(): Loaded {
  if (!loaded) {
    const platform = platformFor(process.arch, process.platform);
    const koffi = loadKoffi();
    loaded = { koffi, lib: koffi.load(LIBC_NAME), platform };
  }
  return loaded;
}

/** The per-architecture facts (platform.ts) of this process. */
function facts(): Platform {
  return library().platform;
}

/** The C function's name in a koffi prototype: the identifier before the parameter list. */
function symbolOf(prototype: string): string {
  const match = /([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(prototype);
  if (!match) throw new Error(`not a C prototype: ${prototype}`);
  return match[1];
}

/** Every C symbol a lazyFunction was made for, bound yet or not (the tests check them against old C libraries). */
const declared = new Set<string>();

export function declaredSymbols(): string[] {
  return [...declared];
}

/**
 * A function that binds `prototype` in the C library on its first call and calls it. A symbol the
 * library lacks becomes a SyscallError (ENOSYS) naming it, on every call, and nothing else fails.
 */
export function lazyFunction<F extends (...args: never[]) => unknown>(prototype: string): F {
  const symbol = symbolOf(prototype);
  declared.add(symbol);
  let bound: F | undefined;
  // Named, so that a CPU profile shows the time spent in C (make bench: where a hook's time goes).
  function callC(...args: Parameters<F>) {
    if (!bound) {
      const { lib } = library();
      try {
        bound = lib.func(prototype) as unknown as F;
      } catch (err) {
        throw syscallError(symbol, facts().ENOSYS, `not available in ${LIBC_NAME} (${(err as Error).message})`);
      }
    }
    return bound(...args);
  }
  return callC as F;
}

const libc = Object.fromEntries(
  Object.entries(PROTOTYPES).map(([name, prototype]) => [name, lazyFunction(prototype)]),
) as unknown as Libc;

/** Runs a libc call, retrying on EINTR; a negative result becomes a SyscallError. */
function check(syscall: string, call: () => number, detail?: string): number {
  for (;;) {
    const r = call();
    if (r >= 0) return r;
    const errno = library().koffi.errno();
    if (errno !== facts().EINTR) throw syscallError(syscall, errno, detail);
  }
}

let errnoNames: Map<number, string> | undefined;

export function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const table: Record<string, number> = (require('os') as typeof import('os')).constants.errno;
    for (const [name, value] of Object.entries(table)) if (!errnoNames.has(value)) errnoNames.set(value, name);
  }
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** The C library's text for `errno`; its errno name when the C library cannot say. */
export function strerror(errno: number): string {
  try {
    return libc.strerror(errno);
  } catch {
    return errnoName(errno);
  }
}

/** struct sockaddr_nl for a netlink port id (0: the kernel). */
function netlinkAddress(port: number): Buffer {
  const { sockaddrNl } = facts();
  const addr = Buffer.alloc(sockaddrNl.size);
  addr.writeUInt16LE(AF_NETLINK, sockaddrNl.family);
  addr.writeUInt32LE(port, sockaddrNl.pid);
  return addr;
}

/** A socklen_t holding `length`, for calls that write an address back. */
function addressLength(length: number): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(length);
  return len;
}

/** Closes `fd` after a failed set-up; the first error is the one that matters. */
function closeQuietly(fd: number): void {
  libc.close(fd);
}

/**
 * A raw AF_NETLINK socket, bound with an automatic port id and connected to the kernel (port 0):
 * the kernel then refuses unicasts to it from any other socket, so user space cannot forge replies.
 */
export function netlinkSocket(protocol: number): number {
  const { SOCK_RAW, SOCK_CLOEXEC } = facts();
  const fd = check('socket', () => libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
  const kernel = netlinkAddress(0);
  try {
    check('bind', () => libc.bind(fd, kernel, kernel.length));
    check('connect', () => libc.connect(fd, kernel, kernel.length));
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return fd;
}

/** The port id the kernel gave a netlink socket; its replies carry it in nlmsg_pid. */
export function netlinkPort(fd: number): number {
  const addr = netlinkAddress(0);
  check('getsockname', () => libc.getsockname(fd, addr, addressLength(addr.length)));
  return addr.readUInt32LE(facts().sockaddrNl.pid);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value);
  check('setsockopt', () => libc.setsockopt(fd, level, name, buf, buf.length), `(${level}/${name})`);
}

/**
 * The cookie of the network namespace socket `fd` lives in (SO_NETNS_COOKIE), as a decimal string
 * (a u64); undefined on a kernel before 5.14, which does not have it.
 */
export function netnsCookie(fd: number): string | undefined {
  const { SOL_SOCKET, SO_NETNS_COOKIE, ENOPROTOOPT } = facts();
  const value = Buffer.alloc(8);
  try {
    check('getsockopt', () => libc.getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, value, addressLength(value.length)), '(SO_NETNS_COOKIE)');
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOPROTOOPT) return undefined;
    throw err;
  }
  return value.readBigUInt64LE().toString();
}

/** struct timeval for `ms` milliseconds. */
export function encodeTimeval(ms: number, platform: Platform = facts()): Buffer {
  const { timeval } = platform;
  const tv = Buffer.alloc(timeval.size);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), timeval.sec);
  tv.writeBigInt64LE(BigInt(Math.floor(ms % 1000) * 1000), timeval.usec);
  return tv;
}

/** SO_RCVTIMEO: a receive that waits longer fails with EAGAIN. */
export function setReceiveTimeout(fd: number, ms: number): void {
  const { SOL_SOCKET, SO_RCVTIMEO } = facts();
  const tv = encodeTimeval(ms);
  check('setsockopt', () => libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, tv.length), '(SO_RCVTIMEO)');
}

/** Sends a whole message to the kernel (netlink port 0). */
export function sendToKernel(fd: number, msg: Buffer): void {
  sendToPort(fd, msg, 0);
}

/** Sends a whole message to a netlink port (0 is the kernel). */
export function sendToPort(fd: number, msg: Buffer, port: number): void {
  const addr = netlinkAddress(port);
  const n = check('sendto', () => libc.sendto(fd, msg, msg.length, 0, addr, addr.length));
  if (n !== msg.length) throw syscallError('sendto', 0, `short write ${n}/${msg.length}`);
}

/** Receives one datagram; returns its full length (may exceed buf with MSG_TRUNC). */
export function receive(fd: number, buf: Buffer, flags = 0): number {
  return check('recv', () => libc.recv(fd, buf, buf.length, flags));
}

/** Receives one netlink datagram: its full length (as receive) and the sender's port id (0: the kernel). */
export function receiveNetlink(fd: number, buf: Buffer, flags = 0): { length: number; senderPort: number } {
  const addr = netlinkAddress(0);
  const length = check('recvfrom', () => libc.recvfrom(fd, buf, buf.length, flags, addr, addressLength(addr.length)));
  return { length, senderPort: addr.readUInt32LE(facts().sockaddrNl.pid) };
}

/** struct sockaddr_un for `path` and the length to pass with it (up to and including the NUL). */
export function encodeUnixAddress(path: string, platform: Platform = facts()): { addr: Buffer; length: number } {
  const { sockaddrUn } = platform;
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length + 1 > sockaddrUn.pathMax) throw syscallError('sockaddr_un', platform.ENAMETOOLONG, path);
  const addr = Buffer.alloc(sockaddrUn.size);
  addr.writeUInt16LE(AF_UNIX, sockaddrUn.family);
  bytes.copy(addr, sockaddrUn.path);
  return { addr, length: sockaddrUn.path + bytes.length + 1 };
}

/**
 * An AF_UNIX datagram socket connected to `path` (a syslog socket), or bound there to receive
 * (a listener). Non-blocking: a reader that falls behind makes sends fail with EAGAIN instead of
 * stalling the caller, and a receive with nothing queued fails with EAGAIN.
 */
export function unixDatagramSocket(path: string, how: 'connect' | 'bind' = 'connect'): number {
  const { SOCK_DGRAM, SOCK_CLOEXEC, SOCK_NONBLOCK } = facts();
  const { addr, length } = encodeUnixAddress(path);
  const fd = check('socket', () => libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  try {
    check(how, () => libc[how](fd, addr, length), path);
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return fd;
}

/** Sends one datagram on a connected socket without blocking or raising SIGPIPE. */
export function sendDatagram(fd: number, msg: Buffer): void {
  const n = check('send', () => libc.send(fd, msg, msg.length, MSG_DONTWAIT | MSG_NOSIGNAL));
  if (n !== msg.length) throw syscallError('send', 0, `short write ${n}/${msg.length}`);
}

export function setns(fd: number, nstype: number): void {
  check('setns', () => libc.setns(fd, nstype));
}

export function bindMount(source: string, target: string): void {
  check('mount', () => libc.mount(source, target, null, MS_BIND, null), `${source} on ${target}`);
}

export function unmount(target: string, flags = MNT_DETACH): void {
  check('umount2', () => libc.umount2(target, flags), target);
}

/** flock(2); with LOCK_NB returns false instead of throwing when the lock is held. */
export function flock(fd: number, op: number): boolean {
  try {
    check('flock', () => libc.flock(fd, op));
    return true;
  } catch (err) {
    if (op & LOCK_NB && err instanceof SyscallError && err.errno === facts().EAGAIN) return false;
    throw err;
  }
}

/** Allocates disk blocks for [offset, offset + len) of `fd`; the size grows to cover them. */
export function fallocate(fd: number, offset: number, len: number, detail?: string): void {
  check('fallocate', () => libc.fallocate(fd, 0, offset, len), detail);
}

const RENAME_EXCHANGE = 2;

/** Swaps two names of one folder (given by its fd) atomically; both must exist. */
export function exchangeNames(dirFd: number, a: string, b: string): void {
  check('renameat2', () => libc.renameat2(dirFd, a, dirFd, b, RENAME_EXCHANGE), `(exchange ${a} and ${b})`);
}

/**
 * close(2), once: on Linux the descriptor is released even when close fails with EINTR, so a
 * retry could close a descriptor another part of the process has just been given.
 */
export function close(fd: number): void {
  if (libc.close(fd) < 0) throw syscallError('close', library().koffi.errno());
}

/**
 * alarm(2): in `seconds` (whole, at least 1) the kernel sends SIGALRM, whose default action ends
 * the process wherever it is, even blocked in a system call; a later call replaces the alarm.
 */
export function alarm(seconds: number): void {
  libc.alarm(Math.max(1, Math.ceil(seconds)));
}

/** linux/sockios.h, the same on every architecture. */
const SIOCADDMULTI = 0x8931;
/** struct ifreq: the name (IFNAMSIZ bytes), then a union whose largest member makes it 40 bytes on 64-bit Linux. */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

/**
 * SIOCADDMULTI through socket `fd` (any socket hands it to the device layer, which finds `name`
 * in the socket's namespace): adds `address`, a link-layer multicast address, to the device's
 * list as a static entry, what `ip maddr add` does.
 */
export function addLinkMulticast(fd: number, name: string, address: Buffer): void {
  const req = Buffer.alloc(IFREQ_SIZE);
  req.write(name, 0, IFNAMSIZ - 1, 'utf8');
  // ifr_hwaddr: a struct sockaddr of family AF_UNSPEC (0, as allocated), the address in sa_data.
  address.copy(req, IFNAMSIZ + 2, 0, 14);
  check('ioctl', () => libc.ioctl(fd, SIOCADDMULTI, req), `SIOCADDMULTI ${name}`);
}
