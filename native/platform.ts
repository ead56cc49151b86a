// The platform facts the native layer depends on, in one place, per architecture: struct layouts,
// socket levels and options, flags and errno values, and the C library to open.
//
// Why a table: these numbers come from the kernel's per-architecture headers. x64 and arm64 (the
// two architectures supported) happen to share every value used here (arm64 uses asm-generic; x86
// keeps the generic socket and errno numbers too), but others do not: SO_RCVTIMEO is 18 on powerpc,
// SOCK_NONBLOCK and EAGAIN differ on mips, sparc, alpha and parisc, and 32-bit arm has a 4-byte
// time_t in the old timeval. Anything else is refused by name rather than run with wrong numbers.
//
// glibc and musl: both expose the kernel ABI unchanged, so every number and layout below is the
// same for both. What differs: the C library's file (libc.so.6 against libc.musl-ARCH.so.1, but
// musl's dynamic linker answers a request for any libc.* name with itself, so LIBC_NAME opens
// either), koffi's prebuilt binary (linux_ARCH against musl_ARCH, see koffi-loader.ts), and
// strerror's text.

/** The C library to open, glibc's soname; musl resolves it to itself (above). */
export const LIBC_NAME = 'libc.so.6';

interface StructLayout {
  readonly size: number;
}

/** Numbers that are the same on every Linux architecture (generic kernel headers, no per-arch copy). */
export const LINUX = {
  AF_UNIX: 1,
  AF_NETLINK: 16,
  SOL_NETLINK: 270,
  MSG_TRUNC: 0x20,
  MSG_DONTWAIT: 0x40,
  MSG_NOSIGNAL: 0x4000,
  CLONE_NEWNET: 0x40000000,
  MS_BIND: 0x1000,
  MNT_DETACH: 2,
  LOCK_EX: 2,
  LOCK_NB: 4,
} as const;

/** What differs between architectures: layouts, socket types and options, errno values. */
export interface Platform {
  readonly arch: 'x64' | 'arm64';
  /** struct sockaddr_nl: nl_family (u16), pad, nl_pid (u32), nl_groups (u32). */
  readonly sockaddrNl: StructLayout & { readonly family: number; readonly pid: number };
  /** struct sockaddr_un: sun_family (u16), then sun_path (NUL-terminated, at most pathMax bytes with the NUL). */
  readonly sockaddrUn: StructLayout & { readonly family: number; readonly path: number; readonly pathMax: number };
  /** struct timeval: tv_sec and tv_usec, each a signed 64-bit `long`. */
  readonly timeval: StructLayout & { readonly sec: number; readonly usec: number };
  readonly SOCK_DGRAM: number;
  readonly SOCK_RAW: number;
  readonly SOCK_CLOEXEC: number;
  readonly SOCK_NONBLOCK: number;
  readonly SOL_SOCKET: number;
  /** With a 64-bit time_t, SO_RCVTIMEO_OLD and SO_RCVTIMEO_NEW take the same timeval. */
  readonly SO_RCVTIMEO: number;
  /** getsockopt: the cookie of the socket's network namespace, a u64 never reused while the kernel runs (Linux 5.14). */
  readonly SO_NETNS_COOKIE: number;
  /** What a kernel without SO_NETNS_COOKIE answers. */
  readonly ENOPROTOOPT: number;
  readonly EINTR: number;
  /** Also EWOULDBLOCK. */
  readonly EAGAIN: number;
  readonly ENAMETOOLONG: number;
  readonly ENOSYS: number;
}

/** The values x64 and arm64 share (see above). */
const LP64_GENERIC = {
  sockaddrNl: { size: 12, family: 0, pid: 4 },
  sockaddrUn: { size: 110, family: 0, path: 2, pathMax: 108 },
  timeval: { size: 16, sec: 0, usec: 8 },
  SOCK_DGRAM: 2,
  SOCK_RAW: 3,
  SOCK_CLOEXEC: 0o2000000,
  SOCK_NONBLOCK: 0o4000,
  SOL_SOCKET: 1,
  SO_RCVTIMEO: 20,
  SO_NETNS_COOKIE: 71,
  ENOPROTOOPT: 92,
  EINTR: 4,
  EAGAIN: 11,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
} as const;

export const PLATFORMS: Readonly<Record<Platform['arch'], Platform>> = {
  x64: { ...LP64_GENERIC, arch: 'x64' },
  arm64: { ...LP64_GENERIC, arch: 'arm64' },
};

/** The facts for `arch`; any other architecture is refused by name rather than run with wrong numbers. */
export function platformFor(arch: string, os: string = 'linux'): Platform {
  if (os !== 'linux' || !Object.hasOwn(PLATFORMS, arch)) {
    throw new Error(`oci-netdev's native layer is laid out for Linux x64 and arm64 only (this is ${os} ${arch})`);
  }
  return PLATFORMS[arch as Platform['arch']];
}
