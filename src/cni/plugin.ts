// oci-netdev as a CNI plugin: the verbs ADD, DEL, CHECK, STATUS, GC and VERSION over the same
// engine, journal, claims and policy as the OCI hooks. A runtime runs bin/oci-netdev with
// CNI_COMMAND set; the result goes to stdout in the version the config asks for, an error as
// {"cniVersion","code","msg","details"} on stdout with exit 1, logs to stderr.
//
// Each attachment is kept in the state dir under its own id, made from the network name, the
// container id and the interface name, with that origin in its journal. The namespace stays pinned
// from ADD to DEL; `oci-netdev status` and `gc` see these attachments too (alive while the netns
// path given at ADD still refers to the pinned namespace).

import * as path from 'node:path';
import { ConfigError, DeviceBusyError, HostNamespaceError, NetdevError } from '../errors';
import { DEFAULT_POLICY_FILE, checkCniArguments, parseNetDevices } from '../config';
import type { DeviceSpec } from '../config';
import { DEFAULT_STATE_DIR } from '../state/statedir';
import type { JournalOrigin } from '../state/statedir';
import { attachDevices } from '../engine/attach';
import { attachments, detachAttachment } from '../engine/detach';
import { attachmentOf, inspectAttachment } from '../engine/status';
import type { StatusDevice } from '../engine/status';
import { checkContainerNetns } from '../engine/sides';
import { policyOf } from '../engine/options';
import type { EngineOptions } from '../engine/options';
import { cniAttachmentId } from '../engine/networks';
import { execDelegate, execPlugin, findPlugin, pluginVersions } from '../libcni/invoke';
import type { CniCommand } from '../libcni/invoke';
import { CURRENT_VERSION, CniCode, CniError, SUPPORTED_VERSIONS, isSupportedVersion, parseResult, toVersion } from '../libcni/spec';
import type { CniResult, CniRoute } from '../libcni/spec';
import { readCniEnv } from './env';
import type { CniEnv } from './env';
import { configVersion, decodeJson, decodeNetConf, defaultHostName, isUnicastMac, negotiate } from './netconf';
import type { NetConf } from './netconf';

