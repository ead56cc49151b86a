// `oci-netdev cdi generate`: a CDI spec for the host NICs that can be given to containers, written
// atomically (a temp file in the same folder, then rename) with mode 0644.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceFile } from '../fsio/files';
import { ConfigError } from '../errors';
import { compileGlob, deviceArgs, deviceArgSpecs } from '../config';
import type { DeviceArg } from '../config';
import { hostDevices } from '../engine/devices';
import type { HostDevice } from '../engine/devices';
import type { HookEntry } from '../oci/hooks';
import { buildCdiSpec, checkCdiVersion, isCdiDeviceName } from './spec';
import type { CdiSpec } from './spec';

export interface GenerateOptions {
  /** The spec file to write (absolute). */
  out: string;
  cdiVersion: string;
  /** --device arguments: extension fields for some of the NICs. */
  deviceTexts: string[];
  stateDir: string;
  policyFile?: string;
  /** --include and --exclude globs on NIC names: offered are those matching an include (when any) and no exclude. */
  filter: { include: string[]; exclude: string[] };
  /** The hook entry for an oci-netdev command, with the options that go into every hook. */
  hook: (command: string) => HookEntry;
}

export interface GenerateResult {
  spec: CdiSpec;
  /** Host devices left out, each with why. */
  skipped: HostDevice[];
}

/** Reads the host's devices, builds the spec and writes it; bad input changes nothing. */
export function generateCdi(o: GenerateOptions): GenerateResult {
  checkCdiVersion(o.cdiVersion);
  if (!path.isAbsolute(o.out)) throw new ConfigError(`--out: must be an absolute path (got ${JSON.stringify(o.out)})`, { field: '--out' });
  deviceArgSpecs(o.deviceTexts);
  const given = new Map(deviceArgs(o.deviceTexts).map((a) => [a.key, a]));
  const filteredOut = nameFilter(o.filter);
  const all = hostDevices(o);
  const offered: DeviceArg[] = [];
  const skipped: HostDevice[] = [];
  for (const d of all) {
    if (filteredOut(d.name) !== undefined) continue;
    const problem = d.refused ?? (isCdiDeviceName(d.name) ? undefined : 'its name is not a valid CDI device name');
    if (problem !== undefined) skipped.push({ name: d.name, refused: problem });
    else offered.push(given.get(d.name) ?? { key: d.name, entry: {} });
  }
  for (const [key, arg] of given) {
    const type = arg.entry.type ?? 'host';
    if (type !== 'host') throw new ConfigError(`--device ${key}: type must be host: cdi generate offers host devices only (got ${JSON.stringify(type)})`, { device: key, field: 'type' });
    if (!offered.some((d) => d.key === key)) {
      const why = filteredOut(key) ?? skipped.find((s) => s.name === key)?.refused ?? 'it does not exist in this network namespace';
      throw new ConfigError(`--device ${key}: cannot be offered: ${why}`, { device: key });
    }
  }
  if (offered.length === 0) throw new ConfigError('no host device can be offered; nothing written');
  const spec = buildCdiSpec(offered, o.cdiVersion, o.hook);
  writeAtomically(o.out, JSON.stringify(spec, null, 2) + '\n');
  return { spec, skipped };
}

/** Why the filter leaves a NIC name out, or undefined when it keeps it. */
function nameFilter(filter: GenerateOptions['filter']): (name: string) => string | undefined {
  const compile = (flag: string, pattern: string) => {
    try {
      return compileGlob(pattern);
    } catch (err) {
      throw new ConfigError(`${flag} ${pattern}: ${(err as Error).message}`, { field: flag });
    }
  };
  const include = filter.include.map((p) => compile('--include', p));
  const exclude = filter.exclude.map((p) => compile('--exclude', p));
  return (name) => {
    if (include.length && !include.some((g) => g.matches(name))) return 'it matches no --include';
    const hit = exclude.find((g) => g.matches(name));
    return hit ? `it matches --exclude ${hit.pattern}` : undefined;
  };
}

/** Creates the folder if needed; runtimes never see a half-written spec (the temp name is not *.json). */
function writeAtomically(file: string, text: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    replaceFile(file, text, 0o644);
  } catch (err) {
    throw new ConfigError(`cannot write ${file}: ${(err as Error).message}`);
  }
}
