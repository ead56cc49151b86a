// The only module that touches FFI: koffi bindings to the few libc calls Node
// does not offer (netlink and unix datagram sockets, setns, mount, flock, fallocate, renameat2).
// Every failure becomes a SyscallError carrying errno. koffi is loaded on first use, so commands
// that never reach the kernel do not pay for it.

import type * as Koffi from 'koffi';

export class SyscallError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  constructor(syscall: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall}${detail ? ` ${detail}` : ''}: ${code} (${strerror(errno)})`);
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

export const AF_UNIX = 1;
export const AF_NETLINK = 16;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const SOL_SOCKET = 1;
export const SO_RCVTIMEO = 20;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SOL_NETLINK = 270;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 0x1000;
export const MNT_DETACH = 2;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

interface Libc {
  koffi: typeof Koffi;
  socket: (domain: number, type: number, protocol: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  getsockname: (fd: number, addr: Buffer, len: Buffer) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number;
  recvfrom: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: Buffer) => number;
  setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
  setns: (fd: number, nstype: number) => number;
  mount: (source: string, target: string, fstype: string | null, flags: number, data: null) => number;
  umount2: (target: string, flags: number) => number;
  flock: (fd: number, op: number) => number;
  close: (fd: number) => number;
  strerror: (errno: number) => string;
  strdup: (s: string) => unknown;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  dlsym: (handle: null, symbol: string) => unknown;
  timer_create: (clock: number, sevp: Buffer, timerid: Buffer) => number;
  timer_settime: (timerid: bigint, flags: number, value: Buffer, old: null) => number;
  fallocate: (fd: number, mode: number, offset: number, len: number) => number;
  renameat2: (olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number;
}

let cached: Libc | undefined;

/**
 * koffi's prebuilt native module, loaded directly. koffi's entry point also loads https, zlib and
 * crypto for its installer, about 15 ms of every hook run; the native module is everything we use
 * (it lacks only the deprecated aliases). Elsewhere (musl, or an unusual layout), koffi proper.
 */
function loadKoffi(): typeof Koffi {
  /* eslint-disable @typescript-eslint/no-require-imports */
  try {
    const dir = require.resolve('koffi').replace(/\/[^/]*$/, '');
    return require(`${dir}/build/koffi/${process.platform}_${process.arch}/koffi.node`) as typeof Koffi;
  } catch {
    return require('koffi') as typeof Koffi;
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
}

function libc(): Libc {
  if (cached) return cached;
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  cached = {
    koffi,
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, const void *, uint32_t)'),
    connect: lib.func('int connect(int, const void *, uint32_t)'),
    getsockname: lib.func('int getsockname(int, void *, void *)'),
    send: lib.func('intptr_t send(int, const void *, size_t, int)'),
    sendto: lib.func('intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)'),
    recv: lib.func('intptr_t recv(int, void *, size_t, int)'),
    recvfrom: lib.func('intptr_t recvfrom(int, void *, size_t, int, void *, void *)'),
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    setns: lib.func('int setns(int, int)'),
    mount: lib.func('int mount(const char *, const char *, const char *, unsigned long, const void *)'),
    umount2: lib.func('int umount2(const char *, int)'),
    flock: lib.func('int flock(int, int)'),
    close: lib.func('int close(int)'),
    strerror: lib.func('const char *strerror(int)'),
    strdup: lib.func('void *strdup(const char *)'),
    fcntl: lib.func('int fcntl(int, int, int)'),
    dlsym: lib.func('void *dlsym(void *, const char *)'),
    timer_create: lib.func('int timer_create(int, void *, void *)'),
    timer_settime: lib.func('int timer_settime(uintptr_t, int, const void *, void *)'),
    fallocate: lib.func('int fallocate(int, int, int64_t, int64_t)'),
    renameat2: lib.func('int renameat2(int, const char *, int, const char *, unsigned int)'),
  };
  return cached;
}

const EINTR = 4;

/** Runs a libc call, retrying on EINTR; a negative result becomes a SyscallError. */
function check(syscall: string, call: () => number, detail?: string): number {
  for (;;) {
    const r = call();
    if (r >= 0) return r;
    const errno = libc().koffi.errno();
    if (errno !== EINTR) throw new SyscallError(syscall, errno, detail);
  }
}

let errnoNames: Map<number, string> | undefined;

export function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const table: Record<string, number> = require('os').constants.errno;
    for (const [name, value] of Object.entries(table)) if (!errnoNames.has(value)) errnoNames.set(value, name);
  }
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export function strerror(errno: number): string {
  return libc().strerror(errno);
}

/** struct sockaddr_nl: family, pad, port id, multicast groups. */
function netlinkAddress(port: number): Buffer {
  const addr = Buffer.alloc(12);
  addr.writeUInt16LE(AF_NETLINK, 0);
  addr.writeUInt32LE(port, 4);
  return addr;
}

/**
 * A raw AF_NETLINK socket, bound with an automatic port id and connected to the kernel (port 0):
 * the kernel then refuses unicasts to it from any other socket, so user space cannot forge replies.
 */
export function netlinkSocket(protocol: number): number {
  const fd = check('socket', () => libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
  const kernel = netlinkAddress(0);
  try {
    check('bind', () => libc().bind(fd, kernel, kernel.length));
    check('connect', () => libc().connect(fd, kernel, kernel.length));
  } catch (err) {
    libc().close(fd);
    throw err;
  }
  return fd;
}

/** The port id the kernel gave a netlink socket; its replies carry it in nlmsg_pid. */
export function netlinkPort(fd: number): number {
  const addr = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(addr.length);
  check('getsockname', () => libc().getsockname(fd, addr, len));
  return addr.readUInt32LE(4);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value);
  check('setsockopt', () => libc().setsockopt(fd, level, name, buf, 4), `(${level}/${name})`);
}

/** SO_RCVTIMEO: a receive that waits longer fails with EAGAIN. */
export function setReceiveTimeout(fd: number, ms: number): void {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  check('setsockopt', () => libc().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16), '(SO_RCVTIMEO)');
}

/** Sends a whole message to the kernel (netlink port 0). */
export function sendToKernel(fd: number, msg: Buffer): void {
  sendToPort(fd, msg, 0);
}

/** Sends a whole message to a netlink port (0 is the kernel). */
export function sendToPort(fd: number, msg: Buffer, port: number): void {
  const addr = netlinkAddress(port);
  const n = check('sendto', () => libc().sendto(fd, msg, msg.length, 0, addr, addr.length));
  if (n !== msg.length) throw new SyscallError('sendto', 0, `short write ${n}/${msg.length}`);
}

/** Receives one datagram; returns its full length (may exceed buf with MSG_TRUNC). */
export function receive(fd: number, buf: Buffer, flags = 0): number {
  return check('recv', () => libc().recv(fd, buf, buf.length, flags));
}

/** Receives one netlink datagram: its full length (as receive) and the sender's port id (0: the kernel). */
export function receiveNetlink(fd: number, buf: Buffer, flags = 0): { length: number; senderPort: number } {
  const addr = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(addr.length);
  const length = check('recvfrom', () => libc().recvfrom(fd, buf, buf.length, flags, addr, len));
  return { length, senderPort: addr.readUInt32LE(4) };
}

/**
 * An AF_UNIX datagram socket connected to `path` (a syslog socket), or bound there to receive
 * (a listener). Non-blocking: a reader that falls behind makes sends fail with EAGAIN instead of
 * stalling the caller, and a receive with nothing queued fails with EAGAIN.
 */
export function unixDatagramSocket(path: string, how: 'connect' | 'bind' = 'connect'): number {
  // struct sockaddr_un: family, then a NUL-terminated path of at most 107 bytes.
  const addr = Buffer.alloc(110);
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length > 107) throw new SyscallError(how, 36 /* ENAMETOOLONG */, path);
  addr.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(addr, 2);
  const fd = check('socket', () => libc().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  try {
    check(how, () => libc()[how](fd, addr, 2 + bytes.length + 1), path);
  } catch (err) {
    libc().close(fd);
    throw err;
  }
  return fd;
}

/** Sends one datagram on a connected socket without blocking or raising SIGPIPE. */
export function sendDatagram(fd: number, msg: Buffer): void {
  const n = check('send', () => libc().send(fd, msg, msg.length, MSG_DONTWAIT | MSG_NOSIGNAL));
  if (n !== msg.length) throw new SyscallError('send', 0, `short write ${n}/${msg.length}`);
}

export function setns(fd: number, nstype: number): void {
  check('setns', () => libc().setns(fd, nstype));
}

export function bindMount(source: string, target: string): void {
  check('mount', () => libc().mount(source, target, null, MS_BIND, null), `${source} on ${target}`);
}

export function unmount(target: string, flags = MNT_DETACH): void {
  check('umount2', () => libc().umount2(target, flags), target);
}

/** flock(2); with LOCK_NB returns false instead of throwing when the lock is held. */
export function flock(fd: number, op: number): boolean {
  try {
    check('flock', () => libc().flock(fd, op));
    return true;
  } catch (err) {
    const EWOULDBLOCK = 11;
    if (op & LOCK_NB && err instanceof SyscallError && err.errno === EWOULDBLOCK) return false;
    throw err;
  }
}

/** Allocates disk blocks for [offset, offset + len) of `fd`; the size grows to cover them. */
export function fallocate(fd: number, offset: number, len: number, detail?: string): void {
  check('fallocate', () => libc().fallocate(fd, 0, offset, len), detail);
}

const RENAME_EXCHANGE = 2;

/** Swaps two names of one folder (given by its fd) atomically; both must exist. */
export function exchangeNames(dirFd: number, a: string, b: string): void {
  check('renameat2', () => libc().renameat2(dirFd, a, dirFd, b, RENAME_EXCHANGE), `(exchange ${a} and ${b})`);
}

export function close(fd: number): void {
  check('close', () => libc().close(fd));
}

const CLOCK_MONOTONIC = 1;
const SIGEV_THREAD = 2;

const F_SETFD = 2;

/**
 * In `seconds`, writes `message` to this process's stderr and kills it with SIGKILL, even while
 * its only thread is blocked in a system call. A POSIX timer with SIGEV_THREAD makes libc run
 * system() on a thread of its own; that shell prints and kills. Node marks its inherited stdio
 * close-on-exec at start-up (uv_disable_stdio_inheritance), so fd 2 is made inheritable again for
 * the shell. Arming costs microseconds; the command string is never freed.
 */
export function killAfter(seconds: number, message: string): void {
  // The structures below are laid out for 64-bit Linux (8-byte pointers and time_t).
  if (process.arch !== 'x64' && process.arch !== 'arm64') throw new SyscallError('timer_create', 0, `not laid out for ${process.arch}`);
  const { koffi, strdup, fcntl, dlsym, timer_create, timer_settime } = libc();
  const quoted = `'${message.replace(/'/g, `'\\''`)}'`;
  const command = strdup(`printf '%s' ${quoted} >&2; kill -KILL ${process.pid}`);
  check('fcntl', () => fcntl(2, F_SETFD, 0), '(stderr inheritable)');
  const system = dlsym(null, 'system');
  if (!command || !system) throw new SyscallError('timer_create', 0, 'cannot prepare the watchdog command');
  // struct sigevent (64 bytes): sigev_value, sigev_signo, sigev_notify, then the thread function.
  const sev = Buffer.alloc(64);
  sev.writeBigUInt64LE(koffi.address(command), 0);
  sev.writeInt32LE(SIGEV_THREAD, 12);
  sev.writeBigUInt64LE(koffi.address(system), 16);
  const id = Buffer.alloc(8);
  check('timer_create', () => timer_create(CLOCK_MONOTONIC, sev, id));
  // struct itimerspec: it_interval (zero: once), then it_value.
  const ns = BigInt(Math.max(1, Math.round(seconds * 1e9)));
  const spec = Buffer.alloc(32);
  spec.writeBigInt64LE(ns / 1_000_000_000n, 16);
  spec.writeBigInt64LE(ns % 1_000_000_000n, 24);
  check('timer_settime', () => timer_settime(id.readBigUInt64LE(0), 0, spec, null));
}
