import t from 'tap';
import { checkDevName, isDevNameTemplate, isValidDevName } from '../../src/config/names';

t.test('length is counted in UTF-8 bytes: 15 pass, 16 fail', async (t) => {
  t.ok(isValidDevName('a'));
  t.ok(isValidDevName('a'.repeat(15)));
  t.notOk(isValidDevName('a'.repeat(16)));
  t.match(checkDevName('a'.repeat(16)), /^is 16 bytes; at most 15 are allowed$/);
  // "é" is 2 bytes: 7 of them plus one ASCII byte is 15 bytes in 8 characters.
  t.ok(isValidDevName('é'.repeat(7) + 'x'));
  t.notOk(isValidDevName('é'.repeat(8)), '8 characters, 16 bytes');
  t.equal(checkDevName('é'.repeat(8)), 'is 16 bytes; at most 15 are allowed');
  t.ok(isValidDevName('€€€€€'), '5 characters, 15 bytes');
  t.notOk(isValidDevName('€€€€€x'), '6 characters, 16 bytes');
  t.ok(isValidDevName('🙂🙂🙂'), 'astral: 12 bytes');
  t.notOk(isValidDevName('🙂🙂🙂🙂'), 'astral: 16 bytes in 8 UTF-16 units');
});

t.test('empty, dot and dotdot', async (t) => {
  t.equal(checkDevName(''), 'must not be empty');
  t.notOk(isValidDevName('.'));
  t.notOk(isValidDevName('..'));
  t.ok(isValidDevName('...'));
  t.ok(isValidDevName('.a'));
  t.ok(isValidDevName('a.b'));
});

t.test("'/', ':' and the kernel's isspace bytes", async (t) => {
  t.equal(checkDevName('a/b'), "must not contain '/'");
  t.equal(checkDevName('eth0:1'), "must not contain ':'");
  for (const c of [' ', '\t', '\n', '\v', '\f', '\r']) {
    t.equal(checkDevName(`a${c}b`), 'must not contain whitespace', JSON.stringify(c));
  }
  // lib/ctype.c marks 0xA0 as a space, and the kernel tests bytes: U+00A0 (C2 A0) and
  // "à" (C3 A0) are refused, "é" (C3 A9) is not.
  t.match(checkDevName('a\u00a0b'), /0xa0/);
  t.match(checkDevName('là'), /0xa0/);
  t.ok(isValidDevName('é'));
  t.equal(checkDevName('a\u0000b'), 'must not contain a NUL character');
  t.equal(checkDevName('a\ud800'), 'must be valid Unicode text');
  for (const ok of ['eth0', 'veth-a_b', 'br.10', 'a@b', 'x!#$', 'UPPER', '0']) t.ok(isValidDevName(ok), ok);
});

t.test('%d templates', async (t) => {
  t.ok(isValidDevName('eth%d'));
  t.ok(isValidDevName('%d'));
  t.ok(isValidDevName('a'.repeat(13) + '%d'), '15 bytes with the template');
  t.notOk(isValidDevName('a'.repeat(14) + '%d'), 'the template string itself is measured');
  t.match(checkDevName('eth%d%d'), /single '%d' at the end/);
  t.match(checkDevName('e%dth'), /single '%d' at the end/);
  t.match(checkDevName('eth%'), /single '%d' at the end/);
  t.match(checkDevName('eth%x'), /single '%d' at the end/);
  t.match(checkDevName('a%b%d'), /single '%d' at the end/);
  t.match(checkDevName('eth%s'), /single '%d' at the end/);
  t.equal(checkDevName('eth%d', { template: false }), "must not contain '%'");
  t.equal(checkDevName('eth0', { template: false }), undefined);
  t.ok(isDevNameTemplate('eth%d'));
  t.notOk(isDevNameTemplate('eth0'));
});
