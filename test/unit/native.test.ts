// The native layer: per-architecture layouts, lazy binding (a missing symbol fails only its
// feature), koffi's load path and version, and that every symbol bound exists in glibc 2.28.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import * as libc from '../../native/libc';
import { KOFFI_VERSION, loadKoffi, loadedFrom } from '../../native/koffi-loader';
import { PLATFORMS, platformFor } from '../../native/platform';
import { SyscallError } from '../../src/errors';

const REPO_ROOT = resolve(__dirname, '../../..');

t.test('sockaddr_un is laid out per architecture', async (t) => {
  for (const arch of ['x64', 'arm64'] as const) {
    const { addr, length } = libc.encodeUnixAddress('/dev/log', PLATFORMS[arch]);
    t.equal(addr.length, 110, `${arch}: sizeof(struct sockaddr_un)`);
    t.same([...addr.subarray(0, 12)], [1, 0, 0x2f, 0x64, 0x65, 0x76, 0x2f, 0x6c, 0x6f, 0x67, 0, 0], `${arch}: AF_UNIX (LE), then the path and its NUL`);
    t.ok(addr.subarray(11).every((b) => b === 0), `${arch}: zero after the path`);
    t.equal(length, 11, `${arch}: the length passed counts the NUL`);
  }
  const longest = '/' + 'a'.repeat(106);
  t.equal(libc.encodeUnixAddress(longest, PLATFORMS.x64).length, 110, '107 bytes and the NUL fill sun_path');
  t.throws(() => libc.encodeUnixAddress(longest + 'a', PLATFORMS.x64), { constructor: SyscallError, code: 'ERR_SYSCALL', message: /: ENAMETOOLONG / });
});

t.test('timeval and the platform table', async (t) => {
  for (const arch of ['x64', 'arm64'] as const) {
    const tv = libc.encodeTimeval(2500, PLATFORMS[arch]);
    t.equal(tv.length, 16, `${arch}: two 64-bit longs`);
    t.equal(tv.readBigInt64LE(0), 2n, `${arch}: tv_sec`);
    t.equal(tv.readBigInt64LE(8), 500_000n, `${arch}: tv_usec`);
    t.equal(PLATFORMS[arch].SO_RCVTIMEO, 20);
    t.equal(PLATFORMS[arch].EAGAIN, 11);
  }
  t.equal(platformFor(process.arch), PLATFORMS[process.arch as 'x64' | 'arm64'], 'this machine is one of the two');
  t.throws(() => platformFor('ppc64'), /laid out for Linux x64 and arm64 only \(this is linux ppc64\)/);
  t.throws(() => platformFor('x64', 'darwin'), /this is darwin x64/);
});

t.test('a missing symbol fails only the feature that needs it', async (t) => {
  const missing = libc.lazyFunction<(n: number) => number>('int hK_no_such_symbol(int)');
  for (let i = 0; i < 2; i++) {
    t.throws(() => missing(1), {
      constructor: SyscallError,
      syscall: 'hK_no_such_symbol',
      code: 'ERR_SYSCALL',
      message: /^hK_no_such_symbol not available in libc\.so\.6 .*: ENOSYS \(Function not implemented\)$/,
    }, `call ${i + 1} names the symbol`);
  }
  // Everything else still works, including functions bound after the failure.
  const fd = libc.netlinkSocket(0);
  t.ok(libc.netlinkPort(fd) > 0, 'a netlink socket, bound by the kernel');
  libc.close(fd);
  t.equal(libc.strerror(2), 'No such file or directory');
});

t.test('close is not retried: a second close of the same fd fails with EBADF', async (t) => {
  const fd = libc.netlinkSocket(0);
  libc.close(fd);
  t.throws(() => libc.close(fd), { constructor: SyscallError, code: 'ERR_SYSCALL', message: /^close: EBADF / });
});

