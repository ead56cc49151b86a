// From the OCI state to a validated ContainerRequest: reads BUNDLE/config.json, takes
// linux.netDevices and the annotation oci-netdev.netDevices, and checks schema and meaning.
// Nothing here touches the network; the host-side checks (master exists, device free) are the
// engine's.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, deviceError, preview, show } from '../errors';
import { checkDevName, isDevNameTemplate } from './names';
import { deviceArgs, splitDeviceOptions } from './device-arg';
import { checkCidr, checkGateways, checkRouteFields, plannedRoutes } from './routes';
import { validate } from '../schema/validate';
import { parseJson } from './read';
import { readRegularFile, sizeText } from '../fsio/files';
import type { ConfigRequest, ContainerRequest, DeviceSource, DeviceSpec, HookSelf, NetworkSpec, OciState, RouteSpec, DeviceSelector, SelectorField } from './types';
import type { DeviceKind, MacvlanMode } from '../model/devices';
import { DEFAULT_CNI_IFNAME } from './types';

export const ANNOTATION = 'oci-netdev.netDevices';
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
export const MAX_ANNOTATION_BYTES = 64 * 1024;
/** Also the schema's maxProperties; here it bounds the merge of both sources. */
export const MAX_DEVICES = 256;

const WHERE: Record<DeviceSource, string> = {
  config: 'linux.netDevices',
  annotation: `annotation ${ANNOTATION}`,
  cni: 'the CNI network config',
};

/** One entry as the schema admits it. */
interface Entry {
  name?: string;
  type?: DeviceKind | 'cni';
  mtu?: number;
  mac?: string;
  master?: string;
  mode?: MacvlanMode;
  addresses?: string[];
  gateway?: string;
  routes?: RouteSpec[];
  hostBridge?: string;
  hostAddresses?: string[];
  hostMac?: string;
  hwaddr?: string;
  pciBusID?: string;
  kernelpath?: string;
  dad?: boolean;
  args?: Record<string, string>;
  runtimeConfig?: Record<string, unknown>;
  portMappings?: object[];
}

/** The fields a cni entry may have; the others describe devices. */
const CNI_FIELDS = new Set(['name', 'type', 'args', 'runtimeConfig', 'portMappings']);
/** libcni's rule for network names (they name cache files). */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The devices and the CNI networks of a netDevices object. */
export interface NetEntries {
  devices: DeviceSpec[];
  networks: NetworkSpec[];
}

/** The parts of config.json we read, as spec/config.schema.json admits them. */
interface Config {
  annotations?: Record<string, string>;
  hooks?: { createRuntime?: { path: string; args?: string[] }[] };
  linux?: { netDevices?: object; namespaces?: { type: string; path?: string }[] };
}

/**
 * The request of a container. `self`: the hook run that asks, whose --device arguments, and those
 * of its siblings in config.json's hooks.createRuntime, count as entries of linux.netDevices.
 */
export function loadContainerRequest(state: OciState, self?: HookSelf): ContainerRequest {
  if (typeof state.bundle !== 'string' || !path.isAbsolute(state.bundle)) {
    throw new ConfigError(`OCI state: bundle: must be an absolute path (got ${preview(state.bundle)})`, {
      field: 'bundle',
    });
  }
  const config = readConfig(path.join(state.bundle, 'config.json'));
  return { state, ...requestOf(config, state.annotations, self ? hookDeviceTexts(config, self) : []) };
}

/** `oci-netdev validate CONFIG`: what a config.json asks for, by the same rules. */
export function validateConfigFile(file: string): ConfigRequest {
  return requestOf(readConfig(file));
}

function requestOf(config: Config, stateAnnotations?: Record<string, string>, hookTexts: string[] = []): ConfigRequest {
  const ns = config.linux?.namespaces?.find((n) => n.type === 'network');
  return {
    ...(ns?.path ? { netnsPath: ns.path } : {}),
    hasNetworkNamespace: ns !== undefined,
    ...configDevices(config, stateAnnotations, hookTexts),
  };
}

