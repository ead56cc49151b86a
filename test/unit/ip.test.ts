// The address parser of src/config/ip.ts against node:net, which it replaces in the hooks (loading
// node:net cost a hook about 20 ms): the same strings are addresses for both, and each parses to
// the address the WHATWG URL parser (built into node) reads from it.
import t from 'tap';
import type { Test } from 'tap';
import * as net from 'node:net';
import { canonicalIp, checkCidr, cidrWithin, firstHostAddress, isLinkLocalIpv6, judgedCidr, plannedRoutes, prefixesOverlap } from '../../src/config/ip';

/** What node:net says of `text`: 4, 6, or 0 (not an address); zone indexes are not addresses for us. */
const nodeFamily = (text: string): number => (text.includes('%') ? 0 : net.isIP(text));

/** The canonical text of a valid address: dotted quad, or RFC 5952 IPv6 as URL hosts print it. */
const canonical = (text: string): string => (net.isIPv4(text) ? text : new URL(`http://[${text}]/`).hostname.slice(1, -1));

function ours(text: string): { family: number; dst?: string } {
  if (checkCidr(`${text}/0`) !== undefined) return { family: 0 };
  const [r] = plannedRoutes({ routes: [{ dst: `${text}/0` }] });
  return { family: r.family, dst: r.dst };
}

function agree(t: Test, text: string): boolean {
  const family = nodeFamily(text);
  const got = ours(text);
  const want = family ? { family, dst: canonical(text) } : { family: 0 };
  if (got.family === want.family && got.dst === want.dst) return true;
  t.same(got, want, JSON.stringify(text));
  return false;
}

t.test('hand-picked addresses and near misses', async (t) => {
  const cases = [
    '0.0.0.0', '255.255.255.255', '10.1.2.3', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1..2.3', ' 1.2.3.4', '1.2.3.4 ',
    '::', '::1', '1::', 'fe80::1', 'FE80::A:b', '2001:db8::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', ':::', '1:::2', '1::2::3', ':1::', '1::2:', '12345::', 'g::1',
    '::ffff:1.2.3.4', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '1.2.3.4::', '1.2.3.4::1',
    '::1.2.3.4:1', '::256.1.1.1', '::01.2.3.4', 'fe80::1%eth0', '', ':', '.', '1', '::ffff:', '0:0:0:0:0:0:0:0', '1:0:0:2:0:0:0:3',
  ];
  let mismatches = 0;
  for (const c of cases) if (!agree(t, c)) mismatches++;
  t.equal(mismatches, 0, `${cases.length} strings, read alike`);
});

t.test('random strings and random addresses', async (t) => {
  // A fixed seed: a failure names its string and replays.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pick = (s: string) => s[rand(s.length)];
  const group = () => Array.from({ length: 1 + rand(5) }, () => pick('0123456789abcdefABCDEF')).join('');
  const quad = () => Array.from({ length: 4 }, () => String(rand(300))).join('.');
  const made: string[] = [];
  for (let i = 0; i < 4000; i++) {
    // Mostly well-formed: n groups, maybe a "::" somewhere, maybe an IPv4 tail.
    const n = rand(10);
    const groups = Array.from({ length: n }, group);
    if (rand(3) === 0) groups.push(quad());
    let text = groups.join(':');
    if (rand(2)) {
      const at = rand(groups.length + 1);
      text = `${groups.slice(0, at).join(':')}::${groups.slice(at).join(':')}`;
    }
    made.push(text);
    // And noise from the characters addresses are made of.
    made.push(Array.from({ length: rand(16) }, () => pick('0123456789aF:.:.')).join(''));
  }
  let mismatches = 0;
  let addresses = 0;
  for (const text of made) {
    if (!agree(t, text) && ++mismatches > 5) break;
    if (nodeFamily(text)) addresses++;
  }
  t.equal(mismatches, 0, `${made.length} strings, read alike`);
  t.ok(addresses > 500, `and ${addresses} of them are addresses (the test covers both sides)`);
});

t.test('judging: IPv4-mapped IPv6 addresses are their IPv4 addresses; prefixes overlap when one holds the other', async (t) => {
  t.equal(canonicalIp('::ffff:127.0.0.1'), '127.0.0.1', 'a mapped address is its IPv4 address');
  t.equal(canonicalIp('::FFFF:7f00:1/104'), '127.0.0.1', 'in hex groups too');
  t.equal(canonicalIp('::127.0.0.1'), '::7f00:1', 'an IPv4-compatible address is not mapped');
  t.equal(judgedCidr('::ffff:128.0.0.1/97'), '128.0.0.1/1', 'a mapped prefix of 96 or more is an IPv4 prefix');
  t.equal(judgedCidr('::ffff:128.0.0.1/95'), '::ffff:8000:1/95', 'a shorter one holds more than IPv4: judged as IPv6');
  t.equal(judgedCidr('::ffff:127.0.0.1'), '127.0.0.1/32');
  t.notOk(cidrWithin('::ffff:127.0.0.1', '::/0'), 'a mapped address lies in no IPv6 prefix');
  t.ok(cidrWithin('::ffff:127.0.0.1', '127.0.0.0/8'), 'but in its IPv4 one');
  t.ok(cidrWithin('127.0.0.1', '::ffff:0:0/96'), 'a mapped prefix in a policy is judged as IPv4 too');
  t.ok(prefixesOverlap('10.200.0.3/31', '10.200.0.2/31'), 'the same /31');
  t.ok(prefixesOverlap('10.200.0.0/24', '10.200.0.2'), 'a prefix and an address in it');
  t.ok(prefixesOverlap('10.200.0.2', '10.200.0.0/24'), 'either way round');
  t.notOk(prefixesOverlap('10.200.0.4/31', '10.200.0.2/31'), 'the next /31');
  t.notOk(prefixesOverlap('::/0', '10.0.0.1'), 'families never overlap');
  t.ok(prefixesOverlap('::ffff:10.200.0.3/127', '10.200.0.2/31'), 'mapped ones as IPv4');
  t.equal(firstHostAddress('128.0.0.0/1'), '128.0.0.1');
  t.equal(firstHostAddress('10.76.1.77/24'), '10.76.1.1', 'host bits cleared first');
  t.equal(firstHostAddress('fd00:1::/64'), 'fd00:1::1');
  t.equal(firstHostAddress('10.0.0.1/32'), undefined, 'a /32 has none');
  t.ok(isLinkLocalIpv6('fe80::1'));
  t.notOk(isLinkLocalIpv6('fec0::1'));
});
