// The journal's SHA-256 (src/state/sha256.ts: plain JavaScript for the first few KiB a process
// hashes, so that a hook need not load node:crypto, then node:crypto) against node:crypto, on
// texts of every length across the block boundaries and on multi-byte UTF-8.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { sha256Js } from '../../src/state/sha256';

const reference = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

t.test('the FIPS 180-4 examples', async (t) => {
  t.equal(sha256Js(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.equal(sha256Js('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.equal(sha256Js('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
});

t.test('every length from 0 to 300, and long texts, agree with node:crypto', async (t) => {
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const alphabet = 'abc{}":,0129 é€😀\n';
  const text = (n: number) => Array.from({ length: n }, () => alphabet[rand(alphabet.length)]).join('');
  const texts = [...Array.from({ length: 301 }, (_, n) => text(n)), text(4096), text(100_000)];
  const differ = texts.filter((s) => sha256Js(s) !== reference(s));
  t.same(differ.map((s) => s.length), [], `${texts.length} texts hash alike`);
});

t.test('sha256Hex: JavaScript for the first 16 KiB a process hashes, node:crypto after, the same digests', async (t) => {
  // In a process of its own (a file: node -e loads node:crypto itself): this one has node:crypto
  // loaded for the reference.
  const dir = mkdtempSync(join(tmpdir(), 'ondt-sha-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'hash.js');
  writeFileSync(script, `
    const { sha256Hex } = require(${JSON.stringify(require.resolve('../../src/state/sha256'))});
    const loaded = () => process.moduleLoadList.includes('NativeModule crypto');
    const out = [sha256Hex('x'.repeat(4096)), loaded()];
    for (let i = 0; i < 8; i++) out.push(sha256Hex('x'.repeat(4096) + i));
    out.push(loaded());
    console.log(JSON.stringify(out));`);
  // env -i: tap adds its loaders (which load node:crypto) to the environment of every child.
  const r = spawnSync('/usr/bin/env', ['-i', process.execPath, script], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as (string | boolean)[];
  t.equal(out[0], reference('x'.repeat(4096)));
  t.equal(out[1], false, 'node:crypto is not loaded for a journal of a few KiB');
  t.same(out.slice(2, 10), Array.from({ length: 8 }, (_, i) => reference('x'.repeat(4096) + i)), 'the same digests past the budget');
  t.equal(out[10], true, 'where node:crypto computes them');
});
