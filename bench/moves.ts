// Moving N pre-existing devices (veth ends standing in for NICs) into a fresh netns and back,
// five ways: oci-netdev's two hook processes, the CNI host-device plugin (alone, and chained with
// tuning for MAC/MTU), an iproute2 shell hook, and the kernel floor (`ip -batch`).
import { mkdirSync, writeFileSync } from 'node:fs';
import { CNI_DIR, EXE, HOOK, NS_PREFIX, PREFIX, REPO, RID, RUN_DIR, ipBatch, nsPath, ok, run } from './util';
import { sleepSync } from '../src/fsio/sleep';

export type Variant = 'move' | 'macmtu';
/** ours: the Node launcher; exe: the single executable. */
export type Method = 'ours' | 'exe' | 'cni' | 'iproute2' | 'floor';
export const METHODS: Method[] = ['ours', 'exe', 'cni', 'iproute2', 'floor'];

/** The MTU the MAC/MTU variant sets in the container. */
const MTU = 1400;
export const STATE_DIR = `${RUN_DIR}/state`;

export interface Nic {
  name: string;
  /** Name in the container. */
  target: string;
  v4: string;
  v6: string;
  /** The MAC set in the container by the MAC/MTU variant. */
  mac: string;
}

export interface Timing {
  attach: number;
  detach: number;
}

/** What the host must hold again after a round: name, up, MTU, MAC and global addresses. */
interface HostView {
  up: boolean;
  mtu: number;
  mac: string;
  addrs: string[];
  alias: string;
}

interface IpAddrJson {
  ifname: string;
  flags: string[];
  mtu: number;
  address: string;
  ifalias?: string;
  addr_info: { local: string; prefixlen: number; scope: string }[];
}

export function hostView(ns?: string): Map<string, HostView> {
  const links = JSON.parse(ok('ip', [...(ns ? ['-n', ns] : []), '-j', 'addr', 'show']).stdout) as IpAddrJson[];
  return new Map(links.map((l) => [l.ifname, {
    up: l.flags.includes('UP'),
    mtu: l.mtu,
    mac: l.address,
    alias: l.ifalias ?? '',
    addrs: l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort(),
  }]));
}

let nsCounter = 0;
/** A fresh, empty network namespace. */
function freshNetns(): string {
  const ns = `${NS_PREFIX}c${++nsCounter}`;
  ok('ip', ['netns', 'add', ns]);
  return ns;
}

function deleteNetns(ns: string): void {
  ok('ip', ['netns', 'del', ns]);
}

/** N stand-in NICs in this (the simulated host's) namespace, each with an IPv4 and an IPv6 address, up. */
export class Fleet {
  readonly nics: Nic[];
  private baseline: Map<string, HostView | undefined>;

