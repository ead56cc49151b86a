// Loads koffi, the FFI library, by its prebuilt native module, and checks its version.
//
// koffi's entry point also loads https, zlib and crypto for its installer, about 15 ms of every hook
// run; the native module is everything the binding uses. It sits at build/koffi/<os>_<arch>/koffi.node
// in koffi 2: linux_<arch> is built against glibc, musl_<arch> against musl, and the first that
// loads is the one for this C library (koffi's own entry point tries them in the same order). The
// version is pinned exactly in package.json: a different one (a stale node_modules, or koffi 3,
// which moves its binaries to per-platform packages) is a clear error here, not a silent fallback.

import type * as Koffi from 'koffi';

/** The version package.json pins; the unit tests check that the two agree. */
export const KOFFI_VERSION = '2.16.3';

/** The native module file that was loaded (for the tests: the fast path is the one taken). */
export let loadedFrom: string | undefined;

/** koffi's native module; `version` is the one expected (a parameter for the tests). */
export function loadKoffi(version = KOFFI_VERSION): typeof Koffi {
  /* eslint-disable @typescript-eslint/no-require-imports */
  // By its package.json: the entry point (index.js) is neither loaded nor installed (make install).
  const root = require.resolve('koffi/package.json').replace(/\/[^/]*$/, '');
  const failures: string[] = [];
  for (const variant of ['linux', 'musl']) {
    const file = `${root}/build/koffi/${variant}_${process.arch}/koffi.node`;
    let koffi: typeof Koffi & { version?: string };
    try {
      koffi = require(file) as typeof koffi;
    } catch (err) {
      failures.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    if (koffi.version !== version) {
      throw new Error(`koffi ${koffi.version} found at ${file}, but oci-netdev is built for koffi ${version} (run npm ci)`);
    }
    loadedFrom = file;
    return koffi;
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
  throw new Error(`cannot load koffi ${version}'s native module: ${failures.join('; ')}`);
}
