#!/usr/bin/env node
// Builds what bin/oci-netdev runs, after tsc: dist/oci-netdev.js, the CLI's compiled modules linked
// into one file by esbuild, and dist/oci-netdev.cache, its V8 code cache, which the launcher hands
// to V8 so that a hook run does not compile the module bodies again. BENCHMARKS.md has what the
// cache saves (`make bench`, "without the code cache"); README (Dependencies) says why esbuild.
//
// esbuild bundles tsc's JavaScript (dist/src), not the TypeScript sources: the code that runs is
// the code the tests run. koffi stays outside the bundle: it loads its native module from disk.
// Whitespace and syntax are minified, names are not, so stack traces stay readable.
//
// The cache holds what running the module bodies compiled, not every function: a cache of every
// function is four times larger, and reading it saved less than this one. V8 checks little of a
// cache beyond the source's length, so the bundle's first line names a hash of the rest and the
// cache starts with the same line; the launcher takes the cache only when the two match.
//
// Build: node scripts/build-cli.mjs (`make build` runs it after tsc).

import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { build } from 'esbuild';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const bundle = join(dist, 'oci-netdev.js');
const cacheFile = join(dist, 'oci-netdev.cache');

const result = await build({
  entryPoints: [join(dist, 'src/cli/main.js')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['koffi'],
  minifyWhitespace: true,
  minifySyntax: true,
  write: false,
  outfile: bundle,
  logLevel: 'warning',
});
const body = result.outputFiles[0].text;
const stamp = `// oci-netdev bundle ${createHash('sha256').update(body).digest('hex').slice(0, 32)}\n`;
const source = stamp + body;

// As the launcher runs it: Module.wrap, this file name, then the module bodies once (no command).
const script = new Script(Module.wrap(source), { filename: bundle });
const mod = { exports: {} };
script.runInThisContext().call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, dist);
const cache = script.createCachedData();
if (new Script(Module.wrap(source), { filename: bundle, cachedData: cache }).cachedDataRejected) {
  throw new Error('build-cli: V8 rejects the code cache it just made');
}

// Per-process temp names: two builds at once must not write into one file.
writeFileSync(`${cacheFile}.${process.pid}.tmp`, Buffer.concat([Buffer.from(stamp), cache]));
writeFileSync(`${bundle}.${process.pid}.tmp`, source);
renameSync(`${cacheFile}.${process.pid}.tmp`, cacheFile);
renameSync(`${bundle}.${process.pid}.tmp`, bundle);
console.log(`build-cli: dist/oci-netdev.js (${(source.length / 1024).toFixed(0)} KiB) and its code cache (${(cache.length / 1024).toFixed(0)} KiB)`);
