// The network config a CNI runtime gives the plugin on stdin, decoded: JSON that does not parse is
// code 6; a key of ours with a wrong type or value is code 7 naming it; keys we do not know are
// ignored, as CNI plugins do. The version is negotiated as libcni's plugin side does it: an exact
// match among the supported versions, else code 1.

import { createHash } from 'node:crypto';
import { checkDevName } from '../config';
import { parseJsonText } from '../schema/json';
import { DEVICE_KINDS, MACVLAN_MODES, type DeviceKind, type MacvlanMode } from '../model/devices';
import type { CniCommand } from '../libcni/invoke';
import type { CniResult, CniVersion } from '../libcni/spec';
import { CniCode, CniError, SUPPORTED_VERSIONS, atLeast, isSupportedVersion, parseResult } from '../libcni/spec';


/** How the host device of a `host` config is picked: by name, or by a selector of src/plan/select.ts. */
export type HostPick = { by: 'device'; value: string } | { by: 'hwaddr' | 'pciBusID' | 'kernelpath'; value: string };

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  kind: DeviceKind;
  /** host: the device to move (runtimeConfig.deviceID, a PCI address, wins over the config's selector). */
  pick?: HostPick;
  /** veth: the host end's name. */
  hostName?: string;
  master?: string;
  mode?: MacvlanMode;
  mtu?: number;
  /** config `mac`, then runtimeConfig.mac (the `mac` capability) over it; CNI_ARGS MAC= is the plugin's to add. */
  mac?: string;
  /** The IPAM plugin's type, when the config delegates addresses. */
  ipamType?: string;
  prevResult?: CniResult;
  /** GC: the attachments the runtime still uses. */
  validAttachments?: { containerID: string; ifname: string }[];
  /** The state dir and policy file the config names: they must be the node's (src/cni/plugin.ts). */
  stateDir?: string;
  policyFile?: string;
  /** The config as received: delegated plugins get it unchanged. */
  raw: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const invalid = (key: string, problem: string): CniError => new CniError(CniCode.invalidConfig, `network config: ${key}: ${problem}`);

function optString(o: Record<string, unknown>, key: string, where = key): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(where, `must be a non-empty string (got ${JSON.stringify(v)})`);
  return v;
}

function devName(o: Record<string, unknown>, key: string, where = key): string | undefined {
  const name = optString(o, key, where);
  const problem = name !== undefined ? checkDevName(name, { template: false }) : undefined;
  if (problem) throw invalid(where, `${problem} (got ${JSON.stringify(name)})`);
  return name;
}

const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

function mac(value: string | undefined, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (!MAC.test(value)) throw invalid(where, `must be a MAC address xx:xx:xx:xx:xx:xx (got ${JSON.stringify(value)})`);
  return value.toLowerCase();
}

/** A MAC the kernel would take for a device: neither multicast nor all zeros (it refuses them only after the move). */
export function isUnicastMac(value: string): boolean {
  return MAC.test(value) && !(parseInt(value.slice(0, 2), 16) & 1) && value !== '00:00:00:00:00:00';
}

function unicastMac(value: string | undefined, where: string): string | undefined {
  const m = mac(value, where);
  if (m !== undefined && !isUnicastMac(m)) {
    throw invalid(where, `must be a unicast MAC address, not multicast or all zeros (got ${JSON.stringify(value)})`);
  }
  return m;
}

/** libcni's ValidateNetworkName; the name is part of our attachment ids and of IPAM's file names. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** A network config is a few KiB: more, or nesting deeper than this, is not one. */
const MAX_CONFIG_BYTES = 1 << 20;
const MAX_CONFIG_DEPTH = 64;

/** How deep the arrays and objects of a JSON text nest (strings skipped); stops counting past `limit`. */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length && deepest <= limit; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') deepest = Math.max(deepest, ++depth);
    else if (c === '}' || c === ']') depth--;
  }
  return deepest;
}

