// The device policy: what each source of requests may ask for.
//
// The hook runs as root, but whoever writes its input is not always root's equal: on podman and
// CRI-O nodes the annotation oci-netdev.netDevices comes from whoever may create a container or a
// pod, and a CNI network config may come from whoever may write a NetworkAttachmentDefinition. The
// policy file (root's, spec/policy.schema.json) says, per source, which host devices may be moved
// or created (allowDevices), which masters and modes macvlans may use (allowMasters, allowModes),
// which bridges veth host ends may join (allowBridges), which CNI networks may be attached
// (allowNetworks), what every other field may set: host-side addresses and so the host's routes
// (allowHostAddresses: hostAddresses and the ipRanges capability), MACs (allowMacs), port
// mappings (allowHostPorts, allowHostIPs, allowProtocols), capability args and CNI_ARGS
// (allowCapabilities, allowArgs), whether an address or MAC in use on the host or by another
// container may be taken, or a host-side prefix overlapping one (allowAddressesInUse), and how
// many entries a container may ask for (maxDevices). Without a file, linux.netDevices
// and the CNI plugin's configs may use everything (as before policies existed), and the
// annotation no device, no bridge, macvlan mode bridge only, no host address, no host port below
// 1024, no capability but portMappings, no CNI_ARGS, and nothing in use.
//
// These checks need only the request, so they run before anything is observed (a host entry with
// a selector is checked once the engine has found its device; addresses in use once the host is
// observed). The rules that need kernel state (what the host depends on, what the kernel cannot
// move, claims) are the planner's (src/plan/refusals.ts) and apply whatever the policy says.
//
// About 400 lines on purpose: each field's default, check and refusal sit together, so that what a
// policy allows is reviewed in one file; the glob syntax it matches with is glob.ts.

import { ConfigError, PolicyError, deviceError, preview, show } from '../errors';
import { ANNOTATION, MAX_DEVICES } from './load';
import { parseJson } from './read';
import { readRegularFile, sizeText } from '../fsio/files';
import { validate } from '../schema/validate';
import type { DeviceSource, DeviceSpec, NetworkSpec } from './types';
import { MACVLAN_MODES } from '../model/devices';
import { hostDeviceName } from './types';
import { checkCidr } from './routes';
import { canonicalIp, cidrWithin, firstHostAddress, isLinkLocalIpv6, judgedCidr, prefixesOverlap } from '../model/ip';
import { compileGlob } from './glob';
import type { Glob } from './glob';

export const DEFAULT_POLICY_FILE = '/etc/oci-netdev/policy.json';
export const MAX_POLICY_BYTES = 1024 * 1024;

const WHERE: Record<DeviceSource, string> = {
  config: 'linux.netDevices',
  annotation: `annotation ${ANNOTATION}`,
  cni: 'the CNI network config',
};

// ---------------------------------------------------------------------------------------------
// The policy document.

type GlobField =
  | 'allowDevices' | 'allowMasters' | 'allowModes' | 'allowBridges' | 'allowNetworks'
  | 'allowMacs' | 'allowProtocols' | 'allowCapabilities' | 'allowArgs';
type CidrField = 'allowHostAddresses' | 'allowHostIPs';
type ListField = GlobField | CidrField | 'allowHostPorts';
type Field = ListField | 'allowAddressesInUse' | 'maxDevices';

const GLOB_FIELDS: readonly GlobField[] = [
  'allowDevices', 'allowMasters', 'allowModes', 'allowBridges', 'allowNetworks', 'allowMacs', 'allowProtocols', 'allowCapabilities', 'allowArgs',
];
const CIDR_FIELDS: readonly CidrField[] = ['allowHostAddresses', 'allowHostIPs'];
const FIELDS: readonly Field[] = [...GLOB_FIELDS, ...CIDR_FIELDS, 'allowHostPorts', 'allowAddressesInUse', 'maxDevices'];