/**
 * Validate one netDevices object (from config.json or the annotation) into device specs, in key
 * order as written (JavaScript puts integer-like keys such as "10" first).
 */
export function parseNetDevices(obj: unknown, source: DeviceSource): DeviceSpec[] {
  return parseNetEntries(obj, source).devices;
}

/** parseNetDevices, with the cni entries as networks. */
export function parseNetEntries(obj: unknown, source: DeviceSource): NetEntries {
  validate('netDevices', obj, WHERE[source], true);
  const entries = Object.entries(obj as Record<string, Entry>);
  const devices = entries.filter(([, e]) => e.type !== 'cni').map(([key, entry]) => toSpec(key, entry, source));
  const networks = entries.filter(([, e]) => e.type === 'cni').map(([key, entry]) => toNetwork(key, entry, source));
  checkTogether(devices, networks, WHERE[source]);
  return { devices, networks };
}

/** Meaning checks on one cni entry the schema has accepted. */
function toNetwork(key: string, entry: Entry, source: DeviceSource): NetworkSpec {
  if (!NETWORK_NAME.test(key) || Buffer.byteLength(key) > 255) {
    throw deviceError(key, 'key', 'must be a CNI network name: letters, digits, _ . and -, starting with a letter or digit');
  }
  const extra = Object.keys(entry).find((f) => !CNI_FIELDS.has(f));
  if (extra !== undefined) throw deviceError(key, extra, 'is not allowed for type cni');
  const ifname = entry.name ?? DEFAULT_CNI_IFNAME;
  const problem = checkDevName(ifname, { template: false });
  if (problem) throw deviceError(key, 'name', `${problem} (got ${preview(ifname)})`);
  const runtimeConfig: Record<string, unknown> = { ...entry.runtimeConfig };
  if (entry.portMappings !== undefined) {
    if (runtimeConfig.portMappings !== undefined) throw deviceError(key, 'portMappings', 'given both here and in runtimeConfig');
    runtimeConfig.portMappings = entry.portMappings.map((m) => ({ protocol: 'tcp', ...m }));
  }
  return { network: key, ifname, args: Object.entries(entry.args ?? {}), runtimeConfig, source };
}

function readConfig(file: string): Config {
  const where = `config.json ${show(file)}`;
  // The bundle is the runtime's: config.json may be a link (follow), but never a FIFO or a device.
  const config = parseJson(readRegularFile(file, { where, maxBytes: MAX_CONFIG_BYTES, follow: true }), where);
  validate('config', config, where);
  return config as Config;
}

/** The devices of a command line's --device arguments, by the rules of linux.netDevices. */
export function deviceArgSpecs(texts: string[]): DeviceSpec[] {
  const args = deviceArgs(texts);
  return parseNetDevices(Object.fromEntries(args.map((a) => [a.key, a.entry])), 'config');
}

/**
 * The --device texts of every createRuntime hook entry that is `self` but for its --device
 * arguments (same executable, same options and command), in config.json's order, then self's own
 * (a run started by hand has no entry there).
 */
function hookDeviceTexts(config: Config, self: HookSelf): string[] {
  const mine = splitDeviceOptions(self.args);
  const texts: string[] = [];
  for (const entry of config.hooks?.createRuntime ?? []) {
    const args = entry.args ?? [];
    const { rest, devices } = splitDeviceOptions(args);
    const tail = rest.slice(rest.length - mine.rest.length);
    const sameOptions = rest.length > mine.rest.length && tail.every((a, i) => a === mine.rest[i]);
    // The executable may come first as the path or, run through an interpreter, as an argument.
    const sameProgram = [entry.path, ...rest.slice(0, -mine.rest.length)].some((a) => a.startsWith('/') && sameFile(a, self.path));
    if (sameOptions && sameProgram) texts.push(...devices);
  }
  return [...texts, ...mine.devices];
}