export interface PluginIo {
  env: NodeJS.ProcessEnv;
  stdin: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Runs one CNI command; returns the exit status (0, or 1 with the error printed on stdout). */
export function runPlugin(io: PluginIo): number {
  let version: string = CURRENT_VERSION;
  try {
    const env = readCniEnv(io.env);
    if (env.command === 'VERSION') {
      const asked = io.stdin.trim() ? configVersion(decodeJson(io.stdin)) : CURRENT_VERSION;
      io.stdout(JSON.stringify({ cniVersion: isSupportedVersion(asked) ? asked : CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + '\n');
      return 0;
    }
    const raw = decodeJson(io.stdin);
    const asked = configVersion(raw);
    if (isSupportedVersion(asked)) version = asked;
    negotiate(asked, env.command);
    const conf = decodeNetConf(raw, env.command);
    const opts = engineOptions(conf, io);
    const result = VERBS[env.command](conf, env, opts);
    if (result) io.stdout(JSON.stringify(toVersion(result, conf.cniVersion)) + '\n');
    return 0;
  } catch (err) {
    const e = toCniError(err);
    io.stdout(JSON.stringify(e.toJSON(version)) + '\n');
    io.stderr(`oci-netdev: ${e.message}\n`);
    return 1;
  }
}

type Verb = (conf: NetConf, env: CniEnv, opts: EngineOptions) => CniResult | undefined;

const VERBS: Record<Exclude<CniCommand, 'VERSION'>, Verb> = { ADD: add, DEL: del, CHECK: check, STATUS: status, GC: gc };

/**
 * The state dir and policy file are the node's: OCI_NETDEV_STATE_DIR and OCI_NETDEV_POLICY in the
 * plugin's environment (the runtime's, or a wrapper root installed), else the defaults. A network
 * config may be written by someone else (a Multus NetworkAttachmentDefinition): its `stateDir` and
 * `policy` must name the same paths, or it could escape every claim and policy.
 */
function engineOptions(conf: NetConf, io: PluginIo): EngineOptions {
  const stateDir = io.env.OCI_NETDEV_STATE_DIR || DEFAULT_STATE_DIR;
  const policyFile = io.env.OCI_NETDEV_POLICY || undefined;
  requireNodePath('stateDir', 'state dir', conf.stateDir, stateDir, 'OCI_NETDEV_STATE_DIR');
  requireNodePath('policy', 'policy', conf.policyFile, policyFile ?? DEFAULT_POLICY_FILE, 'OCI_NETDEV_POLICY');
  return {
    stateDir,
    ...(policyFile !== undefined ? { policyFile } : {}),
    warn: (m) => io.stderr(`oci-netdev: warning: ${m}\n`),
    info: (m) => io.stderr(`oci-netdev: ${m}\n`),
  };
}

function requireNodePath(key: string, what: string, given: string | undefined, node: string, variable: string): void {
  if (given === undefined || path.resolve(given) === path.resolve(node)) return;
  throw new CniError(
    CniCode.invalidConfig,
    `network config: ${key}: only the node chooses its ${what} (${variable} in the plugin's environment, else the default), ` +
      `not a network config: got ${JSON.stringify(given)}, the node's is ${JSON.stringify(node)}`,
  );
}

/** Engine and config errors as CNI errors: bad config 7, a device another container holds 11, the rest ours (100). */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof DeviceBusyError) return new CniError(CniCode.tryAgainLater, err.message);
  if (err instanceof ConfigError) return new CniError(CniCode.invalidConfig, err.message);
  if (err instanceof NetdevError) return new CniError(CniCode.engine, err.message);
  return new CniError(CniCode.internal, err instanceof Error ? err.message : String(err));
}

function ipamArgs(env: CniEnv, command: CniCommand, netns = env.netns) {
  return {
    command, containerId: env.containerId, ifname: env.ifname, path: env.path,
    ...(netns !== undefined ? { netns } : {}),
    ...(env.args.length ? { args: env.args.map(([k, v]) => `${k}=${v}`).join(';') } : {}),
  };
}

/** Runs the IPAM plugin on the config as received (execDelegate's version fallback included). */
function runIpam(conf: NetConf, env: CniEnv, command: 'ADD' | 'DEL' | 'CHECK'): unknown {
  return execDelegate(conf.ipamType!, conf.raw, conf.cniVersion, ipamArgs(env, command));
}

/** CNI_ARGS MAC= (a MAC the runtime asks for) over the config's `mac`; runtimeConfig.mac over both. */
function macOf(conf: NetConf, env: CniEnv): string | undefined {
  const runtime = (conf.raw.runtimeConfig as { mac?: unknown } | undefined)?.mac;
  if (runtime !== undefined) return conf.mac;
  const fromArgs = env.args.find(([k]) => k === 'MAC')?.[1];
  if (fromArgs === undefined) return conf.mac;
  if (!isUnicastMac(fromArgs)) {
    throw new CniError(CniCode.invalidEnvironment, `CNI_ARGS: MAC ${JSON.stringify(fromArgs)} is not a unicast MAC address`);
  }
  return fromArgs.toLowerCase();
}

/** The keys CNI_ARGS may hold; others need IgnoreUnknown=true, as in libcni's argument loader. */
function checkArgs(env: CniEnv): void {
  const ignore = env.args.some(([k, v]) => k === 'IgnoreUnknown' && ['1', 'true', 'True'].includes(v));
  const unknown = env.args.find(([k]) => k !== 'MAC' && k !== 'IgnoreUnknown');
  if (unknown && !ignore) {
    throw new CniError(CniCode.unsupportedField, `CNI_ARGS: unknown key ${unknown[0]}=${unknown[1]} (give IgnoreUnknown=true to ignore it)`);
  }
}

/** IPAM's routes as the engine's: a route without gw goes through the gateway of its family, as libcni's ConfigureIface does. */
function routesOf(ipam: CniResult): { dst: string; gw?: string }[] {
  const gatewayOf = (dst: string) => ipam.ips?.find((ip) => ip.address.includes(':') === dst.includes(':') && ip.gateway)?.gateway;
  return (ipam.routes ?? []).map((r: CniRoute) => {
    const gw = r.gw ?? gatewayOf(r.dst);
    return { dst: r.dst, ...(gw !== undefined ? { gw } : {}) };
  });
}

/** The one device the config asks for, as the engine's spec, with IPAM's addresses and routes. */
function deviceSpec(conf: NetConf, env: CniEnv, ipam: CniResult | undefined): DeviceSpec {
  const entry: Record<string, unknown> = { type: conf.kind, name: env.ifname };
  let key = env.ifname;
  if (conf.kind === 'host') {
    if (conf.pick!.by === 'device') key = conf.pick!.value;
    else entry[conf.pick!.by] = conf.pick!.value;
  } else if (conf.kind === 'veth') {
    key = conf.hostName ?? defaultHostName(env.containerId, env.ifname);
  } else {
    entry.master = conf.master;
    entry.mode = conf.mode;
  }
  if (conf.mtu !== undefined) entry.mtu = conf.mtu;
  const mac = macOf(conf, env);
  if (mac !== undefined) entry.mac = mac;
  const addresses = (ipam?.ips ?? []).map((ip) => ip.address);
  if (addresses.length && conf.kind !== 'host') entry.addresses = addresses;
  const routes = ipam ? routesOf(ipam) : [];
  if (routes.length) entry.routes = routes;
  const [spec] = parseNetDevices({ [key]: entry }, 'cni');
  // Host entries take no addresses in config.json; here they are IPAM's, added to the device's own.
  if (addresses.length && conf.kind === 'host') spec.addresses = addresses;
  return spec;
}

/**
 * Who the attachment is for, and what `oci-netdev gc` needs to release its IPAM reservation when
 * the runtime never sends DEL: the IPAM plugin, the config it gets (version, name, ipam section)
 * and CNI_PATH.
 */
function originOf(conf: NetConf, env: CniEnv): JournalOrigin {
  const ipam = conf.ipamType === undefined ? {} : {
    ipam: { plugin: conf.ipamType, config: { cniVersion: conf.cniVersion, name: conf.name, ipam: conf.raw.ipam }, path: env.path },
  };
  return { door: 'cni', network: conf.name, containerId: env.containerId, ifname: env.ifname, ...ipam };
}

function add(conf: NetConf, env: CniEnv, opts: EngineOptions): CniResult {
  checkArgs(env);
  deviceSpec(conf, env, undefined); // a bad config fails before IPAM reserves anything
  // The capability args and CNI_ARGS come from whoever asked for the pod, the config maybe from a non-root writer.
  const runtimeConfig = conf.raw.runtimeConfig;
  checkCniArguments(conf.name, 'cni', typeof runtimeConfig === 'object' && runtimeConfig !== null ? runtimeConfig as Record<string, unknown> : {}, env.args, policyOf(opts));
  try {
    checkContainerNetns(env.netns!, opts);
  } catch (err) {
    if (!(err instanceof NetdevError)) throw err;
    throw new CniError(CniCode.invalidEnvironment, `CNI_NETNS: ${err.message}`);
  }
  const id = cniAttachmentId(conf.name, env.containerId, env.ifname);
  if (attachmentOf(id, opts)) {
    throw new CniError(CniCode.engine, `container ${env.containerId} already has ${env.ifname} attached on network ${conf.name}; DEL it first`);
  }
  let ipam: CniResult | undefined;
  if (conf.ipamType !== undefined) {
    ipam = parseResult(runIpam(conf, env, 'ADD'));
    if (!ipam.ips?.length) {
      releaseIpam(conf, env, opts);
      throw new CniError(CniCode.delegate, `${conf.ipamType}: IPAM returned no IP addresses`);
    }
  }
  let seen: StatusDevice;
  try {
    [seen] = attachDevices({ id, netnsPath: env.netns!, origin: originOf(conf, env) }, [deviceSpec(conf, env, ipam)], opts);
  } catch (err) {
    if (ipam) releaseIpam(conf, env, opts);
    throw err;
  }
  const prev = conf.prevResult;
  const interfaces = [...(prev?.interfaces ?? [])];
  const index = interfaces.length;
  interfaces.push({
    name: seen.containerName ?? env.ifname,
    ...(seen.mac ? { mac: seen.mac } : {}),
    ...(seen.mtu ? { mtu: seen.mtu } : {}),
    sandbox: env.netns!,
  });
  const ips = [...(prev?.ips ?? []), ...(ipam?.ips ?? []).map((ip) => ({ ...ip, interface: index }))];
  const routes = [...(prev?.routes ?? []), ...(ipam?.routes ?? [])];
  const dns = ipam?.dns ?? prev?.dns;
  return {
    cniVersion: conf.cniVersion,
    interfaces,
    ...(ips.length ? { ips } : {}),
    ...(routes.length ? { routes } : {}),
    ...(dns ? { dns } : {}),
  };
}

/** IPAM DEL after a failed ADD: its failure is logged, the ADD's error is what the runtime needs. */
function releaseIpam(conf: NetConf, env: CniEnv, opts: EngineOptions): void {
  try {
    runIpam(conf, env, 'DEL');
  } catch (err) {
    opts.warn(`releasing the IPAM reservation failed: ${(err as Error).message}`);
  }
}

/**
 * Best effort and idempotent: the device comes home as at poststop if there is an attachment
 * (whether or not the netns path or the device still exist in the container), then IPAM
 * releases. A restore that fails keeps its journal for `oci-netdev gc` and is reported on stderr,
 * so that the chain's other DELs still run; one refused because the plugin runs outside the
 * host's namespace fails the DEL and changes nothing.
 */
function del(conf: NetConf, env: CniEnv, opts: EngineOptions): undefined {
  const id = cniAttachmentId(conf.name, env.containerId, env.ifname);
  try {
    detachAttachment(id, opts);
  } catch (err) {
    // From a namespace that is not the host's: nothing changes, IPAM's reservation included.
    if (!(err instanceof NetdevError) || err instanceof HostNamespaceError) throw err;
    opts.warn(`${err.message}`);
  }
  if (conf.ipamType !== undefined) runIpam(conf, env, 'DEL');
  return undefined;
}

function check(conf: NetConf, env: CniEnv, opts: EngineOptions): undefined {
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CniCode.invalidConfig, 'network config: prevResult: required for CHECK');
  const found = inspectAttachment(cniAttachmentId(conf.name, env.containerId, env.ifname), opts);
  if (!found) throw new CniError(CniCode.engine, `container ${env.containerId} has no ${env.ifname} attached on network ${conf.name}`);
  const fail = (what: string) => new CniError(CniCode.engine, `CHECK ${env.ifname} on network ${conf.name}: ${what}`);
  if (found.journal.netnsPath !== env.netns || !found.status.alive) throw fail(`the namespace ${env.netns} is not the one attached at ADD`);
  const dev = found.status.devices[0];
  // A device nothing proves (a tap) is there as far as anything can tell; it matters at restore.
  if (dev.state !== 'in' && dev.state !== 'unproven') throw fail(`the device is ${dev.state}, not in the container`);
  if (dev.containerName !== env.ifname) throw fail(`the device is called ${dev.containerName ?? '?'} in the container`);
  const index = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifname && i.sandbox === env.netns);
  if (index < 0) throw fail('prevResult lists no such interface in this sandbox');
  const itf = prev.interfaces![index];
  if (itf.mac && itf.mac.toLowerCase() !== dev.mac) throw fail(`MAC is ${dev.mac ?? '?'}, prevResult says ${itf.mac}`);
  if (itf.mtu && itf.mtu !== dev.mtu) throw fail(`MTU is ${dev.mtu ?? '?'}, prevResult says ${itf.mtu}`);
  for (const ip of (prev.ips ?? []).filter((i) => i.interface === index)) {
    if (!dev.addresses?.includes(ip.address)) throw fail(`address ${ip.address} of prevResult is missing`);
  }
  if (conf.ipamType !== undefined) runIpam(conf, env, 'CHECK');
  return undefined;
}

