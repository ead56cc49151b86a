// Shared by the tests of created devices (veth, macvlan) and the extension fields: a simulated
// host with a container netns, bundles that only hold config.json, hook runs with the request
// trace, and what iproute2 shows of a device in detail.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY_UNDER_TEST, makeStateDir, OCI_NETDEV, runHook } from './hook';
import { DEV_PREFIX } from './names';
import { inSimHost, netnsPath, Sandbox, sh, ShResult, shOk, Teardownable } from './sandbox';
import type { OciState } from '../../src/config/types';

/** The netlink message types the trace shows (`type=N`). */
export const RTM = { NEWLINK: 16, DELLINK: 17, GETLINK: 18, NEWADDR: 20, DELADDR: 21, GETADDR: 22, NEWROUTE: 24 } as const;

export interface Rig {
  sb: Sandbox;
  /** The simulated host: the hook runs here. */
  simhost: string;
  /** The container's netns, named so that tests can look inside. */
  ctr: string;
  stateDir: string;
  /**
   * The hooks run as the engine called in this test process with the simulated host as its host
   * namespace (EngineOptions.hostNetns), not as a process started under nsenter (host.ts hook).
   * Never when a binary is under test (OCI_NETDEV_TEST_BIN): then that binary runs them.
   */
  inProcess: boolean;
}

export function makeRig(t: Teardownable, opts: { inProcess?: boolean } = {}): Rig {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const ctr = sb.createNetns('ctr');
  return { sb, simhost, ctr, stateDir: makeStateDir(sb), inProcess: (opts.inProcess ?? false) && BINARY_UNDER_TEST === undefined };
}

/** `ip -n <container> ARGS`: what a process with CAP_NET_ADMIN in the container can do. */
export const inCtr = (rig: Rig, args: string[]): string => shOk('ip', ['-n', rig.ctr, ...args]);

export interface ConfigOptions {
  netDevices?: Record<string, object>;
  /** config.json annotations. */
  annotations?: Record<string, string>;
}

/** A bundle holding only config.json, joining the netns `ctr` by path. */
export function configBundle(sb: Sandbox, ctr: string, opts: ConfigOptions): string {
  const dir = sb.tempDir('bundle');
  const config = {
    ociVersion: '1.0.2-dev',
    ...(opts.annotations && { annotations: opts.annotations }),
    linux: {
      namespaces: [{ type: 'network', path: netnsPath(ctr) }],
      ...(opts.netDevices && { netDevices: opts.netDevices }),
    },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}


export function ociState(id: string, bundle: string, status: 'creating' | 'created' | 'stopped', extra: Partial<OciState> = {}): OciState {
  return { ociVersion: '1.0.2', id, status, bundle, ...extra };
}

/** Runs `oci-netdev <command>` in the simulated host with OCI_NETDEV_TRACE=1 (and `env`). */
export function traced(rig: Rig, command: string, state: object, env: Record<string, string> = {}): ShResult {
  return runHook(rig.simhost, command, state, { stateDir: rig.stateDir, env: { OCI_NETDEV_TRACE: '1', ...env } });
}

/**
 * A policy file (spec/policy.schema.json) that lets the annotation use the test devices (names in
 * the test family, DEV_PREFIX*), in every macvlan mode, and nothing else. Pass its path as
 * OCI_NETDEV_POLICY or --policy.
 */
export function annotationPolicy(sb: Sandbox): string {
  const file = join(sb.tempDir('policy'), 'policy.json');
  // Written 0644 whatever the umask: the policy must not be group or world writable.
  writeFileSync(file, JSON.stringify({ annotation: { allowDevices: [`${DEV_PREFIX}*`], allowMasters: [`${DEV_PREFIX}*`], allowModes: ['*'] } }), { mode: 0o644 });
  return file;
}

/** The trace lines of requests of one netlink type. */
export function requests(stderr: string, type: number): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('trace: ') && l.includes(` type=${type} `));
}

/** stderr without the trace: what a user sees. */
export function userStderr(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l && !l.startsWith('trace: '))
    .join('\n');
}

/** ping once from the netns `ns` (nsenter --net only); busybox's ping, since iputils is not installed. */
export function ping(ns: string, address: string): number | null {
  return sh(...inSimHost(ns, ['busybox', 'ping', '-c', '1', '-W', '3', address])).status;
}

/** The routes of `dev` in the main table of `ns` as `ip -j route` shows them, per family, without the kernel's own. */
export function configRoutes(ns: string, family: '-4' | '-6', dev: string): Record<string, unknown>[] {
  const all = JSON.parse(shOk(...inSimHost(ns, ['ip', '-j', family, 'route', 'show', 'dev', dev]))) as Record<string, unknown>[];
  return all.filter((r) => r.protocol !== 'kernel');
}

/** `oci-netdev <args>` in the simulated host with the rig's state dir (status, gc, ...). */
export function cli(rig: Rig, args: string[]): ShResult {
  return sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', rig.stateDir, ...args]));
}

export interface IpDetail {
  ifname: string;
  ifindex: number;
  mtu: number;
  address: string;
  flags: string[];
  group: string;
  link_netnsid?: number;
  /** The bridge or bond the device is a port of. */
  master?: string;
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
  addr_info: { family: string; local: string; prefixlen: number; scope: string; nodad?: boolean; tentative?: boolean }[];
}

/** Every device of `ns` as `ip -j -d addr` shows it, by name. */
export function ipDetails(ns: string): Record<string, IpDetail> {
  const list = JSON.parse(shOk('ip', ['-n', ns, '-j', '-d', 'addr', 'show'])) as IpDetail[];
  return Object.fromEntries(list.map((l) => [l.ifname, l]));
}

/** Devices of `ns` other than lo. */
export function nonLoopback(ns: string): string[] {
  return Object.keys(ipDetails(ns)).filter((n) => n !== 'lo').sort();
}

/** Devices in a link group other than the default one, in `ns`. */
export function groupedDevices(ns: string): string[] {
  return Object.values(ipDetails(ns))
    .filter((l) => l.group !== 'default')
    .map((l) => `${l.ifname} (group ${l.group})`);
}

/** What a state dir holds besides its locks, its release mark and its host namespace record, [] when it does not exist: the containers' folders. */
export function stateEntries(stateDir: string): string[] {
  return existsSync(stateDir) ? readdirSync(stateDir).filter((n) => !n.endsWith('.lock') && n !== 'released' && n !== 'host-netns') : [];
}

export interface SeenDevice {
  name: string;
  flags: string[];
  mtu: number;
  mac: string | null;
  addresses: string[];
}

/** Parses busybox `ip addr` output (as printed inside the container) into devices by name. */
export function parseIpAddr(text: string): Record<string, SeenDevice> {
  const out: Record<string, SeenDevice> = {};
  let cur: SeenDevice | undefined;
  for (const line of text.split('\n')) {
    const head = /^\d+: ([^:@\s]+)(?:@\S+)?: <([^>]*)> mtu (\d+)/.exec(line);
    if (head) {
      cur = { name: head[1], flags: head[2].split(','), mtu: Number(head[3]), mac: null, addresses: [] };
      out[cur.name] = cur;
      continue;
    }
    if (!cur) continue;
    const ether = /^\s+link\/ether (\S+)/.exec(line);
    if (ether) cur.mac = ether[1];
    const inet = /^\s+inet6? (\S+) .*scope global/.exec(line);
    if (inet) cur.addresses.push(inet[1]);
  }
  return out;
}
