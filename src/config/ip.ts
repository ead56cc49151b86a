// Addresses and routes as the config gives them: CIDRs, and the `gateway` and `routes` of an entry,
// checked for meaning (family, host bits, duplicates) and for what the kernel would refuse when it
// adds them (a gateway the device cannot reach). Pure: the planner runs the reachability check
// again for moved devices, whose addresses are known only once the host is observed.

import type { RouteSpec } from './types';
import { deviceError, preview } from '../errors';

/** Why `cidr` is not ADDRESS/PREFIX with an IPv4 or IPv6 address, or undefined. */
export function checkCidr(cidr: string): string | undefined {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(cidr);
  if (!m) return 'must be a CIDR, ADDRESS/PREFIX';
  const ip = parseIp(m[1]);
  if (!ip) return 'must be a CIDR with an IPv4 or IPv6 address';
  const bits = width(ip.family);
  if (Number(m[2]) > bits) return `must have an IPv${bits === 32 ? 4 : 6} prefix length from 0 to ${bits}`;
  return undefined;
}

type Family = 4 | 6;

/** An address as a number, with its family. */
interface Ip {
  family: Family;
  value: bigint;
}

// Parsed here rather than with node:net's isIPv4/isIPv6, which cost a hook about 20 ms: loading
// node:net (the stream stack) and compiling its IPv6 expression. The forms accepted are the same
// (test/unit/ip.test.ts compares the two), less IPv6 zone indexes ("%eth0"), which we refuse.
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4(text: string): bigint | undefined {
  const m = IPV4.exec(text);
  return m ? m.slice(1).reduce((acc, o) => (acc << 8n) | BigInt(o), 0n) : undefined;
}

/** The 16-bit groups of one side of "::" (a dotted IPv4 tail allowed where `last`), or undefined. */
function ipv6Groups(part: string, last: boolean): bigint[] | undefined {
  if (part === '') return [];
  const out: bigint[] = [];
  const texts = part.split(':');
  for (const [i, g] of texts.entries()) {
    if (GROUP.test(g)) out.push(BigInt(parseInt(g, 16)));
    else if (last && i === texts.length - 1 && parseIpv4(g) !== undefined) {
      const v4 = parseIpv4(g)!;
      out.push(v4 >> 16n, v4 & 0xffffn);
    } else return undefined;
  }
  return out;
}

function parseIp(text: string): Ip | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  // "::" stands for one or more zero groups, once at most.
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = ipv6Groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? ipv6Groups(halves[1], true) : [];
  if (!head || !tail) return undefined;
  const given = head.length + tail.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const all = [...head, ...Array<bigint>(8 - given).fill(0n), ...tail];
  return { family: 6, value: all.reduce((acc, g) => (acc << 16n) | g, 0n) };
}

const width = (f: Family) => (f === 4 ? 32 : 128);
const maskOf = (f: Family, len: number) => ((1n << BigInt(width(f))) - 1n) ^ ((1n << BigInt(width(f) - len)) - 1n);
const inPrefix = (ip: Ip, prefix: Ip, len: number) =>
  ip.family === prefix.family && (ip.value & maskOf(ip.family, len)) === (prefix.value & maskOf(ip.family, len));

