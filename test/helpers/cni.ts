// A small CNI runtime for the tests, following libcni's semantics: each plugin of a list gets the
// list's cniVersion and name, ADD runs the list in order with the previous result as prevResult,
// DEL runs it in reverse with the final ADD result. Plugins run in the simulated host, found in a
// CNI_PATH whose first folder holds `oci-netdev` (a link to bin/oci-netdev), then Debian's
// /usr/lib/cni.
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OCI_NETDEV } from './hook';
import { uniqueId, uniqueName } from './names';
import { makeRig, Rig } from './netdevices';
import { inSimHost, netnsPath, Sandbox, sh } from './sandbox';

export const DEBIAN_CNI = '/usr/lib/cni';

export interface CniList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}

export interface CniRun {
  simhost: string;
  containerId: string;
  /** Unset: no CNI_NETNS (a DEL after the sandbox is gone). */
  netns?: string;
  ifname: string;
  /** CNI_PATH folders. */
  path: string[];
  args?: string;
}

export interface PluginOutcome {
  status: number | null;
  /** stdout parsed as JSON, when it is. */
  json: Record<string, unknown> | undefined;
  stdout: string;
  stderr: string;
}

/** A rig with a stand-in NIC (a veth end) on its simulated host, data dirs for host-local and tuning, and a CNI run for its container as eth0. */
export interface NicSetup {
  rig: Rig;
  nic: string;
  ipamDir: string;
  tuningDir: string;
  run: CniRun;
}

export function nicSetup(t: Test): NicSetup {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  return {
    rig, nic, ipamDir: rig.sb.tempDir('ipam'), tuningDir: rig.sb.tempDir('tuning'),
    run: { simhost: rig.simhost, containerId: uniqueId('ctr'), netns: netnsPath(rig.ctr), ifname: 'eth0', path: cniPath(rig.sb, rig.stateDir) },
  };
}

/** The addresses host-local holds for `network` under `dataDir` (its files other than its bookkeeping), sorted. */
export function reservations(dataDir: string, network: string): string[] {
  const dir = join(dataDir, network);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')).sort() : [];
}

/**
 * A CNI_PATH with oci-netdev first, then Debian's plugins. With `stateDir`, oci-netdev there is a
 * wrapper that sets OCI_NETDEV_STATE_DIR, as root would install it (a network config cannot choose
 * the state dir, and a runtime may run DEL without its environment); else a link to bin/oci-netdev.
 */
export function cniPath(sb: Sandbox, stateDir?: string): string[] {
  const dir = sb.tempDir('cnibin');
  const plugin = join(dir, 'oci-netdev');
  if (stateDir === undefined) symlinkSync(OCI_NETDEV, plugin);
  else writeFileSync(plugin, `#!/bin/sh\nOCI_NETDEV_STATE_DIR='${stateDir}' exec '${OCI_NETDEV}' "$@"\n`, { mode: 0o755 });
  return [dir, DEBIAN_CNI];
}

function pluginCommand(run: CniRun, command: string, type: string, extraEnv: Record<string, string>): { argv: [string, string[]]; env: Record<string, string> } {
  const dir = run.path.find((d) => sh('test', ['-x', join(d, type)]).status === 0);
  if (dir === undefined) throw new Error(`plugin ${type} not found in ${run.path.join(':')}`);
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: run.containerId,
    CNI_IFNAME: run.ifname,
    CNI_PATH: run.path.join(':'),
    CNI_NETNS: run.netns ?? '',
    CNI_ARGS: run.args ?? '',
    ...extraEnv,
  };
  return { argv: inSimHost(run.simhost, [join(dir, type)]), env };
}

function outcome(status: number | null, stdout: string, stderr: string): PluginOutcome {
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status, json, stdout, stderr };
}

/** Runs one plugin binary `type` with `command`, as libcni's invoke does; a string `conf` goes to stdin as it is. */
export function execPlugin(run: CniRun, command: string, type: string, conf: object | string, extraEnv: Record<string, string> = {}): PluginOutcome {
  const { argv, env } = pluginCommand(run, command, type, extraEnv);
  const r = sh(...argv, { input: typeof conf === 'string' ? conf : JSON.stringify(conf), env });
  return outcome(r.status, r.stdout, r.stderr);
}

/** execPlugin without waiting, for runs that race. */
export function startPlugin(run: CniRun, command: string, type: string, conf: object): Promise<PluginOutcome> {
  const { argv: [cmd, args], env } = pluginCommand(run, command, type, {});
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(JSON.stringify(conf));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve(outcome(status, stdout, stderr)));
  });
}

/** The config plugin `i` of the list receives. */
function pluginConf(list: CniList, i: number, prevResult?: unknown): Record<string, unknown> {
  return { ...list.plugins[i], cniVersion: list.cniVersion, name: list.name, ...(prevResult !== undefined ? { prevResult } : {}) };
}

export interface ChainOutcome {
  /** The final result, or the first failing plugin's outcome. */
  result?: Record<string, unknown>;
  failed?: { type: string; outcome: PluginOutcome };
}

/** ADD in order, each plugin with the previous result; stops at the first error. */
export function chainAdd(list: CniList, run: CniRun): ChainOutcome {
  let prev: Record<string, unknown> | undefined;
  for (let i = 0; i < list.plugins.length; i++) {
    const type = String(list.plugins[i].type);
    const out = execPlugin(run, 'ADD', type, pluginConf(list, i, prev));
    if (out.status !== 0) return { failed: { type, outcome: out } };
    prev = out.json;
  }
  return { result: prev };
}

/** CHECK in order, every plugin with the final result. */
export function chainCheck(list: CniList, run: CniRun, result: unknown): ChainOutcome {
  for (let i = 0; i < list.plugins.length; i++) {
    const type = String(list.plugins[i].type);
    const out = execPlugin(run, 'CHECK', type, pluginConf(list, i, result));
    if (out.status !== 0) return { failed: { type, outcome: out } };
  }
  return {};
}

/** DEL in reverse order, every plugin with the final ADD result (when there is one); stops at the first error. */
export function chainDel(list: CniList, run: CniRun, result?: unknown): ChainOutcome {
  for (let i = list.plugins.length - 1; i >= 0; i--) {
    const type = String(list.plugins[i].type);
    const out = execPlugin(run, 'DEL', type, pluginConf(list, i, result));
    if (out.status !== 0) return { failed: { type, outcome: out } };
  }
  return {};
}