  constructor(readonly n: number, role = 'n', subnet = 201) {
    this.nics = Array.from({ length: n }, (_, k) => {
      const i = k + 1;
      return {
        name: `${PREFIX}${role}${i}`,
        target: `eth${i}`,
        v4: `10.${subnet}.${i}.1/24`,
        v6: `fd00:${subnet}:${i}::1/64`,
        mac: `02:0b:${RID.slice(0, 2)}:${RID.slice(2, 4)}:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
      };
    });
    const peer = (nic: Nic) => nic.name.replace(`${PREFIX}${role}`, `${PREFIX}${role}p`);
    ipBatch(this.nics.flatMap((nic) => [
      `link add ${nic.name} type veth peer name ${peer(nic)}`,
      `addr add ${nic.v4} dev ${nic.name}`,
      `addr add ${nic.v6} dev ${nic.name} nodad`,
      `link set ${nic.name} up`,
    ]));
    this.baseline = this.view();
  }

  private view(): Map<string, HostView | undefined> {
    const all = hostView();
    return new Map(this.nics.map((nic) => [nic.name, all.get(nic.name)]));
  }

  /** What differs from the state at set-up (with `loose`, only whether each NIC is back by name). */
  differences(loose = false): string[] {
    const now = this.view();
    const out: string[] = [];
    for (const nic of this.nics) {
      const b = this.baseline.get(nic.name)!;
      const v = now.get(nic.name);
      if (!v) {
        out.push(`${nic.name} is not back on the host`);
        continue;
      }
      if (loose) continue;
      const diff: string[] = (['up', 'mtu', 'mac', 'alias'] as const).filter((k) => v[k] !== b[k]);
      if (v.addrs.join() !== b.addrs.join()) diff.push('addresses');
      if (diff.length) out.push(`${nic.name} came back changed (${diff.join(', ')}): ${JSON.stringify(v)} vs ${JSON.stringify(b)}`);
    }
    return out;
  }

  /** Throws unless every NIC is back as it was. */
  verify(what: string, loose = false): void {
    const d = this.differences(loose);
    if (d.length) throw new Error(`${what}: ${d.join('; ')}`);
  }

  /** Puts back what the CNI plugins do not restore (addresses, up state, alias). */
  reset(): void {
    // -force: carry on past what is already there; verify() judges the result.
    run('ip', ['-force', '-batch', '-'], {
      input: this.nics.flatMap((nic) => [
        `link set dev ${nic.name} alias ""`,
        `addr add ${nic.v4} dev ${nic.name}`,
        `addr add ${nic.v6} dev ${nic.name} nodad`,
        `link set dev ${nic.name} up`,
      ]).join('\n') + '\n',
    });
    this.verify('reset');
  }

  destroy(): void {
    ipBatch(this.nics.map((nic) => `link del ${nic.name}`));
  }
}

let bundleCounter = 0;

/** A bundle dir whose config.json asks for the fleet's devices in `ns`. */
function bundleFor(fleet: Fleet, variant: Variant, ns: string): string {
  const dir = `${RUN_DIR}/bundle-${++bundleCounter}`;
  mkdirSync(dir, { recursive: true });
  const netDevices = Object.fromEntries(fleet.nics.map((nic) => [
    nic.name,
    variant === 'macmtu' ? { name: nic.target, mtu: MTU, mac: nic.mac } : { name: nic.target },
  ]));
  writeFileSync(`${dir}/config.json`, JSON.stringify({
    ociVersion: '1.0.2',
    linux: { namespaces: [{ type: 'network', path: nsPath(ns) }], netDevices },
  }));
  return dir;
}

/** One hook process as a runtime starts it: no environment, the state on stdin. */
export function hook(stage: 'create-runtime' | 'poststop', id: string, bundle: string, stateDir = STATE_DIR, executable = HOOK) {
  const state = stage === 'create-runtime'
    ? { ociVersion: '1.0.2', id, status: 'creating', pid: process.pid, bundle }
    : { ociVersion: '1.0.2', id, status: 'stopped', bundle };
  const r = run(executable, ['--state-dir', stateDir, stage], { argv0: 'oci-netdev', env: {}, input: JSON.stringify(state) });
  if (r.status !== 0) throw new Error(`oci-netdev ${stage} ${id} failed (${r.status}): ${r.stderr.trim()}`);
  return r.ms;
}

let roundCounter = 0;

interface Phases {
  attach(): void;
  detach(): void;
}

function hooks(executable: string) {
  return (fleet: Fleet, variant: Variant, ns: string): Phases => {
    const bundle = bundleFor(fleet, variant, ns);
    const id = `onb-${RID}-r${++roundCounter}`;
    return { attach: () => hook('create-runtime', id, bundle, STATE_DIR, executable), detach: () => hook('poststop', id, bundle, STATE_DIR, executable) };
  };
}

function cniExec(plugin: string, command: 'ADD' | 'DEL', id: string, ns: string, ifname: string, conf: object): string {
  const r = run(`${CNI_DIR}/${plugin}`, [], {
    env: { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: nsPath(ns), CNI_IFNAME: ifname, CNI_PATH: CNI_DIR },
    input: JSON.stringify(conf),
  });
  if (r.status !== 0) throw new Error(`CNI ${plugin} ${command} ${ifname} failed (${r.status}): ${r.stdout.trim()} ${r.stderr.trim()}`);
  return r.stdout;
}

/** As libcni drives a conflist: ADD each plugin in order with the previous result, DEL in reverse. */
function cni(fleet: Fleet, variant: Variant, ns: string): Phases {
  const id = `onb-${RID}-r${++roundCounter}`;
  const results: object[] = [];
  const hd = (nic: Nic) => ({ cniVersion: '1.0.0', name: 'onb', type: 'host-device', device: nic.name });
  const tuning = (nic: Nic, prevResult: object) => ({
    cniVersion: '1.0.0', name: 'onb', type: 'tuning', mtu: MTU, mac: nic.mac, dataDir: `${RUN_DIR}/tuning`, prevResult,
  });
  return {
    attach() {
      for (const nic of fleet.nics) {
        let result = JSON.parse(cniExec('host-device', 'ADD', id, ns, nic.target, hd(nic))) as object;
        if (variant === 'macmtu') result = JSON.parse(cniExec('tuning', 'ADD', id, ns, nic.target, tuning(nic, result))) as object;
        results.push(result);
      }
    },
    detach() {
      for (let k = fleet.nics.length - 1; k >= 0; k--) {
        const nic = fleet.nics[k];
        if (variant === 'macmtu') cniExec('tuning', 'DEL', id, ns, nic.target, tuning(nic, results[k]));
        cniExec('host-device', 'DEL', id, ns, nic.target, { ...hd(nic), prevResult: results[k] });
      }
    },
  };
}

const SCRIPT = `${REPO}/bench/iproute2-hook.sh`;

function iproute2(fleet: Fleet, variant: Variant, ns: string): Phases {
  const state = `${RUN_DIR}/iproute2-${ns}`;
  const specs = fleet.nics.map((nic) => `${nic.name}:${nic.target}:${nic.mac}`);
  return {
    attach: () => ok(SCRIPT, ['attach', ns, state, variant === 'macmtu' ? String(MTU) : '-', ...specs], { env: {} }),
    detach: () => ok(SCRIPT, ['detach', ns, state], { env: {} }),
  };
}

/**
 * The same link operations, one `ip -batch` per namespace and direction. Each device is taken down
 * in a request of its own before it moves: the kernel moves a down device faster than one it must
 * close inside the move (BENCHMARKS.md), so this is the cheapest order, and the one oci-netdev uses.
 */
function floor(fleet: Fleet, variant: Variant, ns: string): Phases {
  const nics = fleet.nics;
  const original = hostView();
  return {
    attach() {
      ipBatch(nics.flatMap((nic) => [`link set dev ${nic.name} down`, `link set dev ${nic.name} netns ${ns} name ${nic.target}`]));
      ipBatch(nics.flatMap((nic) => [
        `addr add ${nic.v4} dev ${nic.target}`,
        `addr add ${nic.v6} dev ${nic.target} nodad`,
        variant === 'macmtu' ? `link set dev ${nic.target} mtu ${MTU} address ${nic.mac} up` : `link set dev ${nic.target} up`,
      ]), ns);
    },
    detach() {
      ipBatch(nics.flatMap((nic) => {
        const o = original.get(nic.name)!;
        const restore = variant === 'macmtu' ? ` mtu ${o.mtu} address ${o.mac}` : '';
        return [`link set dev ${nic.target} down${restore}`, `link set dev ${nic.target} netns ${process.pid} name ${nic.name}`];
      }), ns);
      ipBatch(nics.flatMap((nic) => [
        `addr add ${nic.v4} dev ${nic.name}`,
        `addr add ${nic.v6} dev ${nic.name} nodad`,
        `link set dev ${nic.name} up`,
      ]));
    },
  };
}

const PHASES: Record<Method, (fleet: Fleet, variant: Variant, ns: string) => Phases> = { ours: hooks(HOOK), exe: hooks(EXE), cni, iproute2, floor };

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Throws unless the container holds every device under its target name, up, and with the variant's MTU. */
function verifyAttached(fleet: Fleet, variant: Variant, ns: string, what: string): void {
  const view = hostView(ns);
  for (const nic of fleet.nics) {
    const v = view.get(nic.target);
    if (!v || !v.up) throw new Error(`${what}: ${nic.target} is not in the container, up`);
    if (variant === 'macmtu' && (v.mtu !== MTU || v.mac !== nic.mac)) throw new Error(`${what}: ${nic.target} has MTU ${v.mtu}, MAC ${v.mac}`);
  }
}

/** One round of one method in a fresh netns (the caller's): attach + detach timed, with checks. */
export function measure(method: Method, fleet: Fleet, variant: Variant, ns: string): Timing {
  const what = `${method} ${variant} N=${fleet.n}`;
  const phases = PHASES[method](fleet, variant, ns);
  const attach = timed(() => phases.attach());
  verifyAttached(fleet, variant, ns, what);
  const detach = timed(() => phases.detach());
  // host-device leaves the device down, without its addresses and with its alias set.
  if (method === 'cni') {
    fleet.verify(what, true);
    fleet.reset();
  } else {
    fleet.verify(what);
  }
  return { attach, detach };
}

/**
 * Runs `body` with one fresh netns per entry of `keys`, made before and deleted after, then waits a
 * moment: the kernel tears a namespace down in the background, holding the rtnl lock, and that
 * must not land in the next measurement.
 */
export function withFreshNetns<K>(keys: K[], body: (ns: Map<K, string>) => void): void {
  const ns = new Map(keys.map((k) => [k, freshNetns()]));
  try {
    body(ns);
  } finally {
    for (const n of ns.values()) deleteNetns(n);
    settle();
  }
}

export function settle(ms = 150): void {
  sleepSync(ms);
}