interface PolicySection {
  allowDevices: Glob[];
  allowMasters: Glob[];
  allowModes: Glob[];
  /** Host bridges that the host end of a veth may join (hostBridge). */
  allowBridges: Glob[];
  /** CNI networks (type cni entries) by name. */
  allowNetworks: Glob[];
  /** MACs an entry may set (mac, hostMac, the mac capability, CNI_ARGS MAC=), as lower-case text. */
  allowMacs: Glob[];
  /** Port mapping protocols (tcp, udp, sctp). */
  allowProtocols: Glob[];
  /** runtimeConfig keys (CNI capability args) of a CNI network. */
  allowCapabilities: Glob[];
  /** CNI_ARGS keys of a CNI network. */
  allowArgs: Glob[];
  /** Prefixes every host-side address (hostAddresses) must lie in, its prefix route included. */
  allowHostAddresses: string[];
  /** Prefixes a port mapping's hostIP must lie in; a mapping without one takes every address. */
  allowHostIPs: string[];
  /** Inclusive host port ranges of port mappings. */
  allowHostPorts: [number, number][];
  /** Whether an entry may use an address or MAC in use on the host or held by another container. */
  allowAddressesInUse: boolean;
  maxDevices: number;
  /** Each list as the file gave it, or its default: what refusals quote. */
  text: Record<ListField, readonly string[]>;
  /** Which fields the file gave; the others hold their defaults. */
  given: Record<Field, boolean>;
}

export interface Policy {
  /** The policy file, given or default; named in every refusal. */
  file: string;
  /** False when the file does not exist and the defaults apply. */
  exists: boolean;
  config: PolicySection;
  annotation: PolicySection;
  /** The CNI plugin's network configs, written by root like config.json: every device by default. */
  cni: PolicySection;
}

type SectionDoc = Partial<Record<ListField, string[]>> & { allowAddressesInUse?: boolean; maxDevices?: number };

const EVERY_ADDRESS = ['0.0.0.0/0', '::/0'];
const EVERY_PORT = '0-65535';

/** What a list that allows everything holds, per field. */
const EVERYTHING: Record<ListField, readonly string[]> = {
  ...Object.fromEntries(GLOB_FIELDS.map((f) => [f, ['*']])) as Record<GlobField, string[]>,
  allowHostAddresses: EVERY_ADDRESS, allowHostIPs: EVERY_ADDRESS, allowHostPorts: [EVERY_PORT],
};

/**
 * Defaults per source and field: config.json may use any device and mode, the annotation no
 * device, and only macvlan mode bridge (the others reach the master's own traffic: passthru hands
 * the whole master over, vepa and private depend on the switch beyond it); no host address, no
 * host port below 1024, no capability but portMappings and no CNI_ARGS.
 */
const DEFAULT_LISTS: Record<DeviceSource, Record<ListField, readonly string[]>> = {
  config: EVERYTHING,
  annotation: {
    ...EVERYTHING,
    allowDevices: [], allowMasters: [], allowModes: ['bridge'], allowBridges: [], allowNetworks: [],
    allowCapabilities: ['portMappings'], allowArgs: [], allowHostAddresses: [], allowHostPorts: ['1024-65535'],
  },
  cni: EVERYTHING,
};
const DEFAULT_IN_USE: Record<DeviceSource, boolean> = { config: true, annotation: false, cni: true };

/** A port range "N" or "N-M" (0 to 65535), or why it is none. */
function portRange(text: string): [number, number] | string {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return 'must be a port N or a range N-M';
  const lo = Number(m[1]);
  const hi = Number(m[2] ?? m[1]);
  if (hi > 65535) return 'must be ports from 0 to 65535';
  if (lo > hi) return 'must be a range N-M with N at most M';
  return [lo, hi];
}

