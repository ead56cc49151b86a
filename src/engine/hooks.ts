// Wiring the hooks: into a bundle's config.json (runc, crun) or as a hooks.d
// file (podman, CRI-O).

import * as path from 'path';
import { ConfigError } from '../errors';
import { ANNOTATION, MAX_CONFIG_BYTES } from '../config';
import { readRegularFile, replaceFile } from '../state/files';

/** The installed executable, as hook entries must name it (absolute). */
export const BIN_PATH = path.resolve(__dirname, '../../../bin/oci-netdev');

export interface HookEntry {
  path: string;
  args?: string[];
  timeout?: number;
}

const hookArgs = (command: string, extra: string[]) => ['oci-netdev', ...extra, command];

/** The OCI hook entry that runs `command` with `extraArgs` (options) before it; CDI specs use it too. */
export function hookEntry(command: string, extraArgs: string[] = []): HookEntry {
  return { path: BIN_PATH, args: hookArgs(command, extraArgs) };
}

/** Adds our createRuntime and poststop hooks to BUNDLE/config.json; running it again changes nothing. */
export function injectHooks(bundle: string, extraArgs: string[] = []): { added: number } {
  const file = path.join(bundle, 'config.json');
  let config: { hooks?: Record<string, HookEntry[]> };
  const text = readRegularFile(file, { where: file, maxBytes: MAX_CONFIG_BYTES, follow: true });
  try {
    config = JSON.parse(text.toString('utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ConfigError(`${file} is not a JSON object`);
  config.hooks ??= {};
  let added = 0;
  for (const [stage, command] of [['createRuntime', 'create-runtime'], ['poststop', 'poststop']] as const) {
    const list: HookEntry[] = (config.hooks[stage] ??= []);
    const mine = list.findIndex((h: HookEntry) => h.path === BIN_PATH && h.args?.at(-1) === command);
    const entry = hookEntry(command, extraArgs);
    if (mine === -1) {
      list.push(entry);
      added++;
    } else {
      list[mine] = entry;
    }
  }
  // The bundle may be someone else's: never write through a link planted at the temp name.
  replaceFile(file, JSON.stringify(config, null, 2) + '\n', 0o644);
  return { added };
}

/** A hooks.d file (version 1.0.0) that runs `oci-netdev hook` at both stages when the annotation is set. */
export function hooksDConfig(extraArgs: string[] = []): object {
  return {
    version: '1.0.0',
    hook: { path: BIN_PATH, args: hookArgs('hook', extraArgs) },
    when: { annotations: { [`^${ANNOTATION.replace(/\./g, '\\.')}$`]: '.*' } },
    stages: ['createRuntime', 'poststop'],
  };
}
