// The fixture of the hook tests, on a rig (makeRig: a simulated host, a container netns, a state
// dir): stand-in NICs on the host, bundles that join the container, the hook run in the host the
// way a runtime runs it, and what the hook must have left behind.
import type { Test } from 'tap';
import { makeBundle } from './bundle';
import { runHook, RunningHook, startHook } from './hook';
import { uniqueName } from './names';
import { ociState, Rig } from './netdevices';
import { mountPoints, netnsPath, ShResult, shOk } from './sandbox';
import type { OciState } from '../../src/config/types';

export interface NicOptions {
  mtu?: number;
  mac?: string;
  alias?: string;
  down?: boolean;
}

/** A stand-in NIC (one end of a veth pair, both ends up) in the simulated host. */
export function hostNic(rig: Rig, opts: NicOptions = {}): string {
  const name = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, name, uniqueName('peer'));
  const set = [
    ...(opts.mtu ? ['mtu', String(opts.mtu)] : []),
    ...(opts.mac ? ['address', opts.mac] : []),
    ...(opts.alias ? ['alias', opts.alias] : []),
    ...(opts.down ? ['down'] : []),
  ];
  if (set.length) shOk('ip', ['-n', rig.simhost, 'link', 'set', name, ...set]);
  return name;
}

/** A bundle running `true` that joins the netns at `netns` (the rig's container unless given; none for null). */
export function bundleFor(rig: Rig, netDevices: Record<string, object>, netns: string | null = netnsPath(rig.ctr)): string {
  return makeBundle(rig.sb, { args: ['true'], netnsPath: netns ?? undefined, netDevices });
}

export const creating = (id: string, bundle: string, extra: Partial<OciState> = {}): OciState => ociState(id, bundle, 'creating', extra);
export const stopped = (id: string, bundle: string): OciState => ociState(id, bundle, 'stopped');

/** `oci-netdev <subcommand>` in the simulated host with `state` on stdin, on the rig's state dir or `stateDir`. */
export function hook(rig: Rig, subcommand: string, state: OciState, stateDir = rig.stateDir): ShResult {
  return runHook(rig.simhost, subcommand, state, { stateDir });
}

/** hook without waiting for it, as a runtime starts it. */
export function startHookIn(rig: Rig, subcommand: string, state: OciState): RunningHook {
  return startHook(rig.simhost, subcommand, state, { stateDir: rig.stateDir });
}

export const createRuntime = (rig: Rig, id: string, bundle: string, extra: Partial<OciState> = {}): ShResult =>
  hook(rig, 'create-runtime', creating(id, bundle, extra));

export const poststop = (rig: Rig, id: string, bundle: string): ShResult => hook(rig, 'poststop', stopped(id, bundle));

/** The hook succeeded; its stderr is shown when it did not. */
export function ok(t: Test, r: ShResult, what: string): void {
  t.equal(r.status, 0, `${what} exits 0`, { stderr: r.stderr });
}

/** The hook failed the way the contract says: non-zero, one line on stderr naming `device` and `cause`. */
export function refused(t: Test, r: ShResult, device: string, cause: RegExp): void {
  t.not(r.status, 0, 'the hook exits non-zero');
  const lines = r.stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, 'one line on stderr', { stderr: r.stderr });
  t.match(lines[0], device, 'the line names the device');
  t.match(lines[0], cause, 'and the cause');
}

/** The netns pins mounted below a state dir. */
export const pinsIn = (stateDir: string): string[] => mountPoints().filter((m) => m.startsWith(stateDir + '/'));
