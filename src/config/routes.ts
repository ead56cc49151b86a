// Addresses and routes as the config gives them: CIDRs, and the `gateway` and `routes` of an entry,
// checked for meaning (family, host bits, duplicates) and for what the kernel would refuse when it
// adds them (a gateway the device cannot reach). Pure: the planner runs the reachability check
// again for moved devices, whose addresses are known only once the host is observed.

import type { RouteSpec } from './types';
import { deviceError, preview } from '../errors';
import { bitsOf, familyOf, formatIp, inPrefix, networkOf, parseIp, type IpFamily } from '../model/ip';

/** Why `cidr` is not ADDRESS/PREFIX with an IPv4 or IPv6 address, or undefined. */
export function checkCidr(cidr: string): string | undefined {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(cidr);
  if (!m) return 'must be a CIDR, ADDRESS/PREFIX';
  const ip = parseIp(m[1]);
  if (!ip) return 'must be a CIDR with an IPv4 or IPv6 address';
  const bits = bitsOf(familyOf(ip));
  if (Number(m[2]) > bits) return `must have an IPv${bits === 32 ? 4 : 6} prefix length from 0 to ${bits}`;
  return undefined;
}

/** The kernel's default metric when none is given: 0 for IPv4, 1024 for IPv6. */
const defaultMetric = (f: IpFamily) => (f === 4 ? 0 : 1024);

/** One route of an entry, from `gateway` or `routes`, with the field that asked for it. */
export interface PlannedRoute {
  /** "gateway" or "routes[N]", for messages. */
  field: string;
  family: IpFamily;
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
      field: `routes[${i}]`, family: familyOf(ip), dst: formatIp(ip), dstLen: Number(len),
      ...(r.gw !== undefined ? { gw: r.gw } : {}), ...(r.metric !== undefined ? { metric: r.metric } : {}),
    };
  });
  if (spec.gateway !== undefined) {
    const family = familyOf(parseIp(spec.gateway)!);
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
    const network = networkOf(dst, Number(len));
    if (!network.equals(dst)) {
      throw deviceError(key, `${field}.dst`, `has host bits set; the network is ${formatIp(network)}/${len} (got ${preview(r.dst)})`);
    }
    if (r.gw !== undefined) {
      const gw = parseIp(r.gw);
      if (!gw) throw deviceError(key, `${field}.gw`, `must be an IPv4 or IPv6 address (got ${preview(r.gw)})`);
      if (gw.length !== dst.length) throw deviceError(key, `${field}.gw`, `must be an IPv${familyOf(dst)} address, as dst is (got ${preview(r.gw)})`);
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

/** fe80::/10: a gateway there is reachable on any IPv6 device. */
const LINK_LOCAL = parseIp('fe80::')!;

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
    if (own.some((a) => a.ip.equals(gw))) {
      throw deviceError(key, r.field, `${what} is an address of the device itself`);
    }
    if (inPrefix(gw, LINK_LOCAL, 10)) continue;
    if (own.some((a) => inPrefix(gw, a.ip, a.len)) || direct.some((d) => inPrefix(gw, d.ip, d.len))) continue;
    const mine = own.filter((a) => a.ip.length === gw.length).map((a) => a.text);
    const family = familyOf(gw);
    const why = mine.length
      ? `is on no subnet of the device's IPv${family} addresses (${mine.join(', ')}) and in no route of the entry without gw`
      : `is in no route of the entry without gw, and the device has no IPv${family} address`;
    throw deviceError(key, r.field, `${what} ${why}; the kernel would refuse it`);
  }
}