function sameFile(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return fs.realpathSync(a) === fs.realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * Devices from linux.netDevices and the hook's --device arguments, then from the annotation (the
 * state's, else config.json's). A --device entry may repeat a plain move of linux.netDevices under
 * the same name: a runtime that knows CDI netDevices edits moves the device itself, and the hook
 * adopts it with the extension fields of its --device.
 */
function configDevices(config: Config, stateAnnotations?: Record<string, string>, hookTexts: string[] = []): NetEntries {
  let fromConfig = parseNetEntries(config.linux?.netDevices ?? {}, 'config');
  const hookArgs = deviceArgs(hookTexts);
  if (hookArgs.length) {
    const merged = { ...(config.linux?.netDevices as Record<string, object> | undefined) };
    for (const { key, entry } of hookArgs) {
      const standard = fromConfig.devices.find((d) => d.key === key);
      const plainMove = standard && Object.keys(merged[key]).every((f) => f === 'name') && standard.name === (entry.name ?? key);
      if ((standard && !plainMove) || fromConfig.networks.some((n) => n.network === key)) {
        throw deviceError(key, 'key', `given in both ${WHERE.config} and a hook's --device argument, and not as the same plain move`);
      }
      merged[key] = entry;
    }
    fromConfig = parseNetEntries(merged, 'config');
  }
  const text = stateAnnotations?.[ANNOTATION] ?? config.annotations?.[ANNOTATION];
  if (text === undefined) return fromConfig;

  const size = Buffer.byteLength(text);
  if (size > MAX_ANNOTATION_BYTES) {
    const limit = sizeText(MAX_ANNOTATION_BYTES);
    throw new ConfigError(`${WHERE.annotation}: larger than ${limit} (${size} bytes)`, { field: ANNOTATION });
  }
  const fromAnnotation = parseNetEntries(parseJson(text, WHERE.annotation), 'annotation');
  const keys = new Set([...fromConfig.devices.map((d) => d.key), ...fromConfig.networks.map((n) => n.network)]);
  for (const key of [...fromAnnotation.devices.map((d) => d.key), ...fromAnnotation.networks.map((n) => n.network)]) {
    if (keys.has(key)) throw deviceError(key, 'key', `given in both ${WHERE.config} and ${WHERE.annotation}`);
  }
  const devices = [...fromConfig.devices, ...fromAnnotation.devices];
  const networks = [...fromConfig.networks, ...fromAnnotation.networks];
  checkTogether(devices, networks, `${WHERE.config} and ${WHERE.annotation} together`);
  return { devices, networks };
}

/** Meaning checks on one entry the schema has accepted. */
function toSpec(key: string, entry: Entry, source: DeviceSource): DeviceSpec {
  const kind = (entry.type ?? 'host') as DeviceKind; // cni entries are toNetwork's
  const keyProblem = checkDevName(key, { template: false });
  if (keyProblem) throw deviceError(key, 'key', keyProblem);
  const spec: DeviceSpec = { key, kind, name: entry.name ?? key, source };
  const nameProblem = checkDevName(spec.name);
  if (nameProblem) throw deviceError(key, 'name', `${nameProblem} (got ${preview(spec.name)})`);

  if (entry.mtu !== undefined) spec.mtu = entry.mtu;
  if (entry.mac !== undefined) spec.mac = checkMac(key, 'mac', entry.mac);
  if (kind === 'macvlan') {
    const master = entry.master as string; // required by the schema for macvlan
    const problem = checkDevName(master, { template: false });
    if (problem) throw deviceError(key, 'master', `${problem} (got ${preview(master)})`);
    spec.master = master;
    spec.mode = entry.mode ?? 'bridge';
  }
  if (entry.addresses !== undefined) spec.addresses = checkCidrs(key, 'addresses', entry.addresses);
  Object.assign(spec, checkRouteFields(key, entry.gateway, entry.routes));
  // Created devices get exactly the addresses given; a moved device's are checked at planning.
  if (kind !== 'host') checkGateways(key, plannedRoutes(spec), (spec.addresses ?? []).map(addressOf));
  if (entry.hostBridge !== undefined) {
    const problem = checkDevName(entry.hostBridge, { template: false });
    if (problem) throw deviceError(key, 'hostBridge', `${problem} (got ${preview(entry.hostBridge)})`);
    spec.hostBridge = entry.hostBridge;
  }
  if (entry.hostAddresses !== undefined) spec.hostAddresses = checkCidrs(key, 'hostAddresses', entry.hostAddresses);
  if (entry.hostMac !== undefined) spec.hostMac = checkMac(key, 'hostMac', entry.hostMac);
  const select = selectorOf(key, entry);
  if (select) spec.select = select;
  if (entry.dad !== undefined) spec.dad = entry.dad;
  return spec;
}