function section(source: DeviceSource, doc: SectionDoc | undefined, where: string): PolicySection {
  const text = (field: ListField): readonly string[] => doc?.[field] ?? DEFAULT_LISTS[source][field];
  const fail = (field: ListField, i: number, problem: string, got: string): never => {
    const f = `${source}.${field}[${i}]`;
    throw new ConfigError(`${where}: ${f}: ${problem} (got ${preview(got)})`, { field: f });
  };
  const globs = (field: GlobField): Glob[] =>
    text(field).map((pattern, i) => {
      let glob: Glob;
      try {
        glob = compileGlob(pattern);
      } catch (err) {
        return fail(field, i, (err as Error).message, pattern);
      }
      // A misspelt mode would otherwise allow nothing, silently.
      if (field === 'allowModes' && !MACVLAN_MODES.some((m) => glob.matches(m))) {
        fail(field, i, `matches no macvlan mode; the modes are ${MACVLAN_MODES.join(', ')}`, pattern);
      }
      return glob;
    });
  const cidrs = (field: CidrField): string[] =>
    text(field).map((cidr, i) => {
      const problem = checkCidr(cidr);
      return problem ? fail(field, i, problem, cidr) : cidr;
    });
  const ports = text('allowHostPorts').map((range, i) => {
    const r = portRange(range);
    return typeof r === 'string' ? fail('allowHostPorts', i, r, range) : r;
  });
  const lists = Object.fromEntries(GLOB_FIELDS.map((f) => [f, globs(f)])) as Record<GlobField, Glob[]>;
  return {
    ...lists,
    allowHostAddresses: cidrs('allowHostAddresses'),
    allowHostIPs: cidrs('allowHostIPs'),
    allowHostPorts: ports,
    allowAddressesInUse: doc?.allowAddressesInUse ?? DEFAULT_IN_USE[source],
    maxDevices: doc?.maxDevices ?? MAX_DEVICES,
    text: Object.fromEntries([...GLOB_FIELDS, ...CIDR_FIELDS, 'allowHostPorts' as const].map((f) => [f, text(f)])) as Record<ListField, readonly string[]>,
    given: Object.fromEntries(FIELDS.map((f) => [f, doc?.[f] !== undefined])) as Record<Field, boolean>,
  };
}

/** The policy in force when `file` does not exist. */
export function defaultPolicy(file = DEFAULT_POLICY_FILE): Policy {
  const where = `policy ${show(file)}`;
  return {
    file, exists: false, config: section('config', undefined, where), annotation: section('annotation', undefined, where), cni: section('cni', undefined, where),
  };
}

/** Parses and validates a policy document; `file` is named in errors and refusals. */
export function parsePolicy(text: string | Buffer, file: string): Policy {
  const where = `policy ${show(file)}`;
  const size = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  if (size > MAX_POLICY_BYTES) throw new ConfigError(`${where}: larger than ${sizeText(MAX_POLICY_BYTES)} (${size} bytes)`);
  const doc = parseJson(text, where);
  validate('policy', doc, where);
  const d = doc as { config?: SectionDoc; annotation?: SectionDoc; cni?: SectionDoc };
  return {
    file, exists: true, config: section('config', d.config, where), annotation: section('annotation', d.annotation, where), cni: section('cni', d.cni, where),
  };
}

/**
 * Reads the policy. A missing default file means the defaults; a missing file that was asked for
 * (`explicit`: --policy or OCI_NETDEV_POLICY) is an error, so a typo cannot loosen anything.
 * The file must be a regular file, not a symbolic link, owned by root (or by us) and writable by
 * its owner only: whoever can write it decides which devices containers get.
 */
export function loadPolicy(file = DEFAULT_POLICY_FILE, explicit = false): Policy {
  const where = `policy ${show(file)}`;
  if (!file.startsWith('/')) throw new ConfigError(`${where}: must be an absolute path`);
  const text = readRegularFile(file, {
    where, maxBytes: MAX_POLICY_BYTES, symlinkHint: '; give the file itself', owner: 'root-or-self', ownerWritesOnly: true, missingOk: true,
  });
  if (text === null && !explicit) return defaultPolicy(file);
  if (text === null) throw new ConfigError(`${where}: does not exist`);
  return parsePolicy(text, file);
}

// ---------------------------------------------------------------------------------------------
// Enforcement.

/** "policy FILE", or the default policy and the file that does not exist: how refusals name it. */
export function policyRef(policy: Policy): string {
  return policy.exists ? `policy ${show(policy.file)}` : `the default policy (${show(policy.file)} does not exist)`;
}

/** What each list allows, for "which allows no X by default". */
const NOUN: Record<ListField, string> = {
  allowDevices: 'device', allowMasters: 'device', allowModes: 'mode', allowBridges: 'bridge', allowNetworks: 'network',
  allowMacs: 'MAC', allowProtocols: 'protocol', allowCapabilities: 'capability', allowArgs: 'CNI_ARGS key',
  allowHostAddresses: 'host address', allowHostIPs: 'host IP', allowHostPorts: 'host port',
};