t.test('koffi: the prebuilt module is loaded directly, at the pinned version', async (t) => {
  libc.strerror(1);
  t.match(loadedFrom, new RegExp(`/node_modules/koffi/build/koffi/(linux|musl)_${process.arch}/koffi\\.node$`));
  const loaded = Object.keys(require.cache).filter((f) => f.includes('/node_modules/koffi/'));
  t.same(loaded, [loadedFrom], "koffi's entry point (index.js) is never loaded");
  const pkg = JSON.parse(fs.readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(fs.readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
  t.equal(pkg.dependencies.koffi, KOFFI_VERSION, 'package.json pins the version the loader expects');
  t.equal(lock.packages['node_modules/koffi'].version, KOFFI_VERSION, 'and package-lock.json has it');
  t.equal((loadKoffi() as unknown as { version: string }).version, KOFFI_VERSION);
  t.throws(() => loadKoffi('0.0.0'), { message: `koffi ${KOFFI_VERSION} found at ${loadedFrom}, but oci-netdev is built for koffi 0.0.0 (run npm ci)` });
});

// glibc 2.28 (RHEL 8) is the oldest C library supported. A symbol's default version in this
// machine's libc.so.6 is the glibc release that introduced it there (or moved it there: everything
// glibc 2.34 took in from librt, libdl and libpthread got a GLIBC_2.34 default version).
const OLDEST_GLIBC = [2, 28];
// Names that lived outside libc.so.6 in 2.28 (librt, libdl, libpthread), whatever their version says.
const OUTSIDE_LIBC_IN_2_28 = /^(timer_|dl|pthread_|mq_|aio_|lio_|shm_|sem_)/;

function defaultVersions(libcFile: string): Map<string, string> {
  const versions = new Map<string, string>();
  for (const line of execFileSync('objdump', ['-T', libcFile], { encoding: 'utf8' }).split('\n')) {
    // "... DF .text  <size>  GLIBC_2.2.5 socket"; a version in parentheses is not the default.
    const m = /\s(GLIBC_[\d.]+)\s+(\S+)$/.exec(line);
    if (m) versions.set(m[2], m[1]);
  }
  return versions;
}

function newerThanOldest(version: string): boolean {
  const [major, minor] = version.replace('GLIBC_', '').split('.').map(Number);
  return major > OLDEST_GLIBC[0] || (major === OLDEST_GLIBC[0] && minor > OLDEST_GLIBC[1]);
}

/** Why `symbol` cannot be bound with glibc 2.28, or null when it can. */
function glibc228Problem(symbol: string, versions: Map<string, string>): string | null {
  if (OUTSIDE_LIBC_IN_2_28.test(symbol)) return `${symbol}: not in libc.so.6 before glibc 2.34`;
  const version = versions.get(symbol);
  if (!version) return `${symbol}: not exported by libc.so.6`;
  if (newerThanOldest(version)) return `${symbol}: ${version}, newer than glibc 2.28`;
  return null;
}

t.test('every symbol the native layer binds is in glibc 2.28', async (t) => {
  const libcFile = `/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libc.so.6`;
  const versions = defaultVersions(libcFile);
  t.ok(versions.size > 1000, `read ${versions.size} symbols from ${libcFile}`);
  // The check itself: what the old binding used is refused, something old is accepted.
  t.match(glibc228Problem('timer_create', versions), /timer_create/);
  t.equal(glibc228Problem('dlsym', versions), 'dlsym: not in libc.so.6 before glibc 2.34');
  t.equal(newerThanOldest(versions.get('timer_create')!), true, 'timer_create: its libc.so.6 default version is 2.34');
  t.equal(glibc228Problem('socket', versions), null);

  // Every binding goes through lazyFunction, which records its symbol; no other code binds.
  const sources = fs.readdirSync(join(REPO_ROOT, 'native')).filter((f) => f.endsWith('.ts'));
  const direct = sources.flatMap((f) => (fs.readFileSync(join(REPO_ROOT, 'native', f), 'utf8').match(/\.func\(/g) ?? []).map(() => f));
  t.same(direct, ['libc.ts'], 'one call to lib.func, inside lazyFunction');
  const symbols = libc.declaredSymbols().filter((s) => !s.startsWith('hK_'));
  t.same(symbols.sort(), Object.keys(libc.PROTOTYPES).sort(), 'the symbols declared are the prototypes listed');
  for (const symbol of symbols) t.equal(glibc228Problem(symbol, versions), null, symbol);
});
