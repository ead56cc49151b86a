// The one IP module (src/model/ip.ts) against node:net, which it replaces in the hooks (loading
// node:net cost a hook about 20 ms): the same strings are addresses for both (zone indexes aside,
// which name no address for us), each parses to the bytes and prints as the text the WHATWG URL
// parser (built into node) reads from it, and prefix membership is BlockList's. Config (routes,
// policy) and the netlink codec both use it, so they accept and print alike.
import t from 'tap';
import type { Test } from 'tap';
import * as net from 'node:net';
import { canonicalIp, cidrWithin, firstHostAddress, formatIp, inPrefix, isLinkLocalIpv6, judgedCidr, networkOf, parseIp, prefixesOverlap } from '../../src/model/ip';
import { checkCidr, plannedRoutes } from '../../src/config/routes';
import { encodeIp } from '../../src/netlink/codec';
import { DecodeError } from '../../src/errors';

/** What node:net says of `text`: 4, 6, or 0 (not an address); zone indexes are not addresses for us. */
const nodeFamily = (text: string): number => (text.includes('%') ? 0 : net.isIP(text));

/** The bytes of a valid address as node reads them: the dotted quad's octets, or the URL parser's IPv6. */
function nodeBytes(text: string): Buffer {
  if (net.isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  const groups = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head, tail] = groups.split('::');
  const words = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const all = tail === undefined ? words(head) : [...words(head), ...Array<number>(8 - words(head).length - words(tail).length).fill(0), ...words(tail)];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, 2 * i));
  return out;
}

/** The canonical text of a valid address: dotted quad, or RFC 5952 IPv6 as URL hosts print it. */
const nodeText = (text: string): string => (net.isIPv4(text) ? text : new URL(`http://[${text}]/`).hostname.slice(1, -1));

/** Whether the module, config and the codec read `text` as node does; one failing assertion names it when not. */
function agree(t: Test, text: string): boolean {
  const family = nodeFamily(text);
  const want = family ? { bytes: nodeBytes(text).toString('hex'), text: nodeText(text), config: family, codec: true }
    : { bytes: undefined, text: undefined, config: 0, codec: false };
  const ip = parseIp(text);
  const config = checkCidr(`${text}/0`) === undefined ? plannedRoutes({ routes: [{ dst: `${text}/0` }] })[0].family : 0;
  let codec = true;
  try {
    encodeIp(text);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    codec = false;
  }
  const got = { bytes: ip?.toString('hex'), text: ip && formatIp(ip), config, codec };
  if (JSON.stringify(got) === JSON.stringify(want)) return true;
  t.same(got, want, JSON.stringify(text));
  return false;
}

/** A generator of numbers below n from a fixed seed (xorshift32): a failure names its case and replays. */
function randomBelow(seed: number): (n: number) => number {
  return (n) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
}

const HAND_PICKED = [
  '0.0.0.0', '255.255.255.255', '10.1.2.3', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.04', '00.0.0.0', '0.0.0.00', '1..2.3', ' 1.2.3.4', '1.2.3.4 ',
  '::', '::1', '1::', 'fe80::1', 'FE80::A:b', '2001:db8::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', ':::', '1:::2', '1::2::3', ':1::', '1::2:', '12345::', 'g::1', '00001::',
  '::ffff:1.2.3.4', '::FFFF:255.255.255.255', '::1.2.3.4', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4',
  '1.2.3.4::', '1.2.3.4::1', '::1.2.3.4:1', '::256.1.1.1', '::01.2.3.4', '::ffff:1.2.3.04', '::ffff:1.2.3', '1.2.3.4:1::',
  'fe80::1%eth0', 'fe80::1%1', '1.2.3.4%eth0', '::ffff:1.2.3.4%0', '%', '', ':', '.', '1', '::ffff:', '0:0:0:0:0:0:0:0', '1:0:0:2:0:0:0:3',
  '0001:0002::', '2001:0db8:0000:0000:0000:0000:0000:0001',
];

