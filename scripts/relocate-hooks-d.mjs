#!/usr/bin/env node
// `make install` writes the hooks.d file from the installed oci-netdev's own `hooks-d` (stdin here),
// run from DESTDIR: the path it names is where it sits now, DESTDIR/PREFIX/..., and the runtimes
// must find it at PREFIX/... once the tree is in place. Takes DESTDIR (argv[2]) off that path.
//
// Use: DESTDIR/PREFIX/bin/oci-netdev hooks-d | node scripts/relocate-hooks-d.mjs DESTDIR > FILE

import { readFileSync, realpathSync } from 'node:fs';

// The launcher knows its own real path (node resolves links); DESTDIR may be relative or hold links.
const destdir = process.argv[2] ? realpathSync(process.argv[2]) : '';
const file = JSON.parse(readFileSync(0, 'utf8'));
if (destdir) {
  if (!file.hook.path.startsWith(`${destdir}/`)) {
    process.stderr.write(`relocate-hooks-d: hook path ${file.hook.path} is not under DESTDIR ${destdir}\n`);
    process.exit(1);
  }
  file.hook.path = file.hook.path.slice(destdir.length);
}
process.stdout.write(JSON.stringify(file, null, 2) + '\n');
