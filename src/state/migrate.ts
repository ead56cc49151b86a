// Journals of older formats, read into today's (see "Journal versions" in journal.ts).
//
// Version 1 (releases before the checksummed envelope, up to commit a3e6bd8): the file is the
// journal's JSON alone, `{"version": 1, containerId, phase, createdAt, containerPid?,
// containerStartTime?, netnsPath, netnsDev, netnsIno, plan, started}`. Its device records have no
// identity and no ifindex in the container: the release wrote an alias of its own (`marker`) on a
// moved device and found devices by it, and by name. It recorded no routes, neighbours, sysctls,
// tc, link group or altnames. Its plans had a `mark` step (undo `unmark`) before each `moveIn`.
//
// A migrated record keeps the marker (`v1`) with placeholders for what version 1 did not record;
// src/apply/legacy.ts matches it to its device the way that release did and fills them in, before
// anything is restored. Nothing here guesses: what cannot be matched stays marked.

import type { AddressRecord, DeviceRecord, Operation, Plan, Step } from './journal-records';

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields of an address that version 1 shares with today's record (it also kept the ifindex). */
const ADDRESS_FIELDS = ['family', 'prefixlen', 'flags', 'scope', 'address', 'local', 'broadcast', 'label', 'preferredLifetime', 'validLifetime', 'rtPriority', 'proto'] as const;

function address(a: unknown): AddressRecord {
  const raw = isObject(a) ? a : {};
  return Object.fromEntries(ADDRESS_FIELDS.filter((f) => raw[f] !== undefined).map((f) => [f, raw[f]])) as unknown as AddressRecord;
}

const addresses = (v: unknown): AddressRecord[] => (Array.isArray(v) ? v.map(address) : []);

/** What every record carries over; the identity and ifindexes are placeholders until matched. */
function recordOf(r: Raw): DeviceRecord {
  const common = {
    key: r.key as string,
    targetName: r.targetName as string,
    containerIndex: 0,
    adopted: r.adopted === true,
    containerAddresses: addresses(r.containerAddresses),
    ...(r.mtu !== undefined ? { mtu: r.mtu as number } : {}),
    ...(r.mac !== undefined ? { mac: r.mac as string } : {}),
    ...(r.containerName !== undefined ? { containerName: r.containerName as string } : {}),
    v1: { marker: r.marker as string },
  };
  const identity = { kind: null, permanentMac: null, parentBus: null, parentDev: null };
  if (r.kind === 'veth') {
    return { ...common, kind: 'veth', tempName: r.tempName as string, hostIndex: 0, identity: { ...identity, kind: 'veth', hostPeerIndex: 0 } };
  }
  if (r.kind === 'macvlan') {
    return {
      ...common, kind: 'macvlan', tempName: r.tempName as string, master: r.master as string, mode: (r.mode ?? 'bridge') as 'bridge',
      identity: { ...identity, kind: 'macvlan', hostLowerIndex: 0 },
    };
  }
  const o = isObject(r.original) ? r.original : {};
  return {
    ...common,
    kind: r.kind as 'host',
    identity,
    original: {
      index: o.index as number, name: o.name as string, mtu: o.mtu as number, mac: (o.mac ?? null) as string | null, up: o.up as boolean,
      alias: (o.alias ?? '') as string, group: 0, altNames: [], addresses: addresses(o.addresses),
    },
  };
}

/**
 * Version 1's steps in today's terms: `mark` goes, folded into the `moveIn` that follows it (its
 * undo, moveOut, puts the alias back too), and `started` counts the steps begun under the new list.
 */
function stepsOf(raw: unknown[], started: number): { steps: Step[]; started: number } {
  const steps: Step[] = [];
  let begun = 0;
  const marked = new Map<string, number>();
  raw.forEach((s, i) => {
    const step = (isObject(s) ? s : {}) as { device: string; do: string; undo?: string };
    if (step.do === 'mark') {
      marked.set(step.device, i);
      return;
    }
    const from = step.do === 'moveIn' ? marked.get(step.device) ?? i : i;
    steps.push({ device: step.device, do: step.do as Operation, ...(step.undo !== undefined ? { undo: step.undo as Operation } : {}) });
    if (from < started) begun++;
  });
  return { steps, started: begun };
}

/**
 * A version 1 journal in today's shape, unchecked: the caller validates the result against the
 * schema, which names whatever version 1 held that today's journal cannot (an unknown step). Not
 * typed as a Journal until then, which also keeps this file from importing the journal's reader.
 */
export function migrateV1(raw: Raw): Raw {
  const plan = isObject(raw.plan) ? raw.plan : {};
  const { steps, started } = stepsOf(Array.isArray(plan.steps) ? plan.steps : [], typeof raw.started === 'number' ? raw.started : 0);
  const migrated: Plan = {
    group: plan.group as number,
    devices: (Array.isArray(plan.devices) ? plan.devices : []).map((d) => recordOf(isObject(d) ? d : {})),
    steps,
  };
  return {
    containerId: raw.containerId,
    phase: raw.phase,
    createdAt: raw.createdAt,
    ...(raw.containerPid !== undefined ? { containerPid: raw.containerPid } : {}),
    ...(raw.containerStartTime !== undefined ? { containerStartTime: raw.containerStartTime } : {}),
    netnsPath: raw.netnsPath,
    netnsDev: raw.netnsDev,
    netnsIno: raw.netnsIno,
    plan: migrated,
    started,
  };
}
