// From the OCI state to a validated ContainerRequest: reads BUNDLE/config.json, takes
// linux.netDevices and the annotation oci-netdev.netDevices, and checks schema and meaning.
// Nothing here touches the network; the host-side checks (master exists, device free) are the
// engine's.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ConfigError } from '../errors';
import { checkDevName, isDevNameTemplate } from './names';
import { deviceError, oneLine, preview, show, validate } from './schema';
import { parseJson, readBounded, sizeText } from './read';
import type { ConfigRequest, ContainerRequest, DeviceKind, DeviceSource, DeviceSpec, MacvlanMode, OciState } from './types';

export const ANNOTATION = 'oci-netdev.netDevices';
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
export const MAX_ANNOTATION_BYTES = 64 * 1024;
/** Also the schema's maxProperties; here it bounds the merge of both sources. */
export const MAX_DEVICES = 256;

const WHERE: Record<DeviceSource, string> = {
  config: 'linux.netDevices',
  annotation: `annotation ${ANNOTATION}`,
};

/** One entry as the schema admits it. */
interface Entry {
  name?: string;
  type?: DeviceKind;
  mtu?: number;
  mac?: string;
  master?: string;
  mode?: MacvlanMode;
  addresses?: string[];
}

/** The parts of config.json we read, as spec/config.schema.json admits them. */
interface Config {
  annotations?: Record<string, string>;
  linux?: { netDevices?: object; namespaces?: { type: string; path?: string }[] };
}

export function loadContainerRequest(state: OciState): ContainerRequest {
  if (typeof state.bundle !== 'string' || !path.isAbsolute(state.bundle)) {
    throw new ConfigError(`OCI state: bundle: must be an absolute path (got ${preview(state.bundle)})`, {
      field: 'bundle',
    });
  }
  return { state, ...requestOf(readConfig(path.join(state.bundle, 'config.json')), state.annotations) };
}

/** `oci-netdev validate CONFIG`: what a config.json asks for, by the same rules. */
export function validateConfigFile(file: string): ConfigRequest {
  return requestOf(readConfig(file));
}

function requestOf(config: Config, stateAnnotations?: Record<string, string>): ConfigRequest {
  const ns = config.linux?.namespaces?.find((n) => n.type === 'network');
  return {
    ...(ns?.path ? { netnsPath: ns.path } : {}),
    hasNetworkNamespace: ns !== undefined,
    devices: configDevices(config, stateAnnotations),
  };
}

/**
 * Validate one netDevices object (from config.json or the annotation) into device specs, in key
 * order as written (JavaScript puts integer-like keys such as "10" first).
 */
export function parseNetDevices(obj: unknown, source: DeviceSource): DeviceSpec[] {
  validate('netDevices', obj, WHERE[source], true);
  const devices = Object.entries(obj as Record<string, Entry>).map(([key, entry]) => toSpec(key, entry, source));
  checkTogether(devices, WHERE[source]);
  return devices;
}

function readConfig(file: string): Config {
  const where = `config.json ${show(file)}`;
  let fd: number;
  try {
    // Non-blocking, so that a FIFO planted as config.json cannot hold the hook at open().
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new ConfigError(`${where}: cannot read: ${oneLine((err as Error).message)}`);
  }
  let text: Buffer;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(`${where}: is not a regular file`);
    const size = st.size;
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError(`${where}: larger than ${sizeText(MAX_CONFIG_BYTES)} (${size} bytes)`);
    }
    text = readBounded(fd, MAX_CONFIG_BYTES, where);
  } finally {
    fs.closeSync(fd);
  }
  const config = parseJson(text, where);
  validate('config', config, where);
  return config as Config;
}

