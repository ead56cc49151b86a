#!/usr/bin/env node
// Builds the product, after build-cli.mjs: dist/oci-netdev, one executable of the whole CLI that
// needs no Node.js on the host, and dist/oci-netdev-koffi.node beside it, the koffi native module
// it loads (native/koffi-loader.ts). Bun compiles the esbuild bundle (dist/oci-netdev.js, the code
// the tests run through bin/oci-netdev) with its runtime and the bundle's bytecode into one file;
// README (Dependencies) has why Bun and what it costs.
//
// Bun comes from the npm registry, pinned exactly in package.json: its binary is the platform
// package (@oven/bun-linux-x64 and the like, an optional dependency), which `npm ci
// --ignore-scripts` installs; the `bun` package's install script, which would link it, never runs.
// With no Bun for this platform, the build says so and makes no executable; bin/oci-netdev still
// runs everything.
//
// The executable reads no .env, bunfig.toml, tsconfig.json or package.json from its working
// folder: a runtime starts hooks in the container's bundle, and such a file there could set our
// environment or preload code (a test checks it). koffi stays outside, beside the executable:
// embedded, Bun would write it to /tmp at run time and load it from there.
//
// Build: node scripts/build-exe.mjs (`make build` runs it).

import { spawnSync } from 'node:child_process';
import { copyFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(join(root, 'package.json'));
const exe = join(dist, 'oci-netdev');
/** native/koffi-loader.ts's KOFFI_BESIDE_EXECUTABLE. */
const koffiBeside = join(dist, 'oci-netdev-koffi.node');

/** Bun's platform package for this machine and the matching koffi build (glibc or musl), if npm installed one. */
function findBun() {
  const arch = { x64: 'x64', arm64: 'aarch64' }[process.arch];
  for (const [suffix, koffiVariant] of [['', 'linux'], ['-musl', 'musl']]) {
    if (!arch || process.platform !== 'linux') break;
    try {
      const pkg = require.resolve(`@oven/bun-linux-${arch}${suffix}/package.json`);
      const koffi = join(dirname(require.resolve('koffi/package.json')), `build/koffi/${koffiVariant}_${process.arch}/koffi.node`);
      return { bun: join(dirname(pkg), 'bin/bun'), koffi };
    } catch {
      // not installed: npm installs only the package for this machine
    }
  }
  return undefined;
}

const found = findBun();
if (!found) {
  rmSync(exe, { force: true });
  rmSync(koffiBeside, { force: true });
  console.log(`build-exe: no Bun for ${process.platform}-${process.arch} in node_modules: no dist/oci-netdev; bin/oci-netdev runs the CLI`);
  process.exit(0);
}

// A one-line entry: compiling the TypeScript entry directly would bundle a second time.
// Per-process names: two builds at once must not write into one file.
const entry = join(dist, `exe-entry.${process.pid}.js`);
const tmp = `${exe}.${process.pid}.tmp`;
writeFileSync(entry, "require('./oci-netdev.js').main(process.argv.slice(2), process.execPath);\n");
try {
  const r = spawnSync(found.bun, [
    'build', entry, '--compile', '--bytecode', '--external', 'koffi', '--outfile', tmp,
    '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig',
    '--no-compile-autoload-tsconfig', '--no-compile-autoload-package-json',
  ], { cwd: dist, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build-exe: bun build failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}${r.stdout}`);
} finally {
  rmSync(entry, { force: true });
}
copyFileSync(found.koffi, `${koffiBeside}.${process.pid}.tmp`);
renameSync(`${koffiBeside}.${process.pid}.tmp`, koffiBeside);
renameSync(tmp, exe);
console.log(`build-exe: dist/oci-netdev (${(statSync(exe).size / 2 ** 20).toFixed(0)} MiB) and ${koffiBeside.slice(dist.length + 1)}`);
