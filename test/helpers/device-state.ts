// What a move to another namespace destroys (routes, permanent neighbours, per-device sysctls,
// traffic control), set up with iproute2 on stand-in NICs and read back with iproute2 and sysctl,
// independently of the code under test.
import { isDeepStrictEqual } from 'node:util';
import { inSimHost, Sandbox, sh, shOk, sleep } from './sandbox';
import { uniqueName } from './names';

/** Two stand-in NICs with everything a move destroys set to non-default values. */
export interface RichNics {
  /** IPv4 and IPv6: routes, neighbours, sysctls, an htb qdisc with a class and a filter. */
  dual: string;
  /** IPv6 disabled, a pfifo root qdisc, clsact with filters on both sides, IPv4 routes. */
  v4only: string;
}

const ip = (ns: string, args: string[]) => shOk('ip', ['-n', ns, ...args]);
const tc = (ns: string, args: string[]) => shOk(...inSimHost(ns, ['tc', ...args]));
const sysctl = (ns: string, setting: string) => shOk(...inSimHost(ns, ['sysctl', '-q', '-w', setting]));

/** The finite-lifetime IPv6 address on `dual` and its prefix. */
export const FINITE_V6 = { cidr: '2001:db8:f::10/64', prefix: '2001:db8:f::/64' };

