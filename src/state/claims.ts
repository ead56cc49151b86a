// What a container's journal claims, kept beside it in a small sealed file for the claims scan.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { envelopeOf, seal, unseal } from './sealed';
import type { Journal, JournalNetwork } from './journal';
import { createExclusive, writeAll } from '../fsio/files';

/** What the journal claims (ClaimRecord), written once beside it for the claims scan. */
export const CLAIMS = 'claims.json';
export const MAX_CLAIMS_BYTES = 1024 * 1024;

/**
 * What a container's journal holds against every other createRuntime: taken from its plan, which
 * is fixed when the journal is made. The claims scan (scanClaims), under the claims lock, reads
 * these small files instead of every whole journal (BENCHMARKS.md: the 32-container rows).
 */
export interface ClaimRecord {
  containerId: string;
  /** The plan's link group. */
  group: number;
  netnsDev: number;
  netnsIno: number;
  /** Host device names held: a moved device's original name, its altnames and the fallback it is home under, a created veth's key. */
  hostNames: string[];
  /** The ifindexes its devices were given in its namespace. */
  containerIndexes: number[];
  /** Host ifindexes of the lower devices its macvlans sit on. */
  macvlanLowers: number[];
  /** The MACs its devices have or were given, on either side (a claims file without them is read from the journal). */
  macs: string[];
  /** The addresses, without prefix, its devices have or were given, and those its networks asked for. */
  addresses: string[];
}

/** The MACs and addresses a network's capability args (mac, ips) and CNI_ARGS (MAC=, IP=) ask for. */
function networkAddresses(n: JournalNetwork): { macs: string[]; addresses: string[] } {
  const rc = n.runtimeConfig;
  const texts = (v: unknown): string[] => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
  const arg = (key: string) => n.args.filter(([k]) => k === key).flatMap(([, v]) => v.split(','));
  return { macs: [...texts(rc.mac), ...arg('MAC')], addresses: [...texts(rc.ips), ...arg('IP')].map((a) => a.split('/')[0]) };
}

export function claimRecordOf(j: Journal): ClaimRecord {
  const devices = j.plan.devices;
  return {
    containerId: j.containerId,
    group: j.plan.group,
    netnsDev: j.netnsDev,
    netnsIno: j.netnsIno,
    // A lost device's name is free for new claims: its record has ended. A fallback name is held with
    // the original, and so are its own altnames: one taken meanwhile would come home without the device.
    hostNames: devices.flatMap((d) => (d.lost !== undefined ? []
      : d.kind === 'host' ? [d.original.name, ...d.original.altNames, ...(d.fallbackName !== undefined ? [d.fallbackName] : [])] : d.kind === 'veth' ? [d.key] : [])),
    containerIndexes: devices.map((d) => d.containerIndex),
    macvlanLowers: devices.flatMap((d) => (d.kind === 'macvlan' && d.identity.hostLowerIndex !== undefined ? [d.identity.hostLowerIndex] : [])),
    macs: [
      ...devices.flatMap((d) => [d.mac, d.kind === 'host' ? d.original.mac : undefined, d.kind === 'veth' ? d.hostMac : undefined]),
      ...(j.networks ?? []).flatMap((n) => networkAddresses(n).macs),
    ].filter((m): m is string => typeof m === 'string' && m !== '').map((m) => m.toLowerCase()),
    addresses: [
      ...devices.flatMap((d) => [
        ...d.containerAddresses, ...(d.kind === 'host' ? d.original.addresses : []), ...(d.kind === 'veth' ? d.hostAddresses ?? [] : []),
      ].map((a) => a.local ?? a.address)),
      ...(j.networks ?? []).flatMap((n) => networkAddresses(n).addresses),
    ],
  };
}

/** A claims file's content: the record and the sha256 of its text. */
export function claimsData(j: Journal): Buffer {
  return seal('claims', claimRecordOf(j));
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const ints = (v: unknown): boolean => Array.isArray(v) && v.every(isInt);
const strings = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** A claims file's record, if it is whole (its checksum holds), well-formed and the container's. */
export function decodeClaims(data: Buffer, id: string): ClaimRecord | null {
  try {
    const c = unseal(envelopeOf(data), 'claims') as Partial<ClaimRecord> | undefined;
    if (c === undefined) return null;
    const ok = c.containerId === id && isInt(c.group) && isInt(c.netnsDev) && isInt(c.netnsIno)
      && strings(c.hostNames) && ints(c.containerIndexes) && ints(c.macvlanLowers) && strings(c.macs) && strings(c.addresses);
    return ok ? c as ClaimRecord : null;
  } catch {
    return null;
  }
}

/**
 * The journal's claim record, after the journal: no fsync and no error, because a claims file that
 * is missing, torn or unwritable only sends the scan back to the journal itself.
 */
export function writeClaims(dir: string, data: Buffer): void {
  const file = path.join(dir, CLAIMS);
  try {
    fs.rmSync(file, { force: true });
    const fd = createExclusive(file, 0o600);
    try {
      writeAll(fd, data);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    fs.rmSync(file, { force: true });
  }
}