function listText(policy: Policy, source: DeviceSource, field: ListField): string {
  const rule = `${source}.${field}`;
  if (policy[source].given[field]) return `${rule} ${JSON.stringify(policy[source].text[field])}`;
  const defaults = DEFAULT_LISTS[source][field];
  const every = EVERYTHING[field].every((x) => defaults.includes(x));
  const allows = every ? `every ${NOUN[field]}` : defaults.length ? `only ${defaults.join(', ')}` : `no ${NOUN[field]}`;
  return `${rule}, which allows ${allows} by default`;
}

const MISS = (field: ListField): string =>
  (CIDR_FIELDS as readonly string[]).includes(field) ? 'it lies within no prefix of' : field === 'allowHostPorts' ? 'it lies in no range of' : 'it matches no pattern of';

/** One line naming the entry, what it asked for, the source, the rule and the policy. */
function refusal(policy: Policy, entry: string, source: DeviceSource, subject: string, rule: string, why: string): PolicyError {
  return new PolicyError(
    `${subject} is refused for ${WHERE[source]} by ${policyRef(policy)}: ${why}`,
    { device: entry, source, rule: `${source}.${rule}`, policyFile: policy.file },
  );
}

function refuseUnlisted(policy: Policy, entry: string, source: DeviceSource, subject: string, field: ListField): never {
  throw refusal(policy, entry, source, subject, field, `${MISS(field)} ${listText(policy, source, field)}`);
}

const globsAllow = (globs: Glob[], text: string): boolean => globs.some((g) => g.matches(text));
const cidrsAllow = (cidrs: string[], address: string): boolean => cidrs.some((c) => cidrWithin(address, c));

/** An address or CIDR as a refusal names it: an IPv4-mapped one with the IPv4 form it is judged as. */
function judged(text: string): string {
  const as = judgedCidr(text);
  const bare = !text.includes('/');
  return as !== undefined && text.includes(':') && !as.includes(':') ? `${text} (judged as ${bare ? as.split('/')[0] : as})` : text;
}

/** The first policy refusal among `devices`, thrown as a PolicyError; nothing when all pass. */
export function checkPolicy(devices: DeviceSpec[], policy: Policy): void {
  for (const d of devices) {
    const s = policy[d.source];
    const refuse = (what: string, field: ListField): never => refuseUnlisted(policy, d.key, d.source, what, field);
    if (d.kind === 'macvlan') {
      const master = d.master ?? '';
      if (!globsAllow(s.allowMasters, master)) refuse(`macvlan master ${show(master)}`, 'allowMasters');
      const mode = d.mode ?? 'bridge';
      if (!globsAllow(s.allowModes, mode)) refuse(`macvlan mode ${mode}`, 'allowModes');
    } else if (d.select && d.device === undefined) {
      // Its device is known once the engine has resolved the selector; checked again then.
    } else if (!globsAllow(s.allowDevices, hostDeviceName(d))) {
      const picked = d.select ? ` (${d.select.by} ${d.select.value})` : '';
      refuse(d.kind === 'veth' ? `veth host end ${show(d.key)}` : `host device ${show(hostDeviceName(d))}${picked}`, 'allowDevices');
    }
    if (d.hostBridge !== undefined && !globsAllow(s.allowBridges, d.hostBridge)) refuse(`host bridge ${show(d.hostBridge)}`, 'allowBridges');
    for (const field of ['mac', 'hostMac'] as const) {
      const mac = d[field];
      if (mac !== undefined && !globsAllow(s.allowMacs, mac)) refuse(`${field} ${mac}`, 'allowMacs');
    }
    (d.hostAddresses ?? []).forEach((cidr, i) => {
      if (!cidrsAllow(s.allowHostAddresses, cidr)) refuse(`hostAddresses[${i}] ${judged(cidr)}`, 'allowHostAddresses');
    });
  }
  for (const source of ['config', 'annotation', 'cni'] as const) {
    const mine = devices.filter((d) => d.source === source);
    const max = policy[source].maxDevices;
    if (mine.length > max) {
      const d = mine[max];
      const rule = `${source}.maxDevices`;
      throw new PolicyError(
        `${WHERE[source]} asks for ${mine.length} devices, more than ${rule} (${max}) ` +
          `of ${policyRef(policy)} allows`,
        { device: d.key, source, rule, policyFile: policy.file },
      );
    }
  }
}

