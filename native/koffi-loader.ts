// Loads koffi, the FFI library, by its prebuilt native module, and checks its version.
//
// koffi's entry point also loads https, zlib and crypto for its installer, about 15 ms of every hook
// run; the native module is everything the binding uses. It sits at build/koffi/<os>_<arch>/koffi.node
// in koffi 2: linux_<arch> is built against glibc, musl_<arch> against musl, and the first that
// loads is the one for this C library (koffi's own entry point tries them in the same order). The
// version is pinned exactly in package.json: a different one (a stale node_modules, or koffi 3,
// which moves its binaries to per-platform packages) is a clear error here, not a silent fallback.
//
// The single executable (dist/oci-netdev, compiled by Bun: scripts/build-exe.mjs) has no
// node_modules: it loads the module from the file the build put beside it, KOFFI_BESIDE_EXECUTABLE,
// in the folder of the executable's real path (a link to it, as in a CNI plugin folder, finds it
// too). Embedding the module instead would make Bun write it to /tmp and load it from there at
// every first run: a noexec /tmp breaks that, and root would load code from a world-writable folder.

import type * as Koffi from 'koffi';
import * as path from 'path';

/** The version package.json pins; the unit tests check that the two agree. */
export const KOFFI_VERSION = '2.16.3';

/** The native module's file name beside the single executable (make install copies it there too). */
export const KOFFI_BESIDE_EXECUTABLE = 'oci-netdev-koffi.node';

/** The native module file that was loaded (for the tests: the fast path is the one taken). */
export let loadedFrom: string | undefined;

/** koffi's native module; `version` is the one expected (a parameter for the tests). */
export function loadKoffi(version = KOFFI_VERSION): typeof Koffi {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const failures: string[] = [];
  for (const file of candidates()) {
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

/** Where koffi's native module may be: beside the single executable; else in node_modules, glibc's build first. */
function candidates(): string[] {
  // process.execPath is the compiled executable itself under Bun (its real path, from /proc/self/exe).
  if (process.versions.bun !== undefined) return [path.join(path.dirname(process.execPath), KOFFI_BESIDE_EXECUTABLE)];
  // By its package.json: the entry point (index.js) is neither loaded nor installed (make install-node).
  const root = path.dirname(require.resolve('koffi/package.json'));
  return ['linux', 'musl'].map((variant) => `${root}/build/koffi/${variant}_${process.arch}/koffi.node`);
}