t.test('hand-picked addresses and near misses: leading zeros, IPv4-mapped and embedded IPv4, zones', async (t) => {
  let mismatches = 0;
  for (const c of HAND_PICKED) if (!agree(t, c)) mismatches++;
  t.equal(mismatches, 0, `${HAND_PICKED.length} strings, read alike`);
  t.equal(parseIp('01.2.3.4'), undefined, 'a dotted quad with a leading zero is refused (some parsers read it as octal)');
  t.throws(() => encodeIp('01.2.3.4'), { name: 'DecodeError', message: 'bad IPv4 address 01.2.3.4' }, 'by the codec too');
  t.equal(checkCidr('01.2.3.4/32'), 'must be a CIDR with an IPv4 or IPv6 address', 'and by config');
});

t.test('random strings and random addresses', async (t) => {
  const rand = randomBelow(0x2545f491);
  const pick = (s: string) => s[rand(s.length)];
  const group = () => Array.from({ length: 1 + rand(5) }, () => pick('0123456789abcdefABCDEF')).join('');
  // Octets, some with leading zeros.
  const octet = () => (rand(8) === 0 ? '0' : '') + String(rand(300));
  const quad = () => Array.from({ length: 4 }, octet).join('.');
  const made: string[] = [];
  for (let i = 0; i < 4000; i++) {
    // Mostly well-formed: n groups, maybe a "::" somewhere, maybe an IPv4 tail, maybe a zone.
    const n = rand(10);
    const groups = Array.from({ length: n }, group);
    if (rand(3) === 0) groups.push(quad());
    let text = groups.join(':');
    if (rand(2)) {
      const at = rand(groups.length + 1);
      text = `${groups.slice(0, at).join(':')}::${groups.slice(at).join(':')}`;
    }
    if (rand(10) === 0) text = `::ffff:${quad()}`;
    if (rand(20) === 0) text += `%${pick('0e1')}`;
    made.push(text, quad());
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
  t.ok(addresses > 1500, `and ${addresses} of them are addresses (the test covers both sides)`);
});

t.test('prefixes: inPrefix, networkOf and cidrWithin against node:net BlockList', async (t) => {
  const rand = randomBelow(0x1b873593);
  const randomIp = (family: 4 | 6) => Buffer.from(Array.from({ length: family === 4 ? 4 : 16 }, () => rand(256)));
  let checked = 0;
  let inside = 0;
  for (let i = 0; i < 3000; i++) {
    const family = rand(2) ? 4 : 6;
    const bits = family === 4 ? 32 : 128;
    const len = rand(bits + 1);
    const prefix = randomIp(family);
    // Half the candidates share the prefix's first bits, so that both answers come up.
    const ip = rand(2) ? randomIp(family) : Buffer.from(prefix.map((b, k) => (k * 8 + 8 <= len ? b : rand(256))));
    const list = new net.BlockList();
    const type = family === 4 ? 'ipv4' : 'ipv6';
    list.addSubnet(formatIp(prefix), len, type);
    const want = list.check(formatIp(ip), type);
    if (inPrefix(ip, prefix, len) !== want) t.fail(`${formatIp(ip)} in ${formatIp(prefix)}/${len}: BlockList says ${want}`);
    if (inPrefix(networkOf(ip, len), prefix, len) !== want) t.fail(`networkOf ${formatIp(ip)}/${len}`);
    if (cidrWithin(`${formatIp(ip)}/${bits}`, `${formatIp(prefix)}/${len}`) !== want) t.fail(`cidrWithin ${formatIp(ip)} ${formatIp(prefix)}/${len}`);
    checked++;
    if (want) inside++;
  }
  t.equal(checked, 3000, 'every pair agrees with BlockList');
  t.ok(inside > 300 && inside < 2700, `both answers covered (${inside} inside)`);
  t.equal(formatIp(networkOf(parseIp('2001:db8::ffff')!, 112)), '2001:db8::', 'the network of a prefix clears every host bit');
  t.equal(formatIp(networkOf(parseIp('10.1.2.3')!, 9)), '10.0.0.0');
  t.equal(inPrefix(parseIp('::ffff:10.0.0.1')!, parseIp('10.0.0.0')!, 8), false, 'an IPv4-mapped address is IPv6: in no IPv4 prefix');
  t.equal(cidrWithin('10.1.0.0/16', '10.0.0.0/8'), true, 'a CIDR lies within a wider prefix');
  t.equal(cidrWithin('10.0.0.0/7', '10.0.0.0/8'), false, 'not within a narrower one');
  t.equal(canonicalIp('2001:DB8:0:0::1/64'), '2001:db8::1');
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
