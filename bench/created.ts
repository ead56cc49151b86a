// Devices the hook creates: N veth pairs (host end stays, container end inside) or N macvlans on
// one stand-in NIC, each with an address, set up in a fresh netns and torn down again.
import { mkdirSync, writeFileSync } from 'node:fs';
import { hook, hostView, STATE_DIR } from './moves';
import { EXE, HOOK, PREFIX, REPO, RID, RUN_DIR, ipBatch, nsPath, ok } from './util';

export type Kind = 'veth' | 'macvlan';
/** ours: the Node launcher; exe: the single executable. */
export type CreatedMethod = 'ours' | 'exe' | 'iproute2' | 'floor';
export const CREATED_METHODS: CreatedMethod[] = ['ours', 'exe', 'iproute2', 'floor'];

export interface Phases2 {
  setup: number;
  teardown: number;
}

/** The macvlan master: a veth end in the simulated host. */
const MASTER = `${PREFIX}m`;

export function createMaster(): void {
  ipBatch([`link add ${MASTER} type veth peer name ${PREFIX}mp`, `link set ${MASTER} up`]);
}

export function deleteMaster(): void {
  ipBatch([`link del ${MASTER}`]);
}

interface Dev {
  /** veth: the host end; macvlan: the entry's key. */
  key: string;
  name: string;
  cidr: string;
}

function devices(kind: Kind, n: number): Dev[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    return kind === 'veth'
      ? { key: `${PREFIX}v${i}`, name: `ceth${i}`, cidr: `10.202.${i}.1/24` }
      : { key: `mv${i}`, name: `mv${i}`, cidr: `10.203.${i}.1/24` };
  });
}

let counter = 0;
const SCRIPT = `${REPO}/bench/iproute2-hook.sh`;

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function phasesFor(method: CreatedMethod, kind: Kind, devs: Dev[], ns: string): { setup(): void; teardown(): void } {
  switch (method) {
    case 'ours':
    case 'exe': {
      const dir = `${RUN_DIR}/created-${++counter}`;
      mkdirSync(dir, { recursive: true });
      const netDevices = Object.fromEntries(devs.map((d) => [d.key, kind === 'veth'
        ? { type: 'veth', name: d.name, addresses: [d.cidr] }
        : { type: 'macvlan', master: MASTER, mode: 'bridge', name: d.name, addresses: [d.cidr] }]));
      writeFileSync(`${dir}/config.json`, JSON.stringify({
        ociVersion: '1.0.2', linux: { namespaces: [{ type: 'network', path: nsPath(ns) }], netDevices },
      }));
      const id = `onb-${RID}-cr${counter}`;
      const executable = method === 'exe' ? EXE : HOOK;
      return { setup: () => hook('create-runtime', id, dir, STATE_DIR, executable), teardown: () => hook('poststop', id, dir, STATE_DIR, executable) };
    }
    case 'iproute2':
      return {
        setup: () => ok(SCRIPT, kind === 'veth'
          ? ['create-veth', ns, ...devs.map((d) => `${d.key}:${d.name}:${d.cidr}`)]
          : ['create-macvlan', ns, MASTER, ...devs.map((d) => `${d.name}:${d.cidr}`)], { env: {} }),
        teardown: () => ok(SCRIPT, ['delete', ns, ...devs.map((d) => d.name)], { env: {} }),
      };
    case 'floor':
      return {
        setup() {
          ipBatch(devs.map((d) => kind === 'veth'
            ? `link add ${d.key} up type veth peer name ${d.name} netns ${ns}`
            : `link add ${d.name} link ${MASTER} netns ${ns} type macvlan mode bridge`));
          ipBatch(devs.flatMap((d) => [`addr add ${d.cidr} dev ${d.name}`, `link set dev ${d.name} up`]), ns);
        },
        teardown: () => ipBatch(devs.map((d) => `link del dev ${d.name}`), ns),
      };
  }
}

/** One round of one method in a fresh netns (the caller's): N devices created and deleted, with checks. */
export function measureCreated(method: CreatedMethod, kind: Kind, n: number, ns: string): Phases2 {
  const devs = devices(kind, n);
  const what = `${method} ${kind} N=${n}`;
  const p = phasesFor(method, kind, devs, ns);
  const setup = timed(() => p.setup());
  const inside = hostView(ns);
  for (const d of devs) {
    const v = inside.get(d.name);
    if (!v?.up || !v.addrs.includes(d.cidr)) throw new Error(`${what}: ${d.name} is not in the container, up, with ${d.cidr}`);
  }
  const teardown = timed(() => p.teardown());
  const left = [...hostView(ns).keys()].filter((k) => k !== 'lo');
  const hostLeft = [...hostView().keys()].filter((k) => devs.some((d) => d.key === k));
  if (left.length || hostLeft.length) throw new Error(`${what}: left behind: ${[...left, ...hostLeft].join(' ')}`);
  return { setup, teardown };
}
