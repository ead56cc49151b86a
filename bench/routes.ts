// A hook on a host with a large routing table: one device moved into a fresh netns and back, on a
// simulated host with ROUTES routes in its main table and on one without, the two taking turns
// round by round, and the peak RSS of each hook. Each host is a throwaway netns of its own, with
// a gateway link that carries a default route and the routes, and a stand-in NIC that moves.
import { mkdirSync, writeFileSync } from 'node:fs';
import { HOOK, NS_PREFIX, PREFIX, RID, RUN_DIR, fmt, log, median, nsPath, ok, run } from './util';
import { settle } from './moves';

/** BENCH_ROUTES overrides the size of the large table. */
const ROUTES = Number(process.env.BENCH_ROUTES) || 1_000_000;

export interface RoutesResult {
  routes: number;
  /** Loading them with one `ip -batch`. */
  loadMs: number;
  /** Medians: [no extra routes, ROUTES routes]. */
  create: [number, number];
  poststop: [number, number];
  /** The kernel floor (ip -batch) of the same move in and out: what the kernel itself pays for the routes. */
  floorIn: [number, number];
  floorOut: [number, number];
  /** Peak RSS, KiB. */
  rssCreate: [number, number];
  rssPoststop: [number, number];
}

interface Host {
  ns: string;
  nic: string;
}

function makeHost(tag: string): Host {
  const ns = `${NS_PREFIX}rt${tag}`;
  const nic = `${PREFIX}r${tag}n`;
  const gw = `${PREFIX}r${tag}g`;
  ok('ip', ['netns', 'add', ns]);
  ok('ip', ['-n', ns, '-batch', '-'], {
    input: [
      `link add ${nic} type veth peer name ${nic}p`, `addr add 10.98.0.1/24 dev ${nic}`, `link set ${nic} up`, `link set ${nic}p up`,
      `link add ${gw} type veth peer name ${gw}p`, `addr add 10.99.0.1/16 dev ${gw}`, `link set ${gw} up`, `link set ${gw}p up`,
      `route add default via 10.99.0.2 dev ${gw}`,
    ].join('\n') + '\n',
  });
  return { ns, nic };
}

/** `count` /24 routes through the gateway, from 20.0.0.0 up, in one `ip -batch`; its time, ms. */
function loadRoutes(host: Host, count: number): number {
  const file = `${RUN_DIR}/routes.batch`;
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(`route add ${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24 via 10.99.0.2`);
  writeFileSync(file, lines.join('\n') + '\n');
  return ok('ip', ['-n', host.ns, '-batch', file], { timeoutMs: 1_800_000 }).ms;
}

let rounds = 0;

/** One create-runtime and one poststop on `host`, as a runtime runs them; ms each, checked. */
function cycle(host: Host, measureRss = false): { create: number; poststop: number } {
  const ct = `${NS_PREFIX}rc${++rounds}`;
  ok('ip', ['netns', 'add', ct]);
  try {
    const dir = `${RUN_DIR}/bundle-rt${rounds}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/config.json`, JSON.stringify({
      ociVersion: '1.0.2', linux: { namespaces: [{ type: 'network', path: nsPath(ct) }], netDevices: { [host.nic]: { name: 'eth1' } } },
    }));
    const id = `onb-${RID}-rt${rounds}`;
    const hook = (stage: string, state: object) => {
      const argv = ['nsenter', `--net=${nsPath(host.ns)}`, HOOK, '--state-dir', `${RUN_DIR}/rtstate`, stage];
      const r = measureRss ? run('/usr/bin/time', ['-f', 'RSS %M', ...argv], { env: {}, input: JSON.stringify(state) })
        : run(argv[0], argv.slice(1), { env: {}, input: JSON.stringify(state) });
      if (r.status !== 0) throw new Error(`routes: ${stage} on ${host.ns} failed (${r.status}): ${r.stderr.trim()}`);
      return measureRss ? Number(/RSS (\d+)/.exec(r.stderr)![1]) : r.ms;
    };
    const create = hook('create-runtime', { ociVersion: '1.0.2', id, status: 'creating', pid: process.pid, bundle: dir });
    ok('ip', ['-n', ct, 'link', 'show', 'eth1']);
    const poststop = hook('poststop', { ociVersion: '1.0.2', id, status: 'stopped', bundle: dir });
    ok('ip', ['-n', host.ns, 'link', 'show', host.nic]);
    return { create, poststop };
  } finally {
    ok('ip', ['netns', 'del', ct]);
    settle();
  }
}

/**
 * The same move by `ip -batch`, one process per namespace and direction, as bench/moves.ts's floor:
 * the kernel flushes a leaving device's routes by walking the tables, so the floor grows with them.
 */
function floorCycle(host: Host): { in: number; out: number } {
  const ct = `${NS_PREFIX}rf${++rounds}`;
  ok('ip', ['netns', 'add', ct]);
  try {
    const into = ok('ip', ['-n', host.ns, '-batch', '-'], { input: `link set ${host.nic} down\nlink set ${host.nic} netns ${ct} name eth1\n` }).ms
      + ok('ip', ['-n', ct, '-batch', '-'], { input: 'addr add 10.98.0.1/24 dev eth1\nlink set eth1 up\n' }).ms;
    const back = ok('ip', ['-n', ct, '-batch', '-'], { input: `link set eth1 down\nlink set eth1 netns ${host.ns} name ${host.nic}\n` }).ms
      + ok('ip', ['-n', host.ns, '-batch', '-'], { input: `addr add 10.98.0.1/24 dev ${host.nic}\nlink set ${host.nic} up\n` }).ms;
    return { in: into, out: back };
  } finally {
    ok('ip', ['netns', 'del', ct]);
    settle();
  }
}

export function routes(roundCount: number): RoutesResult {
  const hosts = [makeHost('0'), makeHost('1')];
  try {
    log(`routes: loading ${ROUTES} routes with ip -batch`);
    const loadMs = loadRoutes(hosts[1], ROUTES);
    log(`routes: loaded in ${fmt(loadMs)} ms`);
    const samples = hosts.map(() => ({ create: [] as number[], poststop: [] as number[], floorIn: [] as number[], floorOut: [] as number[] }));
    for (let r = 0; r < roundCount; r++) {
      for (const i of r % 2 ? [1, 0] : [0, 1]) {
        const c = cycle(hosts[i]);
        samples[i].create.push(c.create);
        samples[i].poststop.push(c.poststop);
        const f = floorCycle(hosts[i]);
        samples[i].floorIn.push(f.in);
        samples[i].floorOut.push(f.out);
      }
    }
    const rss = hosts.map((h) => cycle(h, true));
    const pair = (f: (i: number) => number): [number, number] => [f(0), f(1)];
    return {
      routes: ROUTES,
      loadMs,
      create: pair((i) => median(samples[i].create)),
      poststop: pair((i) => median(samples[i].poststop)),
      floorIn: pair((i) => median(samples[i].floorIn)),
      floorOut: pair((i) => median(samples[i].floorOut)),
      rssCreate: pair((i) => rss[i].create),
      rssPoststop: pair((i) => rss[i].poststop),
    };
  } finally {
    for (const h of hosts) run('ip', ['netns', 'del', h.ns]);
  }
}