/** Devices from linux.netDevices, then from the annotation (the state's, else config.json's). */
function configDevices(config: Config, stateAnnotations?: Record<string, string>): DeviceSpec[] {
  const fromConfig = parseNetDevices(config.linux?.netDevices ?? {}, 'config');
  const text = stateAnnotations?.[ANNOTATION] ?? config.annotations?.[ANNOTATION];
  if (text === undefined) return fromConfig;

  const size = Buffer.byteLength(text);
  if (size > MAX_ANNOTATION_BYTES) {
    const limit = sizeText(MAX_ANNOTATION_BYTES);
    throw new ConfigError(`${WHERE.annotation}: larger than ${limit} (${size} bytes)`, { field: ANNOTATION });
  }
  const fromAnnotation = parseNetDevices(parseJson(text, WHERE.annotation), 'annotation');
  const keys = new Set(fromConfig.map((d) => d.key));
  for (const d of fromAnnotation) {
    if (keys.has(d.key)) throw deviceError(d.key, 'key', `given in both ${WHERE.config} and ${WHERE.annotation}`);
  }
  const devices = [...fromConfig, ...fromAnnotation];
  checkTogether(devices, `${WHERE.config} and ${WHERE.annotation} together`);
  return devices;
}

/** Meaning checks on one entry the schema has accepted. */
function toSpec(key: string, entry: Entry, source: DeviceSource): DeviceSpec {
  const kind = entry.type ?? 'host';
  const keyProblem = checkDevName(key, { template: false });
  if (keyProblem) throw deviceError(key, 'key', keyProblem);
  const spec: DeviceSpec = { key, kind, name: entry.name ?? key, source };
  const nameProblem = checkDevName(spec.name);
  if (nameProblem) throw deviceError(key, 'name', `${nameProblem} (got ${preview(spec.name)})`);

  if (entry.mtu !== undefined) spec.mtu = entry.mtu;
  if (entry.mac !== undefined) {
    const mac = entry.mac.toLowerCase();
    if (parseInt(mac.slice(0, 2), 16) & 1) throw deviceError(key, 'mac', `must be a unicast address (got ${mac})`);
    if (/^[0:]+$/.test(mac)) throw deviceError(key, 'mac', `must not be all zeros (got ${mac})`);
    spec.mac = mac;
  }
  if (kind === 'macvlan') {
    const master = entry.master as string; // required by the schema for macvlan
    const problem = checkDevName(master, { template: false });
    if (problem) throw deviceError(key, 'master', `${problem} (got ${preview(master)})`);
    spec.master = master;
    spec.mode = entry.mode ?? 'bridge';
  }
  if (entry.addresses !== undefined) {
    entry.addresses.forEach((cidr, i) => {
      const problem = checkCidr(cidr);
      if (problem) throw deviceError(key, `addresses[${i}]`, `${problem} (got ${preview(cidr)})`);
    });
    spec.addresses = [...entry.addresses];
  }
  return spec;
}

/** Why `cidr` is not ADDRESS/PREFIX with an IPv4 or IPv6 address, or undefined. */
function checkCidr(cidr: string): string | undefined {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(cidr);
  if (!m) return 'must be a CIDR, ADDRESS/PREFIX';
  const bits = net.isIPv4(m[1]) ? 32 : net.isIPv6(m[1]) && !m[1].includes('%') ? 128 : 0;
  if (!bits) return 'must be a CIDR with an IPv4 or IPv6 address';
  if (Number(m[2]) > bits) return `must have an IPv${bits === 32 ? 4 : 6} prefix length from 0 to ${bits}`;
  return undefined;
}

/** Checks across entries: count, unique container names, a macvlan master not moved away. */
function checkTogether(devices: DeviceSpec[], where: string): void {
  if (devices.length > MAX_DEVICES) {
    throw new ConfigError(`${where}: at most ${MAX_DEVICES} devices (got ${devices.length})`);
  }
  const byName = new Map<string, string>();
  for (const d of devices) {
    // Templates may repeat: the kernel gives each a different free name.
    const other = byName.get(d.name);
    if (other !== undefined) {
      throw deviceError(d.key, 'name', `container name ${show(d.name)} is already used by device ${show(other)}`);
    }
    if (!isDevNameTemplate(d.name)) byName.set(d.name, d.key);
  }
  const moved = new Set(devices.filter((d) => d.kind === 'host').map((d) => d.key));
  for (const d of devices) {
    if (d.master !== undefined && moved.has(d.master)) {
      throw deviceError(d.key, 'master', `${show(d.master)} must stay on the host, but its own entry moves it`);
    }
  }
}
