// Wiring the hooks: into a bundle's config.json (runc, crun) or as a hooks.d file (podman,
// CRI-O). The OCI front door's own code, above the engine.
//
// Entries name the executable that runs this command: the single executable (dist/oci-netdev as
// installed), or the Node launcher bin/oci-netdev in development. Runtimes start a hook with the
// entry's `env` and nothing else, so the launcher's `#!/usr/bin/env node` would search only the C
// library's default PATH (/bin:/usr/bin) and miss a node in /usr/local/bin or an nvm folder (exit
// 127). An entry written by the launcher therefore carries a PATH that starts with the folder of
// the node running this command; the single executable needs no node. We keep bin/oci-netdev as
// the hook's path rather than naming the node binary there: the entry stays recognisable as ours
// (inject finds and replaces it), its args keep their form, and the launcher stays the one place
// that starts us.

import * as fs from 'fs';
import * as path from 'path';
import { ConfigError } from '../errors';
import { ANNOTATION, MAX_CONFIG_BYTES } from '../config';
import { readRegularFile, replaceFile } from '../fsio/files';
import { parseJsonText } from '../schema/json';

/** After the node folder, the usual system folders, for anything else a hook may start. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Seconds the runtime waits beyond our own bound (alarm(2)): its clock also counts node's start,
 * and our own bound ends the hook the same way each time, whatever the runtime does on timeout.
 */
const RUNTIME_TIMEOUT_MARGIN_S = 5;

/** Whether Node runs this process (the launcher), not the single executable that Bun compiled. */
const runByNode = process.versions.bun === undefined;

/** One OCI hook entry (runtime-spec config.md "POSIX-platform Hooks"). */
export interface HookEntry {
  path: string;
  args: string[];
  env: string[];
  /** Seconds; the runtime kills the hook after it. */
  timeout: number;
}

export interface HookOptions {
  /** The oci-netdev executable (the single executable, or bin/oci-netdev; absolute), as the entries must name it. */
  path: string;
  /** Options the hook is run with, before its command (--state-dir, --policy, --log-file). */
  args: string[];
  /** The watchdog's bound (OCI_NETDEV_TIMEOUT or its default). */
  timeoutSeconds: number;
  /** Whether OCI_NETDEV_TIMEOUT was given: then the hook's own watchdog must hear it too. */
  timeoutGiven: boolean;
}

/** The entry that runs `oci-netdev COMMAND` with `opts`, startable from an empty environment. */
export function hookEntry(command: string, opts: HookOptions): HookEntry {
  return {
    path: opts.path,
    args: ['oci-netdev', ...opts.args, command],
    env: [
      `PATH=${runByNode ? `${path.dirname(process.execPath)}:` : ''}${SYSTEM_PATH}`,
      ...(opts.timeoutGiven ? [`OCI_NETDEV_TIMEOUT=${opts.timeoutSeconds}`] : []),
    ],
    timeout: Math.ceil(opts.timeoutSeconds) + RUNTIME_TIMEOUT_MARGIN_S,
  };
}

/**
 * Adds our createRuntime and poststop hooks to BUNDLE/config.json; running it again changes
 * nothing. The file keeps its mode and owner.
 */
export function injectHooks(bundle: string, opts: HookOptions): { added: number } {
  const file = path.join(bundle, 'config.json');
  let config: { hooks?: Record<string, Partial<HookEntry>[]> };
  const text = readRegularFile(file, { where: file, maxBytes: MAX_CONFIG_BYTES, follow: true });
  const st = fs.statSync(file);
  try {
    config = parseJsonText(text.toString('utf8')) as typeof config;
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ConfigError(`${file} is not a JSON object`);
  config.hooks ??= {};
  let added = 0;
  for (const [stage, command] of [['createRuntime', 'create-runtime'], ['poststop', 'poststop']] as const) {
    const list: Partial<HookEntry>[] = (config.hooks[stage] ??= []);
    const mine = list.findIndex((h) => h.path === opts.path && h.args?.at(-1) === command);
    const entry = hookEntry(command, opts);
    if (mine === -1) {
      list.push(entry);
      added++;
    } else {
      list[mine] = entry;
    }
  }
  // The bundle may be someone else's: never write through a link planted at the temp name. The
  // file keeps its mode and owner.
  replaceFile(file, JSON.stringify(config, null, 2) + '\n', st.mode & 0o7777, { uid: st.uid, gid: st.gid });
  return { added };
}

/** Whether a hook entry runs oci-netdev's `command` (or `hook`, which serves both stages), whatever its options. */
function runsOurs(h: unknown, command: string): boolean {
  if (typeof h !== 'object' || h === null) return false;
  const { path: p, args } = h as Partial<HookEntry>;
  const ours = (typeof p === 'string' && path.basename(p) === 'oci-netdev') || (Array.isArray(args) && args[0] === 'oci-netdev');
  return ours && Array.isArray(args) && (args.includes(command) || args.includes('hook'));
}

/**
 * A warning when config.json declares linux.netDevices but lacks our createRuntime or poststop
 * hook: a runtime that does not implement netDevices (runc 1.1.5, crun 1.8) ignores them without
 * a word, and one that does cannot restore them as poststop does.
 */
export function missingHooksWarning(file: string): string | undefined {
  let config: { linux?: { netDevices?: unknown }; hooks?: Record<string, unknown> };
  try {
    config = JSON.parse(readRegularFile(file, { where: file, maxBytes: MAX_CONFIG_BYTES, follow: true }).toString('utf8')) as typeof config;
  } catch {
    return undefined; // validate itself names what is wrong with the file
  }
  const devices = config.linux?.netDevices;
  if (typeof devices !== 'object' || devices === null || !Object.keys(devices).length) return undefined;
  const missing = ([['createRuntime', 'create-runtime'], ['poststop', 'poststop']] as const).filter(([stage, command]) => {
    const list = config.hooks?.[stage];
    return !(Array.isArray(list) && list.some((h) => runsOurs(h, command)));
  }).map(([stage]) => stage);
  if (!missing.length) return undefined;
  return `${file}: linux.netDevices is declared but there is no oci-netdev ${missing.join(' or ')} hook: a runtime that does not ` +
    'implement netDevices (runc before 1.4, crun before 1.22) ignores them without a word; add the hooks with oci-netdev inject BUNDLE';
}

/** A hooks.d file (version 1.0.0) that runs `oci-netdev hook` at both stages when the annotation is set. */
export function hooksDConfig(opts: HookOptions): object {
  return {
    version: '1.0.0',
    hook: hookEntry('hook', opts),
    when: { annotations: { [`^${ANNOTATION.replace(/\./g, '\\.')}$`]: '.*' } },
    stages: ['createRuntime', 'poststop'],
  };
}