/** The first cni entry whose network, capability args or CNI_ARGS the policy of its source does not allow, thrown as a PolicyError. */
export function checkNetworkPolicy(networks: NetworkSpec[], policy: Policy): void {
  for (const n of networks) {
    if (!globsAllow(policy[n.source].allowNetworks, n.network)) refuseUnlisted(policy, n.network, n.source, `CNI network ${show(n.network)}`, 'allowNetworks');
    checkCniArguments(n.network, n.source, n.runtimeConfig, n.args, policy);
  }
}

/**
 * The capability args (runtimeConfig) and CNI_ARGS of one network, judged by the policy of
 * `source`: every key, the MACs they set, and each port mapping's host port, host IP and protocol.
 */
export function checkCniArguments(entry: string, source: DeviceSource, runtimeConfig: Record<string, unknown>, args: Array<[string, string]>, policy: Policy): void {
  const s = policy[source];
  const refuse = (what: string, field: ListField): never => refuseUnlisted(policy, entry, source, what, field);
  for (const key of Object.keys(runtimeConfig)) if (!globsAllow(s.allowCapabilities, key)) refuse(`runtimeConfig.${key}`, 'allowCapabilities');
  for (const [key] of args) if (!globsAllow(s.allowArgs, key)) refuse(`CNI_ARGS key ${key}`, 'allowArgs');
  const macs: [string, unknown][] = [['runtimeConfig.mac', runtimeConfig.mac], ...args.filter(([k]) => k === 'MAC').map(([, v]): [string, unknown] => ['CNI_ARGS MAC', v])];
  for (const [what, mac] of macs) {
    if (typeof mac === 'string' && !globsAllow(s.allowMacs, mac.toLowerCase())) refuse(`${what} ${mac.toLowerCase()}`, 'allowMacs');
  }
  ipRangesOf(entry, runtimeConfig).forEach(({ field, subnet, rangeStart, rangeEnd, gateway }) => {
    // The bridge plugin puts the gateway on the host bridge with the subnet's prefix: a route for all of it.
    const len = subnet.split('/')[1];
    const judgedHere: [string, string][] = [
      [`${field}.subnet`, subnet],
      ...(gateway !== undefined ? [[`${field}.gateway`, `${gateway}/${len}`] as [string, string]] : []),
      ...(rangeStart !== undefined ? [[`${field}.rangeStart`, rangeStart] as [string, string]] : []),
      ...(rangeEnd !== undefined ? [[`${field}.rangeEnd`, rangeEnd] as [string, string]] : []),
    ];
    for (const [what, cidr] of judgedHere) if (!cidrsAllow(s.allowHostAddresses, cidr)) refuse(`${what} ${judged(cidr)}`, 'allowHostAddresses');
  });
  const mappings = runtimeConfig.portMappings;
  if (mappings === undefined) return;
  if (!Array.isArray(mappings)) throw deviceError(entry, 'portMappings', 'must be a list of port mappings');
  mappings.forEach((m: unknown, i) => {
    const f = `portMappings[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw deviceError(entry, f, 'must be an object');
    const { hostPort, hostIP, protocol = 'tcp' } = m as Record<string, unknown>;
    if (typeof hostPort !== 'number' || !Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535) {
      throw deviceError(entry, `${f}.hostPort`, `must be an integer from 0 to 65535 (got ${preview(hostPort)})`);
    }
    if (hostIP !== undefined && hostIP !== '' && (typeof hostIP !== 'string' || canonicalIp(hostIP) === undefined || hostIP.includes('/'))) {
      throw deviceError(entry, `${f}.hostIP`, `must be an IPv4 or IPv6 address (got ${preview(hostIP)})`);
    }
    if (typeof protocol !== 'string') throw deviceError(entry, `${f}.protocol`, `must be a string (got ${preview(protocol)})`);
    if (!s.allowHostPorts.some(([lo, hi]) => hostPort >= lo && hostPort <= hi)) refuse(`${f}.hostPort ${hostPort}`, 'allowHostPorts');
    // Without a hostIP, portmap forwards the port on every local address, 127.0.0.1 and ::1 included.
    const ips = typeof hostIP === 'string' && hostIP !== '' ? [hostIP] : EVERY_ADDRESS;
    if (!ips.every((ip) => cidrsAllow(s.allowHostIPs, ip))) refuse(ips === EVERY_ADDRESS ? `${f} without hostIP (every local address)` : `${f}.hostIP ${judged(hostIP as string)}`, 'allowHostIPs');
    if (!globsAllow(s.allowProtocols, protocol.toLowerCase())) refuse(`${f}.protocol ${protocol}`, 'allowProtocols');
  });
}

/** One range of the ipRanges capability (host-local's ranges), checked for form. */
interface IpRange {
  /** "runtimeConfig.ipRanges[0][1]", for messages. */
  field: string;
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/**
 * The ranges of runtimeConfig.ipRanges (a list of range sets, each a list of ranges), or a
 * ConfigError naming the field that is not one. The bridge plugin (isGateway) puts each range's
 * gateway, by default the subnet's first address, on the host bridge with the subnet's prefix.
 */
function ipRangesOf(entry: string, runtimeConfig: Record<string, unknown>): IpRange[] {
  const sets = runtimeConfig.ipRanges;
  if (sets === undefined) return [];
  const field = 'runtimeConfig.ipRanges';
  if (!Array.isArray(sets)) throw deviceError(entry, field, 'must be a list of range sets');
  return sets.flatMap((set: unknown, i) => {
    if (!Array.isArray(set)) throw deviceError(entry, `${field}[${i}]`, 'must be a list of ranges');
    return set.map((r: unknown, j): IpRange => {
      const f = `${field}[${i}][${j}]`;
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw deviceError(entry, f, 'must be an object');
      const { subnet, rangeStart, rangeEnd, gateway } = r as Record<string, unknown>;
      const problem = typeof subnet === 'string' ? checkCidr(subnet) : 'must be a CIDR, ADDRESS/PREFIX';
      if (problem !== undefined) throw deviceError(entry, `${f}.subnet`, `${problem} (got ${preview(subnet)})`);
      const address = (name: string, v: unknown): string | undefined => {
        if (v === undefined) return undefined;
        if (typeof v !== 'string' || v.includes('/') || canonicalIp(v) === undefined) throw deviceError(entry, `${f}.${name}`, `must be an IPv4 or IPv6 address (got ${preview(v)})`);
        return v;
      };
      const range = { rangeStart: address('rangeStart', rangeStart), rangeEnd: address('rangeEnd', rangeEnd), gateway: address('gateway', gateway) };
      return { field: f, subnet: subnet as string, ...Object.fromEntries(Object.entries(range).filter(([, v]) => v !== undefined)) };
    });
  });
}

/** An address or MAC an entry asks for, to be judged against those in use (checkAddressesInUse). */
export interface AddressUse {
  entry: string;
  source: DeviceSource;
  /** "mac", "hostAddresses[1]", "runtimeConfig.ips[0]", "CNI_ARGS IP", ... */
  field: string;
  kind: 'mac' | 'ip';
  /** Lower-case MAC, or an address in the kernel's form (IPv4-mapped ones as IPv4). */
  value: string;
  /**
   * A host-side address (hostAddresses, an ipRanges gateway): the prefix length the host will
   * route to it, which must overlap no prefix in use. Absent: the address alone is judged.
   */
  prefixlen?: number;
  /** An ipRanges gateway: the CNI network whose bridge it goes on (the same address already there is no change). */
  network?: string;
}

/** Every address and MAC `devices` and `networks` set, on either side. */
export function requestedAddresses(devices: DeviceSpec[], networks: NetworkSpec[]): AddressUse[] {
  const uses: AddressUse[] = [];
  const add = (entry: string, source: DeviceSource, field: string, kind: 'mac' | 'ip', text: unknown) => {
    if (typeof text !== 'string') return;
    const value = kind === 'mac' ? text.toLowerCase() : canonicalIp(text);
    if (value !== undefined) uses.push({ entry, source, field, kind, value });
  };
  /** A host-side prefix; an IPv6 link-local one is per link, judged alone. */
  const addHost = (entry: string, source: DeviceSource, field: string, cidr: string, network?: string) => {
    const as = judgedCidr(cidr);
    if (as === undefined) return;
    const [value, len] = as.split('/');
    uses.push({ entry, source, field, kind: 'ip', value, ...(isLinkLocalIpv6(value) ? {} : { prefixlen: Number(len) }), ...(network !== undefined ? { network } : {}) });
  };
  for (const d of devices) {
    add(d.key, d.source, 'mac', 'mac', d.mac);
    add(d.key, d.source, 'hostMac', 'mac', d.hostMac);
    (d.addresses ?? []).forEach((a, i) => add(d.key, d.source, `addresses[${i}]`, 'ip', a));
    (d.hostAddresses ?? []).forEach((a, i) => addHost(d.key, d.source, `hostAddresses[${i}]`, a));
  }
  for (const n of networks) {
    add(n.network, n.source, 'runtimeConfig.mac', 'mac', n.runtimeConfig.mac);
    for (const r of ipRangesOf(n.network, n.runtimeConfig)) {
      const gateway = r.gateway ?? firstHostAddress(r.subnet);
      if (gateway !== undefined) addHost(n.network, n.source, `${r.field}.gateway`, `${gateway}/${r.subnet.split('/')[1]}`, n.network);
    }
    const ips = n.runtimeConfig.ips;
    if (Array.isArray(ips)) ips.forEach((a, i) => add(n.network, n.source, `runtimeConfig.ips[${i}]`, 'ip', a));
    for (const [k, v] of n.args) {
      if (k === 'MAC') add(n.network, n.source, 'CNI_ARGS MAC', 'mac', v);
      if (k === 'IP') v.split(',').forEach((a) => add(n.network, n.source, 'CNI_ARGS IP', 'ip', a.trim()));
    }
  }
  return uses;
}

/** An address in use, with who uses it. */
export interface AddressInUse {
  /** In the kernel's form, IPv4-mapped ones as IPv4. */
  address: string;
  /** The prefix the host routes to it (a host device's address), or the full length (a container's). */
  prefixlen: number;
  /** "host device eth1", "container web-1". */
  holder: string;
  /** The host device it is on. */
  device?: string;
}

/** Who uses each MAC and address now: "host device eth1", "container web-1". */
export interface AddressesInUse {
  macs: Map<string, string>;
  /** Other containers' first, then the host devices'. */
  ips: AddressInUse[];
}

/**
 * What a use collides with, as the refusal says it, or undefined. An address is taken when
 * another uses it; a host-side prefix when it overlaps one in use, as the host would route
 * (part of) the other's to this container. An ipRanges gateway already on the network's own
 * bridge (`unchangedOn`) is the same network again, changing nothing.
 */
function collision(u: AddressUse, inUse: AddressesInUse, unchangedOn: (network: string) => string[]): string | undefined {
  if (u.kind === 'mac') {
    const holder = inUse.macs.get(u.value);
    return holder === undefined ? undefined : `it is in use by ${holder}`;
  }
  const mine = u.prefixlen === undefined ? u.value : `${u.value}/${u.prefixlen}`;
  const same = u.network !== undefined ? unchangedOn(u.network) : [];
  for (const a of inUse.ips) {
    if (a.device !== undefined && same.includes(a.device) && a.address === u.value && a.prefixlen === u.prefixlen) continue;
    if (a.address === u.value) return `it is in use by ${a.holder}`;
    if (u.prefixlen !== undefined && prefixesOverlap(mine, `${a.address}/${a.prefixlen}`)) return `it overlaps ${a.address}/${a.prefixlen}, in use by ${a.holder}`;
  }
  return undefined;
}

/**
 * The first use of an address or MAC in use that the policy of its source does not allow, thrown
 * as a PolicyError. `unchangedOn`: the host devices a CNI network's plugins name.
 */
export function checkAddressesInUse(uses: AddressUse[], inUse: AddressesInUse, policy: Policy, unchangedOn: (network: string) => string[] = () => []): void {
  for (const u of uses) {
    if (policy[u.source].allowAddressesInUse) continue;
    const why = collision(u, inUse, unchangedOn);
    if (why === undefined) continue;
    const rule = `${u.source}.allowAddressesInUse`;
    const says = policy[u.source].given.allowAddressesInUse ? `${rule} is false` : `${rule} is false by default`;
    const subject = u.prefixlen === undefined ? u.value : `${u.value}/${u.prefixlen}`;
    throw refusal(policy, u.entry, u.source, `${u.field} ${subject}`, 'allowAddressesInUse', `${why}, and ${says}`);
  }
}
