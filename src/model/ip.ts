// IP addresses: the one parser, formatter and prefix arithmetic of oci-netdev, used by config
// (addresses, routes, the policy's prefixes) and by the netlink codec (address attributes). An
// address is its bytes in network order: 4 for IPv4, 16 for IPv6.
//
// Parsed here rather than with node:net's isIPv4/isIPv6, which cost a hook about 20 ms: loading
// node:net (the stream stack) and compiling its IPv6 expression. The forms accepted are node:net's
// (test/unit/ip.test.ts compares the two): no leading zeros in a dotted quad ("01.2.3.4"), which
// some parsers read as octal, and no IPv6 zone index ("fe80::1%eth0"), which names no address.

export type IpFamily = 4 | 6;

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const GROUP = /^[0-9a-fA-F]{1,4}$/;

function ipv4Bytes(text: string): number[] | undefined {
  const m = IPV4.exec(text);
  return m ? m.slice(1).map(Number) : undefined;
}

/** The 16-bit groups of one side of "::" (a dotted IPv4 tail allowed where `last`), or undefined. */
function ipv6Groups(part: string, last: boolean): number[] | undefined {
  if (part === '') return [];
  const out: number[] = [];
  const texts = part.split(':');
  for (const [i, g] of texts.entries()) {
    const v4 = last && i === texts.length - 1 ? ipv4Bytes(g) : undefined;
    if (GROUP.test(g)) out.push(parseInt(g, 16));
    else if (v4) out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    else return undefined;
  }
  return out;
}

/** The bytes of an IPv4 or IPv6 address in text; undefined when `text` is none. */
export function parseIp(text: string): Buffer | undefined {
  const v4 = ipv4Bytes(text);
  if (v4) return Buffer.from(v4);
  // "::" stands for one or more zero groups, once at most.
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = ipv6Groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? ipv6Groups(halves[1], true) : [];
  if (!head || !tail) return undefined;
  const given = head.length + tail.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const out = Buffer.alloc(16);
  [...head, ...Array<number>(8 - given).fill(0), ...tail].forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

/**
 * An address's text: a dotted quad, or IPv6 as the kernel and iproute2 print it (RFC 5952: lower
 * case, the longest run of two or more zero groups, the first of equal ones, as "::"). `ip` must
 * hold 4 or 16 bytes.
 */
export function formatIp(ip: Uint8Array): string {
  if (ip.length === 4) return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((ip[i] << 8) | ip[i + 1]);
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best === -1) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

export const familyOf = (ip: Uint8Array): IpFamily => (ip.length === 4 ? 4 : 6);

/** How many bits an address of `family` has: the longest prefix. */
export const bitsOf = (family: IpFamily): number => (family === 4 ? 32 : 128);

/** `ip` with every bit past the first `len` cleared: the network of ip/len. */
export function networkOf(ip: Uint8Array, len: number): Buffer {
  const out = Buffer.from(ip);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.min(8, Math.max(0, len - 8 * i));
    out[i] &= (0xff00 >> keep) & 0xff;
  }
  return out;
}

/** Whether `ip` lies in the prefix `prefix`/`len` (the same family, the same first `len` bits). */
export function inPrefix(ip: Uint8Array, prefix: Uint8Array, len: number): boolean {
  return ip.length === prefix.length && networkOf(ip, len).equals(networkOf(prefix, len));
}

/** The first 12 bytes of an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
const MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it stands for, with its prefix
 * length (of 96 or more) made an IPv4 one: what plugins such as portmap make of it, so what the
 * policy judges. Any other address as it is.
 */
function unmapped(ip: Buffer, len: number): { ip: Buffer; len: number } {
  if (ip.length !== 16 || len < 96 || !ip.subarray(0, 12).equals(MAPPED)) return { ip, len };
  return { ip: Buffer.from(ip.subarray(12)), len: len - 96 };
}

/** ADDRESS/PREFIX, or a bare address (the address alone), as judged (unmapped); undefined when it is none. */
function parsePrefix(text: string): { ip: Buffer; len: number } | undefined {
  const [addr, len] = text.split('/');
  const ip = parseIp(addr);
  return ip ? unmapped(ip, len === undefined ? bitsOf(familyOf(ip)) : Number(len)) : undefined;
}

/**
 * `text` (an address, or a CIDR's address) in the kernel's form, an IPv4-mapped IPv6 address as
 * its IPv4 address: for judging and comparing. Undefined when it is none.
 */
export function canonicalIp(text: string): string | undefined {
  const p = parsePrefix(text.split('/')[0]);
  return p ? formatIp(p.ip) : undefined;
}

/** `cidr` (or a bare address) as judged: IPv4-mapped IPv6 as IPv4 ("::ffff:127.0.0.1" is "127.0.0.1/32"); undefined when it is none. */
export function judgedCidr(cidr: string): string | undefined {
  const p = parsePrefix(cidr);
  return p ? `${formatIp(p.ip)}/${p.len}` : undefined;
}

/**
 * Whether every address of `cidr` (ADDRESS/PREFIX, or a bare address: the address alone) lies in
 * the prefix `within` (a CIDR): what the kernel routes to a device for an address on it. Both
 * are judged unmapped: ::ffff:127.0.0.1 lies in 127.0.0.0/8, not in ::/0.
 */
export function cidrWithin(cidr: string, within: string): boolean {
  const a = parsePrefix(cidr);
  const b = parsePrefix(within);
  return a !== undefined && b !== undefined && a.len >= b.len && inPrefix(a.ip, b.ip, b.len);
}

/** Whether prefixes `a` and `b` (CIDRs or bare addresses, judged unmapped) share an address: one lies within the other. */
export function prefixesOverlap(a: string, b: string): boolean {
  const p = parsePrefix(a);
  const q = parsePrefix(b);
  return p !== undefined && q !== undefined && inPrefix(p.ip, q.ip, Math.min(p.len, q.len));
}

/** The first address after the network of `cidr`: the gateway host-local and the bridge plugin give a subnet by default. */
export function firstHostAddress(cidr: string): string | undefined {
  const p = parsePrefix(cidr);
  if (!p || p.len >= bitsOf(familyOf(p.ip))) return undefined;
  const first = networkOf(p.ip, p.len);
  // The network's last bit is clear (the prefix is shorter than the address): no carry.
  first[first.length - 1] += 1;
  return formatIp(first);
}

/** Whether `text` is an IPv6 link-local address (fe80::/10), whose prefix is per link and routes nothing elsewhere. */
export function isLinkLocalIpv6(text: string): boolean {
  return cidrWithin(text.split('/')[0], 'fe80::/10');
}
