// The CNI specification's data, shared by the plugin front door (src/cni) and the networks the
// hooks run (this library): versions, error codes, and results in every version 0.1.0 to 1.1.0.
// Internally a result is always in the 1.x shape; `toVersion` renders it for the other side.

import { CniError } from '../errors';

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
/** @public the version of the results oci-netdev writes; the CNI front doors (src/cni) are its users. */
export const CURRENT_VERSION: CniVersion = '1.1.0';

/** The spec's codes (0-99) and ours (100 and up), as in the README's table. */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  invalidNetns: 8,
  tryAgainLater: 11,
  notAvailable: 50,
  limitedConnectivity: 51,
  /** The engine refused or failed: policy, identity, kernel. */
  engine: 100,
  /** A delegated plugin (IPAM, or one of a chain) failed. */
  delegate: 101,
  internal: 999,
} as const;

// CniError (the spec's error object, with its numeric code as cniCode) is in src/errors.ts with the others.
export { CniError } from '../errors';

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Orders dotted versions numerically; a part that is not a number sorts first. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function atLeast(version: string, floor: string): boolean {
  return compareVersions(version, floor) >= 0;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function decodeFail(what: string): never {
  throw new CniError(CniCode.decode, `cannot decode result: ${what}`);
}

function family(cidrOrIp: string): 4 | 6 {
  return cidrOrIp.includes(':') ? 6 : 4;
}

function optString(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') decodeFail(`${where}.${key} is not a string`);
  return v;
}

function optNumber(o: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) decodeFail(`${where}.${key} is not an integer`);
  return v;
}

function parseRoute(r: unknown, where: string): CniRoute {
  if (!isObject(r)) decodeFail(`${where} is not an object`);
  const dst = optString(r, 'dst', where);
  if (!dst) decodeFail(`${where}.dst is missing`);
  const route: CniRoute = { dst };
  const gw = optString(r, 'gw', where);
  if (gw) route.gw = gw;
  for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
    const n = optNumber(r, k, where);
    if (n !== undefined) route[k] = n;
  }
  return route;
}

function parseDns(d: unknown): CniDns | undefined {
  if (d === undefined || d === null) return undefined;
  if (!isObject(d)) decodeFail('dns is not an object');
  const dns: CniDns = {};
  const strings = (k: 'nameservers' | 'search' | 'options'): void => {
    const v = d[k];
    if (v === undefined || v === null) return;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) decodeFail(`dns.${k} is not a list of strings`);
    if (v.length) dns[k] = v;
  };
  strings('nameservers');
  strings('search');
  strings('options');
  const domain = optString(d, 'domain', 'dns');
  if (domain) dns.domain = domain;
  return Object.keys(dns).length ? dns : undefined;
}

function list(o: Record<string, unknown>, key: string): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) decodeFail(`${key} is not a list`);
  return v;
}

/** A 0.1.0/0.2.0 result's `ip4`/`ip6` block, as addresses and routes of the current shape. */
function parseLegacyIp(block: unknown, where: string, out: CniResult): void {
  if (block === undefined || block === null) return;
  if (!isObject(block)) decodeFail(`${where} is not an object`);
  const address = optString(block, 'ip', where);
  if (!address) decodeFail(`${where}.ip is missing`);
  const ip: CniIpConfig = { address };
  const gw = optString(block, 'gateway', where);
  if (gw) ip.gateway = gw;
  (out.ips ??= []).push(ip);
  list(block, 'routes').forEach((r, i) => (out.routes ??= []).push(parseRoute(r, `${where}.routes[${i}]`)));
}

/** Any version's result, in the current shape; `cniVersion` keeps the version it came in. */
export function parseResult(raw: unknown): CniResult {
  if (!isObject(raw)) decodeFail('not a JSON object');
  const version = raw.cniVersion;
  if (!isSupportedVersion(version)) decodeFail(`unsupported cniVersion ${JSON.stringify(version)}`);
  const out: CniResult = { cniVersion: version };
  if (!atLeast(version, '0.3.0')) {
    parseLegacyIp(raw.ip4, 'ip4', out);
    parseLegacyIp(raw.ip6, 'ip6', out);
  } else {
    const interfaces = list(raw, 'interfaces').map((x, i): CniInterface => {
      const where = `interfaces[${i}]`;
      if (!isObject(x)) decodeFail(`${where} is not an object`);
      const name = optString(x, 'name', where);
      if (!name) decodeFail(`${where}.name is missing`);
      const itf: CniInterface = { name };
      for (const k of ['mac', 'sandbox', 'socketPath', 'pciID'] as const) {
        const s = optString(x, k, where);
        if (s) itf[k] = s;
      }
      const mtu = optNumber(x, 'mtu', where);
      if (mtu) itf.mtu = mtu;
      return itf;
    });
    if (interfaces.length) out.interfaces = interfaces;
    const ips = list(raw, 'ips').map((x, i): CniIpConfig => {
      const where = `ips[${i}]`;
      if (!isObject(x)) decodeFail(`${where} is not an object`);
      const address = optString(x, 'address', where);
      if (!address) decodeFail(`${where}.address is missing`);
      const ip: CniIpConfig = { address };
      const gw = optString(x, 'gateway', where);
      if (gw) ip.gateway = gw;
      const idx = optNumber(x, 'interface', where);
      if (idx !== undefined) ip.interface = idx;
      return ip;
    });
    if (ips.length) out.ips = ips;
    const routes = list(raw, 'routes').map((r, i) => parseRoute(r, `routes[${i}]`));
    if (routes.length) out.routes = routes;
  }
  const dns = parseDns(raw.dns);
  if (dns) out.dns = dns;
  return out;
}

/** The result as a peer speaking `version` expects it (1.0.0 dropped `ips[].version`; 0.2.0 had ip4/ip6). */
export function toVersion(result: CniResult, version: string): Record<string, unknown> {
  if (!isSupportedVersion(version)) throw new CniError(CniCode.incompatibleVersion, `unsupported cniVersion ${version}`);
  const routes = result.routes ?? [];
  const routeFields = (r: CniRoute): CniRoute => (atLeast(version, '1.1.0') ? r : { dst: r.dst, ...(r.gw ? { gw: r.gw } : {}) });
  if (!atLeast(version, '0.3.0')) {
    const out: Record<string, unknown> = { cniVersion: version };
    for (const fam of [4, 6] as const) {
      const ip = (result.ips ?? []).find((i) => family(i.address) === fam);
      if (!ip) continue;
      out[`ip${fam}`] = {
        ip: ip.address,
        ...(ip.gateway ? { gateway: ip.gateway } : {}),
        routes: routes.filter((r) => family(r.dst) === fam).map(routeFields),
      };
    }
    if (result.dns) out.dns = result.dns;
    return out;
  }
  const legacyIps = !atLeast(version, '1.0.0');
  return {
    cniVersion: version,
    ...(result.interfaces?.length ? { interfaces: result.interfaces } : {}),
    ...(result.ips?.length
      ? { ips: result.ips.map((ip) => (legacyIps ? { version: String(family(ip.address)), ...ip } : { ...ip })) }
      : {}),
    ...(routes.length ? { routes: routes.map(routeFields) } : {}),
    ...(result.dns ? { dns: result.dns } : {}),
  };
}

/** `CNI_ARGS` ("K=V;K2=V2") as pairs; a pair without `=` is a decode error, as in libcni's skel. */
export function parseCniArgs(args: string | undefined): Array<[string, string]> {
  if (!args) return [];
  return args.split(';').filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.invalidEnvironment, `CNI_ARGS: invalid pair ${JSON.stringify(pair)}`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
}
