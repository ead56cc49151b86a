// A plan in words: each step createRuntime would take, in order, and what poststop will put back,
// for `oci-netdev plan`. The steps are the planner's own (planAttach), so what is listed is what
// the executor runs; nothing here observes or touches anything.

import type { AddressRecord, DeviceRecord, Operation, Plan, RouteRecord } from '../state/journal-records';

/** A CNI network of the container, as the steps name it. */
export interface PlannedNetwork {
  network: string;
  ifname: string;
  /** The plugin types of its list, in order. */
  plugins: string[];
  cniVersion: string;
}

/** One step: a device's operation (as the journal records it) or a network's ADD or DEL. */
export interface DescribedStep {
  device?: string;
  network?: string;
  op: Operation | 'ADD' | 'DEL';
  text: string;
}

export interface DescribedPlan {
  createRuntime: DescribedStep[];
  poststop: DescribedStep[];
}

const cidr = (a: AddressRecord) => `${a.local ?? a.address}/${a.prefixlen}`;
const list = (items: string[]) => items.join(', ');

function routeText(r: RouteRecord): string {
  const dst = r.dst === undefined ? 'default' : `${r.dst}/${r.dstLen}`;
  return `${dst}${r.gateway !== undefined ? ` via ${r.gateway}` : ''}${r.priority !== undefined ? ` metric ${r.priority}` : ''}`;
}

function containerName(rec: DeviceRecord): string {
  return rec.targetName.endsWith('%d') ? `${rec.targetName} (the kernel picks the number)` : rec.targetName;
}

/** What a step does, in words, from the device's record. */
function doText(op: Operation, rec: DeviceRecord): string {
  switch (op) {
    case 'moveIn':
      if (rec.kind !== 'host') break;
      if (rec.adopted) return `adopt ${rec.containerName ?? rec.targetName}, already in the container (the runtime moved it)`;
      return `move host device ${rec.key} (ifindex ${rec.original.index}) into the container as ${containerName(rec)}`;
    case 'createVeth':
      if (rec.kind !== 'veth') break;
      return `create veth in the container with its host end ${rec.key}` +
        `${rec.hostBridge ? ` on bridge ${rec.hostBridge.name}` : ''}` +
        `${rec.hostMac !== undefined ? `, host MAC ${rec.hostMac}` : ''}` +
        `${rec.hostAddresses?.length ? `, host addresses ${list(rec.hostAddresses.map(cidr))}` : ''}`;
    case 'createMacvlan':
      if (rec.kind !== 'macvlan') break;
      return `create macvlan (mode ${rec.mode}) on host device ${rec.master} in the container`;
    case 'renameInContainer':
      return `rename it to ${containerName(rec)}`;
    case 'copyAddresses':
      return rec.containerAddresses.length ? `add addresses ${list(rec.containerAddresses.map(cidr))}` : 'no addresses to add';
    case 'configure':
      // A created device got its MAC (requested or chosen) at creation; configure sets a moved one's.
      return `set${rec.mtu !== undefined ? ` MTU ${rec.mtu},` : ''}${rec.mac !== undefined && rec.kind === 'host' ? ` MAC ${rec.mac},` : ''} up`;
    case 'addRoutes':
      return `add routes ${list((rec.containerRoutes ?? []).map(routeText))}`;
    default:
      break;
  }
  return op;
}

/** What an undo puts back, in words. */
function undoText(op: Operation, rec: DeviceRecord): string {
  if (op === 'moveOut' && rec.kind === 'host') {
    const o = rec.original;
    const addresses = o.addresses.filter((a) => a.scope === 0).map(cidr);
    const state = o.state;
    const extra = state ? [
      state.routes.length ? `${state.routes.length} route(s)` : '',
      state.neighbours.length ? `${state.neighbours.length} neighbour(s)` : '',
      Object.keys(state.sysctls).length ? `${Object.keys(state.sysctls).length} sysctl(s)` : '',
      state.tc.length ? `${state.tc.length} tc object(s)` : '',
    ].filter(Boolean) : [];
    if (rec.adopted) return `move ${rec.key}'s device to the host as ${o.name}, as the runtime left it: MTU ${o.mtu}, MAC ${o.mac ?? 'none'}`;
    return `move ${rec.key} back to the host as ${o.name} (ifindex ${o.index}): MTU ${o.mtu}, MAC ${o.mac ?? 'none'}, ${o.up ? 'up' : 'down'}` +
      `${addresses.length ? `, addresses ${list(addresses)}` : ''}${extra.length ? `, ${list(extra)}` : ''}`;
  }
  if (op === 'deleteCreated') {
    return rec.kind === 'veth' ? `delete veth ${rec.targetName} and its host end ${rec.key}` : `delete ${rec.kind} ${rec.targetName}`;
  }
  return op;
}

/**
 * createRuntime's steps (the devices', then each network's ADD) and poststop's (the undos in
 * reverse, then each network's DEL, last network first), as the engine runs them.
 */
export function describePlan(plan: Plan, networks: PlannedNetwork[]): DescribedPlan {
  const recordOf = (key: string) => plan.devices.find((d) => d.key === key)!;
  const createRuntime: DescribedStep[] = plan.steps.map((s) => ({ device: s.device, op: s.do, text: `${s.device}: ${doText(s.do, recordOf(s.device))}` }));
  const poststop: DescribedStep[] = [...plan.steps].reverse().flatMap((s) => (s.undo ? [{
    device: s.device, op: s.undo, text: `${s.device}: ${undoText(s.undo, recordOf(s.device))}`,
  }] : []));
  for (const n of networks) {
    createRuntime.push({ network: n.network, op: 'ADD', text: `network ${n.network}: ADD as ${n.ifname}, CNI ${n.cniVersion}: ${list(n.plugins)}` });
  }
  for (const n of [...networks].reverse()) {
    poststop.push({ network: n.network, op: 'DEL', text: `network ${n.network}: DEL of ${n.ifname}: ${list([...n.plugins].reverse())}` });
  }
  return { createRuntime, poststop };
}