/** Ready for ADD: the policy reads, and the IPAM plugin the config names is there. */
function status(conf: NetConf, env: CniEnv, opts: EngineOptions): undefined {
  try {
    policyOf(opts);
  } catch (err) {
    throw new CniError(CniCode.notAvailable, (err as Error).message);
  }
  if (conf.ipamType !== undefined) findPlugin(conf.ipamType, env.path);
  return undefined;
}

/**
 * DEL, IPAM included, for every attachment of this network the runtime no longer lists; then GC of
 * the IPAM plugin with the same valid attachments, when it speaks 1.1.0 (an older one knows no GC:
 * the DELs are what free its leases).
 */
function gc(conf: NetConf, env: CniEnv, opts: EngineOptions): undefined {
  const valid = new Set((conf.validAttachments ?? []).map((a) => `${a.containerID}\0${a.ifname}`));
  const failed: string[] = [];
  for (const j of attachments(opts)) {
    const o = j.origin;
    if (o?.door !== 'cni' || o.network !== conf.name || valid.has(`${o.containerId}\0${o.ifname}`)) continue;
    try {
      del(conf, { ...env, containerId: o.containerId, ifname: o.ifname, netns: undefined }, opts);
    } catch (err) {
      failed.push(`${o.containerId} ${o.ifname}: ${(err as Error).message}`);
    }
  }
  if (failed.length) throw new CniError(CniCode.engine, `GC: ${failed.join('; ')}`);
  if (conf.ipamType !== undefined) {
    const ipam = findPlugin(conf.ipamType, env.path);
    const args = { command: 'GC' as const, path: env.path };
    if (pluginVersions(ipam, conf.cniVersion, args).includes(CURRENT_VERSION)) execPlugin(ipam, conf.raw, args);
  }
  return undefined;
}
