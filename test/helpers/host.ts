// The fixture of the hook tests, on a rig (makeRig: a simulated host, a container netns, a state
// dir): stand-in NICs on the host, bundles that join the container, the hook run in the host the
// way a runtime runs it (or the engine called in this process, on an in-process rig), and what
// the hook must have left behind.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Test } from 'tap';
import { makeBundle } from './bundle';
import { runHook, RunningHook, startHook } from './hook';
import { uniqueName } from './names';
import { ociState, Rig, stateEntries } from './netdevices';
import { mountPoints, netnsPath, NsSnapshot, settledTo, ShResult, shOk, sleep, Teardownable } from './sandbox';
import type { OciState } from '../../src/config/types';
import { attach } from '../../src/engine/attach';
import { detach } from '../../src/engine/detach';
import type { EngineOptions } from '../../src/engine/options';
import { NetdevError } from '../../src/errors';
import { Logger } from '../../src/log/logger';

export interface NicOptions {
  mtu?: number;
  mac?: string;
  alias?: string;
  down?: boolean;
  /** What uniqueName names it after (default nic). */
  role?: string;
}

/** A stand-in NIC (one end of a veth pair, both ends up) in the simulated host, and its peer. */
export function standIn(rig: Rig, opts: NicOptions = {}): { name: string; peer: string } {
  const name = uniqueName(opts.role ?? 'nic');
  const peer = uniqueName('peer');
  rig.sb.createVethPair(rig.simhost, name, peer);
  const set = [
    ...(opts.mtu ? ['mtu', String(opts.mtu)] : []),
    ...(opts.mac ? ['address', opts.mac] : []),
    ...(opts.alias ? ['alias', opts.alias] : []),
    ...(opts.down ? ['down'] : []),
  ];
  if (set.length) shOk('ip', ['-n', rig.simhost, 'link', 'set', name, ...set]);
  return { name, peer };
}

/** A stand-in NIC as standIn makes it; its name. */
export const hostNic = (rig: Rig, opts: NicOptions = {}): string => standIn(rig, opts).name;

/** A bundle running `true` that joins the netns at `netns` (the rig's container unless given; none for null). */
export function bundleFor(rig: Rig, netDevices: Record<string, object>, netns: string | null = netnsPath(rig.ctr)): string {
  return makeBundle(rig.sb, { args: ['true'], netnsPath: netns ?? undefined, netDevices });
}

export const creating = (id: string, bundle: string, extra: Partial<OciState> = {}): OciState => ociState(id, bundle, 'creating', extra);
export const stopped = (id: string, bundle: string): OciState => ociState(id, bundle, 'stopped');

/**
 * `oci-netdev <subcommand>` in the simulated host with `state` on stdin, on the rig's state dir or
 * `stateDir`; on an in-process rig, the engine called here to the same effect (hookInProcess).
 */
export function hook(rig: Rig, subcommand: string, state: OciState, stateDir = rig.stateDir): ShResult {
  if (rig.inProcess) return hookInProcess(rig, subcommand, state, stateDir);
  return runHook(rig.simhost, subcommand, state, { stateDir });
}

/** The options the CLI gives the engine, with the rig's simulated host as the host namespace. */
export function inProcessOptions(rig: Rig, log: Logger, stateDir = rig.stateDir): EngineOptions {
  return {
    stateDir,
    hostNetns: netnsPath(rig.simhost),
    warn: (m) => log.warn(m),
    info: (m, containerId) => log.info(m, containerId),
  };
}

/**
 * create-runtime or poststop as the engine's attach or detach in this process, its warnings and
 * its error on stderr as the CLI prints them, status 1 on the error. An exception that is not the
 * engine's (a bug) is thrown, not turned into a status.
 */
function hookInProcess(rig: Rig, subcommand: string, state: OciState, stateDir: string): ShResult {
  const run = { 'create-runtime': attach, poststop: detach }[subcommand];
  if (!run) throw new Error(`an in-process rig runs create-runtime and poststop, not ${subcommand}`);
  let stderr = '';
  const log = new Logger({ stderr: (text) => (stderr += text) });
  log.containerId = state.id;
  let status = 0;
  try {
    run(state, inProcessOptions(rig, log, stateDir));
  } catch (err) {
    if (!(err instanceof NetdevError)) throw err;
    log.error(err.message);
    status = 1;
  } finally {
    log.close();
  }
  return { status, signal: null, stdout: '', stderr };
}

/** The rtnetlink socket of process `pid` that listens to multicast groups, from /proc/net/netlink. */
function listeningSocket(pid: number): { queued: number } | undefined {
  for (const line of readFileSync('/proc/net/netlink', 'utf8').split('\n').slice(1)) {
    const [, protocol, port, groups, rmem] = line.trim().split(/\s+/);
    if (protocol === '0' && Number(port) === pid && groups !== '00000000') return { queued: Number(rmem) };
  }
  return undefined;
}

async function waitFor(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await sleep(25);
  if (!done()) throw new Error(`gave up waiting: ${what}`);
}

/**
 * Watches the network namespace of this test process (links, addresses, routes, with `ip -o
 * monitor`) from now until the returned function is called; that returns the events seen, one a
 * line. The in-process tests show with it that the engine left this namespace alone.
 */
export async function watchOwnNamespace(t: Teardownable): Promise<() => Promise<string[]>> {
  const monitor = spawn('ip', ['-o', 'monitor', 'link', 'address', 'route'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  monitor.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<void>((done) => monitor.once('close', () => done()));
  t.teardown(() => monitor.kill());
  const pid = monitor.pid!;
  await waitFor('ip monitor listens', () => listeningSocket(pid) !== undefined);
  return async () => {
    // Every event queued for it read, and a moment to print the last one.
    await waitFor('ip monitor reads what is queued', () => listeningSocket(pid)?.queued === 0);
    await sleep(50);
    monitor.kill();
    await closed;
    return out.split('\n').filter(Boolean);
  };
}

/** hook without waiting for it, as a runtime starts it. */
export function startHookIn(rig: Rig, subcommand: string, state: OciState): RunningHook {
  return startHook(rig.simhost, subcommand, state, { stateDir: rig.stateDir });
}

export const createRuntime = (rig: Rig, id: string, bundle: string, extra: Partial<OciState> = {}): ShResult =>
  hook(rig, 'create-runtime', creating(id, bundle, extra));

export const poststop = (rig: Rig, id: string, bundle: string): ShResult => hook(rig, 'poststop', stopped(id, bundle));

/** The netns pins mounted below a state dir. */
export const pinsIn = (stateDir: string): string[] => mountPoints().filter((m) => m.startsWith(stateDir + '/'));

/** Every device is home: the simulated host as `hostExpected`, the container as `ctrBefore`, no journal and no pin left. */
export async function allHome(t: Test, rig: Pick<Rig, 'simhost' | 'ctr' | 'stateDir'>, hostExpected: NsSnapshot, ctrBefore: NsSnapshot): Promise<void> {
  t.same(await settledTo(rig.simhost, hostExpected), hostExpected, 'the host is as expected: every device, name, MTU, MAC, flag and address');
  t.same(await settledTo(rig.ctr, ctrBefore), ctrBefore, 'nothing is left in the container');
  t.same(stateEntries(rig.stateDir), [], 'no journal left');
  t.same(pinsIn(rig.stateDir), [], 'no pin left');
}
