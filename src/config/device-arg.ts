// `--device KEY[:FIELD=VALUE,...]`: one netDevices entry on a command line. CDI specs put one in
// each hook entry they add (a runtime injects one hook pair per requested CDI device), and
// `oci-netdev cdi generate --device` takes the same form. Entries are checked by the same schema
// and rules as linux.netDevices, and count as config.json's (source 'config'): a CDI spec is
// written by root, like config.json.

import { ConfigError, preview, show } from '../errors';

/** How each field's text becomes JSON; `address` may repeat and fills `addresses`. */
const FIELDS: Record<string, 'string' | 'integer' | 'list'> = {
  name: 'string',
  type: 'string',
  mtu: 'integer',
  mac: 'string',
  master: 'string',
  mode: 'string',
  address: 'list',
  gateway: 'string',
  hostBridge: 'string',
  hostMac: 'string',
  hostAddress: 'list',
  hwaddr: 'string',
  pciBusID: 'string',
  kernelpath: 'string',
};
const LIST_FIELD: Record<string, string> = { address: 'addresses', hostAddress: 'hostAddresses' };

/** One parsed --device argument: the entry key and its netDevices entry, not yet validated. */
export interface DeviceArg {
  key: string;
  entry: Record<string, unknown>;
}

/** Splits `KEY[:FIELD=VALUE,...]`; the schema and meaning checks come later (load.ts). */
export function parseDeviceArg(text: string): DeviceArg {
  const where = `--device ${show(text)}`;
  // Interface names cannot hold ':', so the first one ends the key (a MAC's colons come later).
  const colon = text.indexOf(':');
  const key = colon === -1 ? text : text.slice(0, colon);
  if (key === '') throw new ConfigError(`${where}: must start with a device name`, { field: '--device' });
  const entry: Record<string, unknown> = {};
  if (colon === -1) return { key, entry };
  for (const pair of text.slice(colon + 1).split(',')) {
    const eq = pair.indexOf('=');
    const field = eq === -1 ? pair : pair.slice(0, eq);
    const kind = FIELDS[field];
    if (kind === undefined) {
      throw new ConfigError(`${where}: unknown field ${preview(field)} (fields: ${Object.keys(FIELDS).join(', ')})`, { device: key, field });
    }
    if (eq === -1) throw new ConfigError(`${where}: ${field} needs a value (${field}=VALUE)`, { device: key, field });
    const value = pair.slice(eq + 1);
    if (kind === 'list') {
      const list = (entry[LIST_FIELD[field]] ??= []) as string[];
      list.push(value);
    } else {
      if (field in entry) throw new ConfigError(`${where}: ${field} is given twice`, { device: key, field });
      // A non-number stays text, so the schema names the field and shows what was given.
      entry[field] = kind === 'integer' && /^[0-9]{1,9}$/.test(value) ? Number(value) : value;
    }
  }
  return { key, entry };
}

/** The canonical text of a --device argument: fields in a fixed order, `address` once per item. */
export function formatDeviceArg({ key, entry }: DeviceArg): string {
  const pairs: string[] = [];
  for (const field of Object.keys(FIELDS)) {
    const list = LIST_FIELD[field];
    if (list !== undefined) for (const v of (entry[list] as string[] | undefined) ?? []) pairs.push(`${field}=${v}`);
    else if (entry[field] !== undefined) pairs.push(`${field}=${entry[field] as string | number}`);
  }
  return pairs.length ? `${key}:${pairs.join(',')}` : key;
}

/**
 * Parses --device arguments; the same text twice counts once (two hook entries may carry one
 * device), one key with two different texts is an error. The schema and meaning checks are
 * load.ts's, together with the other entries.
 */
export function deviceArgs(texts: string[]): DeviceArg[] {
  const byKey = new Map<string, { text: string; arg: DeviceArg }>();
  for (const text of texts) {
    const arg = parseDeviceArg(text);
    const seen = byKey.get(arg.key);
    if (seen === undefined) byKey.set(arg.key, { text, arg });
    else if (seen.text !== text) {
      throw new ConfigError(`--device ${show(text)}: device ${show(arg.key)} is already given as --device ${show(seen.text)}`, { device: arg.key, field: '--device' });
    }
  }
  return [...byKey.values()].map((v) => v.arg);
}

/** Splits `--device X` and `--device=X` out of a command line: the rest, and the device texts. */
export function splitDeviceOptions(args: readonly string[]): { rest: string[]; devices: string[] } {
  const rest: string[] = [];
  const devices: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--device' && i + 1 < args.length) devices.push(args[++i]);
    else if (a.startsWith('--device=')) devices.push(a.slice('--device='.length));
    else rest.push(a);
  }
  return { rest, devices };
}
