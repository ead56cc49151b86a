// Records migrated from version 1 journals (src/state/migrate.ts) matched to their devices the way
// the release that wrote them found them, before anything is restored: a moved device by the alias
// that release wrote on it (in the container, else on the host), a veth by its host end (the key,
// in the plan's link group), a macvlan by its name in the container on its master. The identity
// and ifindexes of the device found are recorded then, and from there on it is found by those
// like any other. A record whose device is nowhere to be found that way stays marked: a created
// device is then gone with its pair or namespace, and a moved one is not found (moveOut says so).

import { listLinks, LinkInfo } from '../netlink/link';
import { identityOf } from '../plan/plan';
import type { DeviceRecord, Plan } from '../state/journal-records';
import { hostIdInContainer, Sides } from './identity';

function matchHost(sides: Sides, rec: Extract<DeviceRecord, { kind: 'host' }>, marker: string): void {
  const inside = sides.container ? listLinks(sides.container.sock).find((l) => l.alias === marker) : undefined;
  const home = inside ? undefined : listLinks(sides.host.sock).find((l) => l.alias === marker);
  const link = inside ?? home;
  if (!link) return;
  rec.identity = inside ? identityOf(inside, hostIdInContainer(sides)) : identityOf(link);
  rec.containerIndex = link.index;
  // Version 1 neither recorded nor restored these: the device keeps what it has.
  rec.original.group = link.group;
  rec.original.altNames = link.altNames;
  delete rec.v1;
}

function matchVeth(sides: Sides, plan: Plan, rec: Extract<DeviceRecord, { kind: 'veth' }>): void {
  const hostEnd = listLinks(sides.host.sock).find((l) => l.name === rec.key && l.kind === 'veth' && l.group === plan.group);
  if (!hostEnd || hostEnd.linkIndex === null || hostEnd.linkNetnsid === null) return;
  rec.hostIndex = hostEnd.index;
  rec.identity.hostPeerIndex = hostEnd.index;
  rec.containerIndex = hostEnd.linkIndex;
  delete rec.v1;
}

function matchMacvlan(sides: Sides, rec: Extract<DeviceRecord, { kind: 'macvlan' }>): void {
  const master = listLinks(sides.host.sock).find((l) => l.name === rec.master);
  if (!master || !sides.container) return;
  const names = [rec.containerName, rec.tempName];
  const hostId = hostIdInContainer(sides);
  const link = listLinks(sides.container.sock).find((l: LinkInfo) => l.kind === 'macvlan' && names.includes(l.name)
    && l.linkIndex === master.index && l.linkNetnsid !== null && l.linkNetnsid === hostId);
  if (!link) return;
  rec.identity.hostLowerIndex = master.index;
  rec.containerIndex = link.index;
  delete rec.v1;
}

/** Matches the plan's version 1 records to their devices (see the top of this file). */
export function matchV1Records(sides: Sides, plan: Plan): void {
  for (const rec of plan.devices.filter((d) => d.v1)) {
    const marker = rec.v1!.marker;
    if (rec.kind === 'host') matchHost(sides, rec, marker);
    else if (rec.kind === 'veth') matchVeth(sides, plan, rec);
    else matchMacvlan(sides, rec);
  }
}
