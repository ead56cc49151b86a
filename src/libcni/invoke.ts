// Running a CNI plugin as libcni's invoke package does: found by its type in CNI_PATH, the
// CNI_* environment on top of ours, the config on stdin, a result or an error on stdout.

import type * as ChildProcess from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CniCode, CniError } from './spec';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

/** The plugin search path when CNI_PATH is unset: the usual install dir, then Debian's. */
export const DEFAULT_CNI_PATH = ['/opt/cni/bin', '/usr/lib/cni'];

/** A plugin that does not answer in this time is killed and its operation fails. */
const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;

export interface InvokeArgs {
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** CNI_ARGS, already joined as K=V;K=V. */
  args?: string;
  /** The directories CNI_PATH lists; the plugin finds its delegates there. */
  path: string[];
  timeoutMs?: number;
}

export function splitCniPath(value: string | undefined): string[] {
  const dirs = (value ?? '').split(':').filter(Boolean);
  return dirs.length ? dirs : DEFAULT_CNI_PATH;
}

/** The executable named `type` in the first directory of `path` that has one. */
export function findPlugin(type: string, path: string[]): string {
  if (!type || type.includes('/') || type === '.' || type === '..') {
    throw new CniError(CniCode.invalidConfig, `invalid plugin type ${JSON.stringify(type)}`);
  }
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(CniCode.notAvailable, `plugin ${type} not found in ${path.join(':')}`);
}

function cniEnvironment(a: InvokeArgs): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('CNI_')) delete env[k];
  env.CNI_COMMAND = a.command;
  env.CNI_PATH = a.path.join(':');
  if (a.containerId !== undefined) env.CNI_CONTAINERID = a.containerId;
  if (a.netns !== undefined) env.CNI_NETNS = a.netns;
  if (a.ifname !== undefined) env.CNI_IFNAME = a.ifname;
  if (a.args) env.CNI_ARGS = a.args;
  return env;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The plugin's error as a CniError with its own code; its stderr when stdout says nothing. */
function pluginError(plugin: string, stdout: string, stderr: string, status: number | null): CniError {
  try {
    const e: unknown = JSON.parse(stdout);
    if (isObject(e) && typeof e.code === 'number') {
      const msg = typeof e.msg === 'string' ? e.msg : '';
      const details = typeof e.details === 'string' && e.details ? e.details : undefined;
      return new CniError(e.code, `${plugin}: ${msg || 'failed'}`, details);
    }
  } catch {
    // not JSON: fall back to what it said on stderr
  }
  const said = (stderr.trim() || stdout.trim()).split('\n').pop() ?? '';
  return new CniError(CniCode.delegate, `${plugin}: exited with ${status ?? 'a signal'}${said ? `: ${said}` : ''}`);
}

/**
 * Runs the plugin at `pluginPath` and returns its stdout parsed as JSON (undefined when it printed
 * nothing, as DEL may). A non-zero exit, a timeout or unparsable output is a CniError.
 */
export function execPlugin(pluginPath: string, stdin: unknown, a: InvokeArgs): unknown {
  const name = pluginPath.split('/').pop() ?? pluginPath;
  const timeout = a.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
  // Required here: node:child_process costs every hook run to load, and only a plugin run needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('node:child_process') as typeof ChildProcess;
  const r = spawnSync(pluginPath, [], {
    input: JSON.stringify(stdin),
    env: cniEnvironment(a),
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
    maxBuffer: 16 << 20,
  });
  // EPIPE: the plugin answered without reading its stdin, which is its right.
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'EPIPE') {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') throw new CniError(CniCode.delegate, `${name}: ${a.command} did not finish within ${timeout} ms`);
    throw new CniError(CniCode.io, `${name}: cannot run ${pluginPath}: ${r.error.message}`);
  }
  if (r.status !== 0) throw pluginError(name, r.stdout, r.stderr, r.status);
  if (!r.stdout.trim()) return undefined;
  try {
    return JSON.parse(r.stdout) as unknown;
  } catch {
    throw new CniError(CniCode.decode, `${name}: ${a.command} printed output that is not JSON`);
  }
}

/** The versions a plugin supports, from its VERSION answer. */
export function pluginVersions(pluginPath: string, cniVersion: string, a: Omit<InvokeArgs, 'command'>): string[] {
  const out = execPlugin(pluginPath, { cniVersion }, { ...a, command: 'VERSION' });
  if (isObject(out) && Array.isArray(out.supportedVersions) && out.supportedVersions.every((v) => typeof v === 'string')) {
    return out.supportedVersions;
  }
  // A 0.1.0 plugin predates VERSION.
  return ['0.1.0'];
}
