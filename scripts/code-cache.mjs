#!/usr/bin/env node
// Makes dist/oci-netdev.cache, the V8 code cache of dist/oci-netdev.js (the CLI that esbuild
// bundles in `make build`), which bin/oci-netdev hands to V8 so that a hook run does not compile
// the module bodies again. BENCHMARKS.md has what it saves (`make bench`, "without the code cache").
//
// The cache holds what running the module bodies compiled, not every function: a cache of every
// function is four times larger, and reading it saved less than this one. V8 checks little of a
// cache beyond the source's length, so the bundle's first line names a hash of the rest and the
// cache starts with the same line; the launcher takes the cache only when the two match.
//
// Build: node scripts/code-cache.mjs (after esbuild; `make build` runs both).

import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const bundle = join(dist, 'oci-netdev.js');
const cacheFile = join(dist, 'oci-netdev.cache');

const body = readFileSync(bundle, 'utf8');
const stamp = `// oci-netdev bundle ${createHash('sha256').update(body).digest('hex').slice(0, 32)}\n`;
const source = stamp + body;

// As the launcher runs it: Module.wrap, this file name, then the module bodies once (no command).
const script = new Script(Module.wrap(source), { filename: bundle });
const mod = { exports: {} };
script.runInThisContext().call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, dist);
const cache = script.createCachedData();
if (new Script(Module.wrap(source), { filename: bundle, cachedData: cache }).cachedDataRejected) {
  throw new Error('code-cache: V8 rejects the code cache it just made');
}

// Per-process temp names: two builds at once must not write into one file.
writeFileSync(`${cacheFile}.${process.pid}.tmp`, Buffer.concat([Buffer.from(stamp), cache]));
writeFileSync(`${bundle}.${process.pid}.tmp`, source);
renameSync(`${cacheFile}.${process.pid}.tmp`, cacheFile);
renameSync(`${bundle}.${process.pid}.tmp`, bundle);
console.log(`code-cache: dist/oci-netdev.js (${(source.length / 1024).toFixed(0)} KiB) and its code cache (${(cache.length / 1024).toFixed(0)} KiB)`);
