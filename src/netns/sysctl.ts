// Per-device sysctls: /proc/sys/net/{ipv4,ipv6}/conf/DEV/ (keys "ipv4/rp_filter") and the
// neighbour tables' /proc/sys/net/{ipv4,ipv6}/neigh/DEV/ (keys "ipv4/neigh/ucast_solicit"). A
// thread sees /proc/sys/net of the network namespace it is in, so these read and write the calling
// thread's namespace: call them within the host's (Netns.within).

import * as fs from 'fs';
import { StateError, causeOf } from '../errors';

const FAMILIES = ['ipv4', 'ipv6'] as const;
/** The folders of per-device sysctls; a key names its table but for `conf`, as keys did before neigh was recorded. */
const TABLES = ['conf', 'neigh'] as const;
type Table = typeof TABLES[number];

const tableDir = (family: string, table: Table, device: string) => `/proc/sys/net/${family}/${table}/${device}`;
const keyOf = (family: string, table: Table, name: string) => (table === 'conf' ? `${family}/${name}` : `${family}/${table}/${name}`);

/** A key's family, table and file name; a key that names no per-device sysctl throws. */
function parseKey(device: string, key: string): { family: string; table: Table; name: string } {
  const parts = key.split('/');
  const [family, table, name] = parts.length === 2 ? [parts[0], 'conf', parts[1]] : parts;
  if (parts.length > 3 || !FAMILIES.includes(family as typeof FAMILIES[number]) || !TABLES.includes(table as Table)
    || (parts.length === 3 && table === 'conf') || !name || name.startsWith('.')) {
    throw new StateError(`device ${device}: ${key} is not a per-device sysctl`);
  }
  return { family, table: table as Table, name };
}

const fileOf = (device: string, key: string) => {
  const { family, table, name } = parseKey(device, key);
  return `${tableDir(family, table, device)}/${name}`;
};

/** The name sysctl(8) gives `key` of `device`: "ipv4/neigh/ucast_solicit" -> "net.ipv4.neigh.eth1.ucast_solicit". */
export function sysctlName(device: string, key: string): string {
  const { family, table, name } = parseKey(device, key);
  return `net.${family}.${table}.${device}.${name}`;
}

/** "ipv4/rp_filter" -> "0", "ipv6/neigh/retrans_time_ms" -> "1000", for every file of the device the owner may write and read. */
export type DeviceSysctls = Record<string, string>;

/**
 * Every readable per-device sysctl of `device`, writable or not (see writable()): a stat per file
 * cost a hook more than the reads, and the callers keep only the few that differ. The names of
 * those that refuse reading until set go to `unset`, when given.
 */
export function readDeviceSysctls(device: string, unset?: string[]): DeviceSysctls {
  const out: DeviceSysctls = {};
  for (const family of FAMILIES) for (const table of TABLES) {
    const dir = tableDir(family, table, device);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      // No such folder: the family is not there for this device (IPv6 off in the kernel), or
      // the table has no `default` here (neigh/default is the initial namespace's only).
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new StateError(`device ${device}: cannot read ${dir}: ${causeOf(err)}`);
    }
    for (const name of names.sort()) {
      try {
        out[keyOf(family, table, name)] = fs.readFileSync(`${dir}/${name}`, 'utf8').trimEnd();
      } catch {
        // Some refuse reading until set (ipv6 stable_secret says EIO).
        unset?.push(keyOf(family, table, name));
      }
    }
  }
  return out;
}

/**
 * One per-device sysctl ("ipv6/accept_ra"); undefined where the file is not there (the family is
 * off), null where it refuses reading until set (EIO, as ipv6 stable_secret does).
 */
export function readDeviceSysctl(device: string, key: string): string | null | undefined {
  const file = fileOf(device, key);
  try {
    return fs.readFileSync(file, 'utf8').trimEnd();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EIO') return null;
    throw new StateError(`device ${device}: cannot read ${file}: ${causeOf(err)}`);
  }
}

/** Whether the owner may write sysctl `key` ("ipv4/mc_forwarding" may not: it is the kernel's to set). */
export function writable(device: string, key: string): boolean {
  return (fs.statSync(fileOf(device, key)).mode & 0o200) !== 0;
}

/** Writes one value ("ipv6/disable_ipv6", "1"); throws with the errno name on refusal. */
export function writeDeviceSysctl(device: string, key: string, value: string): void {
  fs.writeFileSync(fileOf(device, key), `${value}\n`);
}