export function richNics(sb: Sandbox, ns: string): RichNics {
  const dual = uniqueName('nic');
  const v4only = uniqueName('nic');
  sb.createVethPair(ns, dual, uniqueName('peer'));
  sb.createVethPair(ns, v4only, uniqueName('peer'));

  // Sysctls first: forwarding=1 on IPv6 makes a device a router, which other settings build on.
  for (const s of ['accept_ra=0', 'forwarding=1', 'accept_redirects=0', 'hop_limit=42']) sysctl(ns, `net.ipv6.conf.${dual}.${s}`);
  for (const s of ['rp_filter=2', 'arp_ignore=1', 'forwarding=1', 'arp_announce=2']) sysctl(ns, `net.ipv4.conf.${dual}.${s}`);
  sysctl(ns, `net.ipv6.conf.${v4only}.disable_ipv6=1`);
  sysctl(ns, `net.ipv4.conf.${v4only}.rp_filter=1`);

  ip(ns, ['addr', 'add', '192.0.2.10/24', 'dev', dual]);
  ip(ns, ['addr', 'add', '2001:db8:a::10/64', 'dev', dual, 'nodad']);
  ip(ns, ['addr', 'add', FINITE_V6.cidr, 'dev', dual, 'nodad', 'valid_lft', '3000', 'preferred_lft', '2000']);
  ip(ns, ['addr', 'add', '198.18.0.10/24', 'dev', v4only]);

  ip(ns, ['route', 'add', '198.51.100.0/24', 'via', '192.0.2.1', 'dev', dual]);
  ip(ns, ['route', 'add', '203.0.113.0/24', 'dev', dual, 'metric', '50']);
  ip(ns, ['route', 'add', '10.9.0.0/16', 'via', '192.0.2.1', 'dev', dual, 'mtu', '1300', 'proto', 'static']);
  ip(ns, ['route', 'add', 'default', 'via', '192.0.2.1', 'dev', dual, 'table', '100']);
  ip(ns, ['rule', 'add', 'from', '192.0.2.10', 'table', '100']);
  ip(ns, ['route', 'add', '10.20.0.0/16', 'dev', dual, 'src', '192.0.2.10', 'scope', 'link', 'table', '1000']);
  ip(ns, ['-6', 'route', 'add', '2001:db8:b::/64', 'via', '2001:db8:a::1', 'dev', dual]);
  ip(ns, ['-6', 'route', 'add', '2001:db8:c::/48', 'dev', dual, 'metric', '300', 'pref', 'high']);
  ip(ns, ['-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', dual, 'table', '100']);
  ip(ns, ['route', 'add', '198.18.5.0/24', 'via', '198.18.0.1', 'dev', v4only, 'metric', '7']);

  ip(ns, ['neigh', 'add', '192.0.2.50', 'lladdr', '02:00:5e:00:53:50', 'nud', 'permanent', 'dev', dual]);
  ip(ns, ['neigh', 'add', '2001:db8:a::50', 'lladdr', '02:00:5e:00:53:51', 'nud', 'permanent', 'dev', dual, 'router']);
  ip(ns, ['neigh', 'add', '198.18.0.50', 'lladdr', '02:00:5e:00:53:52', 'nud', 'permanent', 'dev', v4only]);

  tc(ns, ['qdisc', 'add', 'dev', dual, 'root', 'handle', '1:', 'htb', 'default', '10']);
  tc(ns, ['class', 'add', 'dev', dual, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '10mbit', 'ceil', '20mbit']);
  // u32 is the one classifier every kernel here has.
  tc(ns, ['filter', 'add', 'dev', dual, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', '198.51.100.0/24', 'classid', '1:10']);
  tc(ns, ['qdisc', 'add', 'dev', v4only, 'root', 'pfifo', 'limit', '100']);
  // clsact with u32 filters on both sides, which share the qdisc's u32 hash table numbers.
  tc(ns, ['qdisc', 'add', 'dev', v4only, 'clsact']);
  tc(ns, ['filter', 'add', 'dev', v4only, 'ingress', 'protocol', 'ip', 'prio', '3', 'u32', 'match', 'ip', 'src', '10.0.0.0/8', 'classid', '1:2']);
  tc(ns, ['filter', 'add', 'dev', v4only, 'ingress', 'protocol', 'ip', 'prio', '3', 'u32', 'match', 'ip', 'src', '11.0.0.0/8', 'classid', '1:3']);
  tc(ns, ['filter', 'add', 'dev', v4only, 'egress', 'protocol', 'ip', 'prio', '4', 'u32', 'match', 'ip', 'dst', '10.0.0.0/8', 'classid', '1:1']);
  return { dual, v4only };
}

/** Everything the kernel lists for one device, for comparison before and after. */
export interface DeviceStateSnapshot {
  routes: unknown[];
  neighbours: unknown[];
  /** `sysctl -a` lines of net.ipv4.conf.DEV.* and net.ipv6.conf.DEV.*. */
  sysctls: string[];
  qdiscs: unknown[];
  classes: string[];
  filters: string[];
  rules: unknown[];
}

const json = (ns: string, argv: string[]): unknown[] => JSON.parse(shOk(...inSimHost(ns, argv)) || '[]') as unknown[];

const lines = (ns: string, argv: string[]): string[] => shOk(...inSimHost(ns, argv)).split('\n').filter(Boolean);

/** Qdisc option fields that count traffic (a DAD probe sent or not), not configuration. */
function withoutCounters(q: unknown): unknown {
  const { options, ...rest } = q as { options?: Record<string, unknown> };
  if (!options) return rest;
  const { direct_packets_stat: _d, ...kept } = options;
  return { ...rest, options: kept };
}

/**
 * Waits until no address of `devs` is tentative (at most 10 s): until then the kernel has not yet
 * added the routes of an IPv6 address, so a snapshot would miss them.
 */
export async function dadDone(ns: string, devs: string[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const tentative = devs.some((d) => (json(ns, ['ip', '-j', 'addr', 'show', 'dev', d]) as { addr_info: { tentative?: boolean }[] }[])
      .some((l) => l.addr_info.some((a) => a.tentative)));
    if (!tentative) return;
    await sleep(100);
  }
  throw new Error(`addresses of ${devs.join(', ')} in ${ns} stay tentative`);
}

/** Route fields that count down on their own. */
function withoutTimers(r: unknown): unknown {
  const { expires: _e, ...rest } = r as Record<string, unknown>;
  return rest;
}

export function deviceStateSnapshot(ns: string, dev: string): DeviceStateSnapshot {
  // sysctl -a reads /proc/sys of its own netns; stable_secret refuses reading and goes to stderr.
  const all = sh(...inSimHost(ns, ['sysctl', '-a'])).stdout.split('\n');
  const prefix = [`net.ipv4.conf.${dev}.`, `net.ipv6.conf.${dev}.`];
  return {
    routes: [
      ...json(ns, ['ip', '-j', '-4', 'route', 'show', 'table', 'all', 'dev', dev]),
      ...json(ns, ['ip', '-j', '-6', 'route', 'show', 'table', 'all', 'dev', dev]),
    ].map(withoutTimers),
    neighbours: json(ns, ['ip', '-j', 'neigh', 'show', 'dev', dev, 'nud', 'permanent']),
    sysctls: all.filter((l) => prefix.some((p) => l.startsWith(p))).sort(),
    qdiscs: json(ns, ['tc', '-j', 'qdisc', 'show', 'dev', dev]).map(withoutCounters),
    // tc 6.1 prints classes and filters as text only.
    classes: lines(ns, ['tc', 'class', 'show', 'dev', dev]),
    filters: [
      ...lines(ns, ['tc', 'filter', 'show', 'dev', dev]),
      // ingress and egress are refused (no output) on a device without clsact
      ...['ingress', 'egress'].flatMap((side) => sh(...inSimHost(ns, ['tc', 'filter', 'show', 'dev', dev, side])).stdout.split('\n').filter(Boolean)),
    ],
    rules: json(ns, ['ip', '-j', 'rule', 'show']),
  };
}

export type DeviceStates = Record<string, DeviceStateSnapshot>;

export const deviceStates = (ns: string, devs: string[]): DeviceStates =>
  Object.fromEntries(devs.map((d) => [d, deviceStateSnapshot(ns, d)]));

/**
 * deviceStates of the devices in `expected`, read again for up to 5 s until they equal it: the
 * kernel adds the routes of an IPv6 link-local address only once its duplicate detection is over.
 */
export async function deviceStatesSettledTo(ns: string, expected: DeviceStates): Promise<DeviceStates> {
  let now = deviceStates(ns, Object.keys(expected));
  for (let i = 0; i < 50 && !isDeepStrictEqual(now, expected); i++) {
    await sleep(100);
    now = deviceStates(ns, Object.keys(expected));
  }
  return now;
}
