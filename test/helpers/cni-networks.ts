// CNI test rigs: a per-test NETCONFPATH, libcni cache and host-local data dir, conflists written
// there, and a recording test plugin (a node script) that logs every call it gets.
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEBIAN_CNI } from './cni';
import { Sandbox } from './sandbox';

export interface CniDirs {
  confDir: string;
  pluginDir: string;
  cacheDir: string;
  ipamDir: string;
  /** The environment that points oci-netdev at these dirs (hooks and `oci-netdev cni`). */
  env: Record<string, string>;
}

export function cniDirs(sb: Sandbox): CniDirs {
  const root = sb.tempDir('cni');
  const confDir = join(root, 'net.d');
  const pluginDir = join(root, 'bin');
  const cacheDir = join(root, 'cache');
  const ipamDir = join(root, 'ipam');
  for (const d of [confDir, pluginDir]) mkdirSync(d);
  return {
    confDir, pluginDir, cacheDir, ipamDir,
    env: { NETCONFPATH: confDir, CNI_PATH: `${pluginDir}:${DEBIAN_CNI}`, OCI_NETDEV_CNI_CACHE_DIR: cacheDir },
  };
}

export function writeConflist(dirs: CniDirs, name: string, plugins: object[], cniVersion = '1.0.0'): void {
  writeFileSync(join(dirs.confDir, `10-${name}.conflist`), JSON.stringify({ cniVersion, name, plugins }, null, 2));
}

/** A bridge + host-local network on `bridge` with `subnet`, data kept in the rig's ipam dir, plus `more` plugins. */
export function bridgeNetwork(dirs: CniDirs, name: string, bridge: string, subnet: string, more: object[] = []): void {
  writeConflist(dirs, name, [
    {
      type: 'bridge', bridge, isGateway: true, ipMasq: false,
      ipam: { type: 'host-local', dataDir: dirs.ipamDir, ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
    },
    ...more,
  ]);
}

/**
 * The recording plugin: appends {type, command, env, conf} to conf.record for each call, and to
 * calls.jsonl in its own folder for every call, VERSION included (whose config names no record;
 * `type` is then the name it was run as). ADD passes prevResult on with an interface "if-TYPE" added (a first plugin starts an empty 1.0.0 result);
 * conf.fail = "ADD"/"DEL" makes that command fail with code 111; conf.sleepMs delays ADD (its
 * pid goes to conf.record + ".pid"). VERSION answers the versions writeRecorders was given, else
 * 0.3.1 to 1.1.0.
 */
const RECORDER = `#!/usr/bin/env node
const fs = require('fs');
const conf = JSON.parse(fs.readFileSync(0, 'utf8') || '{}');
const cmd = process.env.CNI_COMMAND;
const env = {};
for (const k of ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']) env[k] = process.env[k];
const line = JSON.stringify({ type: conf.type || require('path').basename(process.argv[1]), command: cmd, env, conf }) + '\\n';
fs.appendFileSync(require('path').join(require('path').dirname(process.argv[1]), 'calls.jsonl'), line);
if (conf.record) fs.appendFileSync(conf.record, line);
if (cmd === 'VERSION') {
  let versions = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'];
  try { versions = JSON.parse(fs.readFileSync(process.argv[1] + '.versions', 'utf8')); } catch {}
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, supportedVersions: versions }));
  process.exit(0);
}
if (conf.fail === cmd) {
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 111, msg: conf.type + ' refuses ' + cmd, details: 'on purpose' }));
  process.exit(1);
}
if (cmd === 'ADD') {
  if (conf.sleepMs) {
    fs.writeFileSync(conf.record + '.pid', String(process.pid));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, conf.sleepMs);
  }
  const prev = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [] };
  const out = { ...prev, cniVersion: conf.cniVersion, interfaces: [...(prev.interfaces || []), { name: 'if-' + conf.type }] };
  process.stdout.write(JSON.stringify(out));
}
`;

/** Recording plugins named `types` in the rig's plugin dir; `versions`: what their VERSION answers. */
export function writeRecorders(dirs: CniDirs, types: string[], versions?: string[]): void {
  const script = join(dirs.pluginDir, 'recorder');
  if (!existsSync(script)) {
    writeFileSync(script, RECORDER);
    chmodSync(script, 0o755);
  }
  for (const t of types) {
    symlinkSync('recorder', join(dirs.pluginDir, t));
    if (versions) writeFileSync(join(dirs.pluginDir, `${t}.versions`), JSON.stringify(versions));
  }
}

export interface Record_ {
  type: string;
  command: string;
  env: Record<string, string | undefined>;
  conf: Record<string, unknown> & { prevResult?: { interfaces?: { name: string }[] }; runtimeConfig?: Record<string, unknown> };
}

/** Every call the rig's recording plugins got, VERSION included. */
export const allCalls = (dirs: CniDirs): Record_[] => readRecords(join(dirs.pluginDir, 'calls.jsonl'));

export function readRecords(file: string): Record_[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record_);
}

/** The addresses host-local holds in `network` (its data dir's files named by address). */
export function leases(dirs: CniDirs, network: string): string[] {
  const dir = join(dirs.ipamDir, network);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /^[0-9a-f.:]+$/.test(f) && (f.includes('.') || f.includes(':'))).sort();
}

/** Entries of libcni's result cache. */
export function cacheEntries(dirs: CniDirs): string[] {
  const dir = join(dirs.cacheDir, 'results');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}