function format(ip: Ip): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((ip.value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((ip.value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // The kernel's and iproute2's form: the longest run of two or more zero groups becomes "::".
  let best = [-1, 0];
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best[1] && j - i > 1) best = [i, j - i];
  }
  if (best[0] < 0) return groups.join(':');
  return `${groups.slice(0, best[0]).join(':')}::${groups.slice(best[0] + best[1]).join(':')}`;
}

/**
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it stands for, with its prefix
 * length (of 96 or more) made an IPv4 one: what plugins such as portmap make of it, so what the
 * policy judges. Any other address as it is.
 */
function unmapped(ip: Ip, len: number): { ip: Ip; len: number } {
  if (ip.family !== 6 || ip.value >> 32n !== 0xffffn || len < 96) return { ip, len };
  return { ip: { family: 4, value: ip.value & 0xffffffffn }, len: len - 96 };
}

/** ADDRESS/PREFIX, or a bare address (the address alone), as judged (unmapped); undefined when it is none. */
function parsePrefix(text: string): { ip: Ip; len: number } | undefined {
  const [addr, len] = text.split('/');
  const ip = parseIp(addr);
  return ip ? unmapped(ip, len === undefined ? width(ip.family) : Number(len)) : undefined;
}

/**
 * `text` (an address, or a CIDR's address) in the kernel's form, an IPv4-mapped IPv6 address as
 * its IPv4 address: for judging and comparing. Undefined when it is none.
 */
export function canonicalIp(text: string): string | undefined {
  const p = parsePrefix(text.split('/')[0]);
  return p ? format(p.ip) : undefined;
}

/** `cidr` (or a bare address) as judged: IPv4-mapped IPv6 as IPv4 ("::ffff:127.0.0.1" is "127.0.0.1/32"); undefined when it is none. */
export function judgedCidr(cidr: string): string | undefined {
  const p = parsePrefix(cidr);
  return p ? `${format(p.ip)}/${p.len}` : undefined;
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
  if (!p || p.len >= width(p.ip.family)) return undefined;
  return format({ family: p.ip.family, value: (p.ip.value & maskOf(p.ip.family, p.len)) + 1n });
}

/** Whether `text` is an IPv6 link-local address (fe80::/10), whose prefix is per link and routes nothing elsewhere. */
export function isLinkLocalIpv6(text: string): boolean {
  return cidrWithin(text.split('/')[0], 'fe80::/10');
}

/** The kernel's default metric when none is given: 0 for IPv4, 1024 for IPv6. */
const defaultMetric = (f: Family) => (f === 4 ? 0 : 1024);

/** One route of an entry, from `gateway` or `routes`, with the field that asked for it. */
export interface PlannedRoute {
  /** "gateway" or "routes[N]", for messages. */
  field: string;
  family: Family;
  /** The network, host bits clear; "0.0.0.0" or "::" for a default route. */
  dst: string;
  dstLen: number;
  gw?: string;
  metric?: number;
}

/** The routes an entry asks for: `routes` in order, then `gateway` as the default route of its family. */
export function plannedRoutes(spec: { routes?: RouteSpec[]; gateway?: string }): PlannedRoute[] {
  const out: PlannedRoute[] = (spec.routes ?? []).map((r, i) => {
    const [addr, len] = r.dst.split('/');
    const ip = parseIp(addr)!;
    return {
      field: `routes[${i}]`, family: ip.family, dst: format(ip), dstLen: Number(len),
      ...(r.gw !== undefined ? { gw: r.gw } : {}), ...(r.metric !== undefined ? { metric: r.metric } : {}),
    };
  });
  if (spec.gateway !== undefined) {
    const family = parseIp(spec.gateway)!.family;
    out.push({ field: 'gateway', family, dst: family === 4 ? '0.0.0.0' : '::', dstLen: 0, gw: spec.gateway });
  }
  return out;
}

/**
 * Checks `gateway` and `routes` of entry `key` (already past the schema) and returns them as the
 * spec holds them; throws a ConfigError naming the field.
 */
export function checkRouteFields(key: string, gateway: string | undefined, routes: RouteSpec[] | undefined): { gateway?: string; routes?: RouteSpec[] } {
  if (gateway !== undefined && !parseIp(gateway)) throw deviceError(key, 'gateway', `must be an IPv4 or IPv6 address (got ${preview(gateway)})`);
  (routes ?? []).forEach((r, i) => {
    const field = `routes[${i}]`;
    const problem = checkCidr(r.dst);
    if (problem) throw deviceError(key, `${field}.dst`, `${problem} (got ${preview(r.dst)})`);
    const [addr, len] = r.dst.split('/');
    const dst = parseIp(addr)!;
    const network = { family: dst.family, value: dst.value & maskOf(dst.family, Number(len)) };
    if (network.value !== dst.value) {
      throw deviceError(key, `${field}.dst`, `has host bits set; the network is ${format(network)}/${len} (got ${preview(r.dst)})`);
    }
    if (r.gw !== undefined) {
      const gw = parseIp(r.gw);
      if (!gw) throw deviceError(key, `${field}.gw`, `must be an IPv4 or IPv6 address (got ${preview(r.gw)})`);
      if (gw.family !== dst.family) throw deviceError(key, `${field}.gw`, `must be an IPv${dst.family} address, as dst is (got ${preview(r.gw)})`);
    }
  });
  const result = { ...(gateway !== undefined ? { gateway } : {}), ...(routes !== undefined ? { routes: routes.map((r) => ({ ...r })) } : {}) };
  // The kernel keeps one route per destination and metric (EEXIST for the second).
  const seen = new Map<string, string>();
  for (const r of plannedRoutes(result)) {
    const id = `${r.dst}/${r.dstLen} metric ${r.metric ?? defaultMetric(r.family)}`;
    const other = seen.get(id);
    if (other !== undefined) throw deviceError(key, r.field, `is the same route as ${other} (${id}); give one a different metric`);
    seen.set(id, r.field);
  }
  return result;
}

/**
 * Throws when a route's gateway is one the kernel refuses on this device ("Nexthop has invalid
 * gateway"): it must be on the subnet of one of the device's addresses of its family (and not one
 * of those addresses), inside a route of the entry that has no gateway, or, for IPv6, link-local.
 * `addresses`: what the device will have in the container.
 */
export function checkGateways(key: string, routes: PlannedRoute[], addresses: { address: string; prefixlen: number }[]): void {
  const own = addresses.flatMap((a) => { const ip = parseIp(a.address); return ip ? [{ ip, len: a.prefixlen, text: `${a.address}/${a.prefixlen}` }] : []; });
  const direct = routes.filter((r) => r.gw === undefined).map((r) => ({ ip: parseIp(r.dst)!, len: r.dstLen }));
  for (const r of routes) {
    if (r.gw === undefined) continue;
    const gw = parseIp(r.gw)!;
    // The field already says "gateway"; a route names its gw.
    const what = r.field === 'gateway' ? r.gw : `gw ${r.gw}`;
    if (own.some((a) => a.ip.family === gw.family && a.ip.value === gw.value)) {
      throw deviceError(key, r.field, `${what} is an address of the device itself`);
    }
    if (gw.family === 6 && inPrefix(gw, parseIp('fe80::')!, 10)) continue;
    if (own.some((a) => inPrefix(gw, a.ip, a.len)) || direct.some((d) => inPrefix(gw, d.ip, d.len))) continue;
    const mine = own.filter((a) => a.ip.family === gw.family).map((a) => a.text);
    const why = mine.length
      ? `is on no subnet of the device's IPv${gw.family} addresses (${mine.join(', ')}) and in no route of the entry without gw`
      : `is in no route of the entry without gw, and the device has no IPv${gw.family} address`;
    throw deviceError(key, r.field, `${what} ${why}; the kernel would refuse it`);
  }
}