/** A MAC the schema has accepted, lower case, refused when it is multicast or all zeros. */
function checkMac(key: string, field: string, text: string): string {
  const mac = text.toLowerCase();
  if (parseInt(mac.slice(0, 2), 16) & 1) throw deviceError(key, field, `must be a unicast address (got ${mac})`);
  if (/^[0:]+$/.test(mac)) throw deviceError(key, field, `must not be all zeros (got ${mac})`);
  return mac;
}


const SELECTOR_FIELDS: readonly SelectorField[] = ['hwaddr', 'pciBusID', 'kernelpath'];

/** The one selector of a host entry (the schema keeps them off other types), normalised; undefined when none. */
function selectorOf(key: string, entry: Entry): DeviceSelector | undefined {
  const given = SELECTOR_FIELDS.filter((f) => entry[f] !== undefined);
  if (given.length > 1) throw deviceError(key, given.join(' and '), 'give only one of hwaddr, pciBusID and kernelpath');
  const by = given[0];
  if (by === undefined) return undefined;
  return selectorFor(by, entry[by] as string);
}

/** A selector as matching takes it: lower-case MAC, PCI address with its domain, sysfs path without a trailing slash. */
export function selectorFor(by: SelectorField, raw: string): DeviceSelector {
  if (by === 'hwaddr') return { by, value: raw.toLowerCase() };
  if (by === 'pciBusID') return { by, value: (raw.split(':').length === 2 ? `0000:${raw}` : raw).toLowerCase() };
  return { by, value: raw.replace(/\/+$/, '') };
}

function checkCidrs(key: string, field: string, cidrs: string[]): string[] {
  cidrs.forEach((cidr, i) => {
    const problem = checkCidr(cidr);
    if (problem) throw deviceError(key, `${field}[${i}]`, `${problem} (got ${preview(cidr)})`);
  });
  return [...cidrs];
}

const addressOf = (cidr: string) => ({ address: cidr.split('/')[0], prefixlen: Number(cidr.split('/')[1]) });

/** Checks across entries: count, unique container names, a macvlan master not moved away. */
function checkTogether(devices: DeviceSpec[], networks: NetworkSpec[], where: string): void {
  if (devices.length + networks.length > MAX_DEVICES) {
    throw new ConfigError(`${where}: at most ${MAX_DEVICES} devices (got ${devices.length + networks.length})`);
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
  for (const n of networks) {
    const other = byName.get(n.ifname);
    if (other !== undefined) {
      throw deviceError(n.network, 'name', `container name ${show(n.ifname)} is already used by device ${show(other)}`);
    }
    byName.set(n.ifname, n.network);
  }
  // A selector's device is known only on the host: the engine checks it there (src/plan/select.ts).
  const moved = new Set(devices.filter((d) => d.kind === 'host' && !d.select).map((d) => d.key));
  for (const d of devices) {
    if (d.master !== undefined && moved.has(d.master)) {
      throw deviceError(d.key, 'master', `${show(d.master)} must stay on the host, but its own entry moves it`);
    }
  }
}