/** The version a config asks for; libcni reads a config without one as 0.1.0. */
export function configVersion(raw: Record<string, unknown>): string {
  const v = raw.cniVersion;
  if (v === undefined || v === '') return '0.1.0';
  if (typeof v !== 'string') throw invalid('cniVersion', `must be a string (got ${JSON.stringify(v)})`);
  return v;
}

/** The JSON object on stdin; code 6 when it is not one. */
export function decodeJson(text: string): Record<string, unknown> {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) throw new CniError(CniCode.decode, `network config: ${bytes} bytes of JSON; at most ${MAX_CONFIG_BYTES} are read`);
  if (jsonDepth(text, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH) {
    throw new CniError(CniCode.decode, `network config: JSON nests deeper than ${MAX_CONFIG_DEPTH} levels`);
  }
  let raw: unknown;
  try {
    raw = parseJsonText(text);
  } catch (err) {
    throw new CniError(CniCode.decode, `network config: cannot decode JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new CniError(CniCode.decode, 'network config: must be a JSON object');
  return raw;
}

/** The exact version match libcni's plugin side asks for, and the verbs each version has. */
export function negotiate(version: string, command: CniCommand): CniVersion {
  if (!isSupportedVersion(version)) {
    throw new CniError(CniCode.incompatibleVersion, `incompatible CNI versions: config is ${JSON.stringify(version)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`);
  }
  const floor = command === 'CHECK' ? '0.4.0' : command === 'GC' || command === 'STATUS' ? '1.1.0' : undefined;
  if (floor && !atLeast(version, floor)) {
    throw new CniError(CniCode.incompatibleVersion, `config version ${version} does not allow ${command} (it needs ${floor} or later)`);
  }
  return version;
}

/** The host-device selectors, in host-device's order. */
const PICKS = ['device', 'hwaddr', 'kernelpath', 'pciBusID'] as const;

/** Decodes and checks the network config for `command` (VERSION reads only the version). */
export function decodeNetConf(raw: Record<string, unknown>, command: CniCommand): NetConf {
  const cniVersion = negotiate(configVersion(raw), command);
  const name = optString(raw, 'name');
  if (name === undefined) throw invalid('name', 'the network name is required');
  if (!NETWORK_NAME.test(name)) throw invalid('name', `must start with a letter or digit and hold only letters, digits, '_', '.' and '-' (got ${JSON.stringify(name)})`);
  const type = optString(raw, 'type') ?? '';
  const kindText = optString(raw, 'kind') ?? 'host';
  if (!(DEVICE_KINDS as readonly string[]).includes(kindText)) throw invalid('kind', `must be host, veth or macvlan (got ${JSON.stringify(kindText)})`);
  const kind = kindText as DeviceKind;
  const conf: NetConf = { cniVersion, name, type, kind, raw };

  const rc = raw.runtimeConfig;
  if (rc !== undefined && rc !== null && !isObject(rc)) throw invalid('runtimeConfig', 'must be an object');
  const runtime = isObject(rc) ? rc : {};

  const given = PICKS.filter((k) => raw[k] !== undefined && raw[k] !== null);
  if (kind === 'host') {
    const deviceID = optString(runtime, 'deviceID', 'runtimeConfig.deviceID');
    if (deviceID !== undefined) {
      if (!/^([0-9A-Fa-f]{4,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$/.test(deviceID)) {
        throw invalid('runtimeConfig.deviceID', `must be a PCI address such as 0000:3b:00.1 (got ${JSON.stringify(deviceID)})`);
      }
      conf.pick = { by: 'pciBusID', value: deviceID };
    } else {
      if (given.length === 0) throw invalid('device', 'one of device, hwaddr, kernelpath, pciBusID or runtimeConfig.deviceID is required');
      if (given.length > 1) throw invalid(given.join(' and '), 'give only one of device, hwaddr, kernelpath and pciBusID');
      const by = given[0];
      const value = by === 'device' ? devName(raw, by)! : optString(raw, by)!;
      if (by === 'hwaddr') mac(value, by);
      if (by === 'kernelpath' && !value.startsWith('/sys/devices/')) throw invalid(by, `must be a sysfs device path /sys/devices/... (got ${JSON.stringify(value)})`);
      if (by === 'pciBusID' && !/^([0-9A-Fa-f]{4,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$/.test(value)) {
        throw invalid(by, `must be a PCI address such as 0000:3b:00.1 (got ${JSON.stringify(value)})`);
      }
      conf.pick = { by, value };
    }
  } else if (given.length) {
    throw invalid(given[0], `is only for a host device, not kind ${kind}`);
  }
  if (kind === 'veth') conf.hostName = devName(raw, 'hostName');
  else if (raw.hostName !== undefined) throw invalid('hostName', 'is only for kind veth');
  if (kind === 'macvlan') {
    conf.master = devName(raw, 'master');
    if (conf.master === undefined) throw invalid('master', 'is required for kind macvlan');
    const mode = optString(raw, 'mode') ?? 'bridge';
    if (!(MACVLAN_MODES as readonly string[]).includes(mode)) throw invalid('mode', `must be bridge, private, vepa or passthru (got ${JSON.stringify(mode)})`);
    conf.mode = mode as NetConf['mode'];
  } else {
    for (const k of ['master', 'mode']) if (raw[k] !== undefined) throw invalid(k, 'is only for kind macvlan');
  }
  if (raw.mtu !== undefined && raw.mtu !== null) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < 68 || raw.mtu > 65535) {
      throw invalid('mtu', `must be an integer from 68 to 65535 (got ${JSON.stringify(raw.mtu)})`);
    }
    conf.mtu = raw.mtu;
  }
  conf.mac = unicastMac(optString(runtime, 'mac', 'runtimeConfig.mac'), 'runtimeConfig.mac') ?? unicastMac(optString(raw, 'mac'), 'mac');

  if (raw.ipam !== undefined && raw.ipam !== null) {
    if (!isObject(raw.ipam)) throw invalid('ipam', 'must be an object');
    const ipamType = optString(raw.ipam, 'type', 'ipam.type');
    // An ipam object without a type configures nothing, as in the reference plugins.
    if (ipamType !== undefined && (ipamType.includes('/') || ipamType === '.' || ipamType === '..')) {
      throw invalid('ipam.type', `must be a plugin name, found in CNI_PATH, not a path (got ${JSON.stringify(ipamType)})`);
    }
    if (ipamType !== undefined) conf.ipamType = ipamType;
  }
  if (raw.prevResult !== undefined && raw.prevResult !== null) {
    if (!isObject(raw.prevResult)) throw invalid('prevResult', 'must be an object');
    try {
      conf.prevResult = parseResult({ cniVersion, ...raw.prevResult });
    } catch (err) {
      throw invalid('prevResult', (err as Error).message);
    }
  }
  const valid = raw['cni.dev/valid-attachments'];
  if (valid !== undefined && valid !== null) {
    const where = 'cni.dev/valid-attachments';
    if (!Array.isArray(valid)) throw invalid(where, 'must be a list');
    conf.validAttachments = valid.map((a, i) => {
      if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
        throw invalid(`${where}[${i}]`, 'must be an object with string containerID and ifname');
      }
      return { containerID: a.containerID, ifname: a.ifname };
    });
  }
  for (const [key, field] of [['stateDir', 'stateDir'], ['policy', 'policyFile']] as const) {
    const v = optString(raw, key);
    if (v !== undefined && !v.startsWith('/')) throw invalid(key, `must be an absolute path (got ${JSON.stringify(v)})`);
    if (v !== undefined) conf[field] = v;
  }
  return conf;
}

/** The veth host end's name when the config gives none: the same for the same container and interface. */
export function defaultHostName(containerId: string, ifname: string): string {
  return `veth${createHash('sha256').update(`${containerId}\0${ifname}`).digest('hex').slice(0, 11)}`;
}
