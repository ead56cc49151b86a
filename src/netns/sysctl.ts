// Per-device sysctls (/proc/sys/net/ipv4/conf/DEV/ and /proc/sys/net/ipv6/conf/DEV/). A thread
// sees /proc/sys/net of the network namespace it is in, so these read and write the calling
// thread's namespace: call them within the host's (Netns.within).

import * as fs from 'fs';
import { StateError, causeOf } from '../errors';

const FAMILIES = ['ipv4', 'ipv6'] as const;
const confDir = (family: string, device: string) => `/proc/sys/net/${family}/conf/${device}`;

/** "ipv4/rp_filter" -> "0", for every file of the device the owner may write and read. */
export type DeviceSysctls = Record<string, string>;

/**
 * Every readable per-device sysctl of `device`, writable or not (see writable()): a stat per file
 * cost a hook more than the reads, and the callers keep only the few that differ. The names of
 * those that refuse reading until set go to `unset`, when given.
 */
export function readDeviceSysctls(device: string, unset?: string[]): DeviceSysctls {
  const out: DeviceSysctls = {};
  for (const family of FAMILIES) {
    const dir = confDir(family, device);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (err) {
      // No such folder: the family is not there for this device (IPv6 off in the kernel).
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new StateError(`device ${device}: cannot read ${dir}: ${causeOf(err)}`);
    }
    for (const name of names.sort()) {
      try {
        out[`${family}/${name}`] = fs.readFileSync(`${dir}/${name}`, 'utf8').trimEnd();
      } catch {
        // Some refuse reading until set (ipv6 stable_secret says EIO).
        unset?.push(`${family}/${name}`);
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
  const [family, name] = key.split('/');
  const file = `${confDir(family, device)}/${name}`;
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
  const [family, name] = key.split('/');
  return (fs.statSync(`${confDir(family, device)}/${name}`).mode & 0o200) !== 0;
}

/** Writes one value ("ipv6/disable_ipv6", "1"); throws with the errno name on refusal. */
export function writeDeviceSysctl(device: string, key: string, value: string): void {
  const [family, name] = key.split('/');
  if (!FAMILIES.includes(family as typeof FAMILIES[number]) || !name || name.includes('/') || name.startsWith('.')) {
    throw new StateError(`device ${device}: ${key} is not a per-device sysctl`);
  }
  fs.writeFileSync(`${confDir(family, device)}/${name}`, `${value}\n`);
}
