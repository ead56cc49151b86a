// The journal's SHA-256 (src/state/sha256.ts, plain JavaScript so that hooks need not load
// node:crypto) against node:crypto, on texts of every length across the block boundaries and on
// multi-byte UTF-8.
import t from 'tap';
import { createHash } from 'node:crypto';
import { sha256Hex } from '../../src/state/sha256';

const reference = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

t.test('the FIPS 180-4 examples', async (t) => {
  t.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.equal(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
});

t.test('every length from 0 to 300, and long texts, agree with node:crypto', async (t) => {
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const alphabet = 'abc{}":,0129 é€😀\n';
  const text = (n: number) => Array.from({ length: n }, () => alphabet[rand(alphabet.length)]).join('');
  const texts = [...Array.from({ length: 301 }, (_, n) => text(n)), text(4096), text(100_000)];
  const differ = texts.filter((s) => sha256Hex(s) !== reference(s));
  t.same(differ.map((s) => s.length), [], `${texts.length} texts hash alike`);
});
