// What oci-netdev refuses whatever the policy says, decided from the observed host before anything
// is touched: devices the host depends on, devices the kernel cannot move, and macvlan passthru
// on a master the host uses. Pure, like the rest of the planner.

import type { DeviceSpec } from '../config/types';
import { policyRef } from '../config/policy';
import type { Policy } from '../config/policy';
import type { LinkInfo } from '../netlink/link';
import { AF_INET, AF_INET6, IFF_LOOPBACK, RT_SCOPE_LINK } from '../netlink/constants';
import type { Observed } from './observed';
import { PolicyError } from '../errors';

/** Stable rule ids, named in refusals as `always-refused: ID`. */
type AlwaysRefusedRule =
  | 'loopback'
  | 'default-route'
  | 'default-route-lower'
  | 'port'
  | 'netns-immutable'
  | 'upper-devices'
  | 'macvlan-master'
  | 'passthru-host-master';

export interface Refusal {
  rule: AlwaysRefusedRule;
  /** Why, as a sentence about the device: "it carries a default route ...". */
  reason: string;
}

/** Kinds whose IFLA_LINK names a peer, not a lower device: the peer is no upper of it. */
const PEER_KINDS = new Set(['veth', 'vxcan', 'netkit']);

/**
 * Kinds whose every device is netns-immutable (the kernel's dev->netns_immutable, called
 * netns_local before Linux 6.15 and NETIF_F_NETNS_LOCAL before 6.12): __dev_change_net_namespace
 * refuses them with EINVAL. From the setters in the kernel tree (see the 6.15 patch "net: rename
 * netns_local to netns_immutable"): net/bridge/br_device.c, drivers/net/bonding/bond_main.c,
 * drivers/net/team/team_core.c, drivers/net/vrf.c, drivers/net/amt.c, net/batman-adv,
 * net/hsr/hsr_device.c, net/ieee802154/6lowpan/core.c, and net/openvswitch/vport-internal_dev.c
 * (only a datapath's local port there, but rtnetlink does not say which: all are refused). ppp is
 * not among them. Used only when the kernel does not report IFLA_NETNS_IMMUTABLE itself.
 */
const NETNS_IMMUTABLE_KINDS = new Set(['bridge', 'bond', 'team', 'vrf', 'amt', 'batadv', 'hsr', 'lowpan', 'openvswitch']);

/**
 * The fallback tunnel device each tunnel module creates in every namespace (one per namespace,
 * so the kernel pins it there): ip_tunnel_init_net for ipip, gre, gretap, erspan and vti,
 * sit_init_net, ip6_tnl_init_net, ip6gre_init_net and vti6_init_net; name -> kind. Also the
 * multicast routing register devices (ipmr.c and ip6mr.c reg_vif_setup), which have no kind.
 */
const FALLBACK_TUNNELS = new Map<string, string | null>([
  ['tunl0', 'ipip'], ['gre0', 'gre'], ['gretap0', 'gretap'], ['erspan0', 'erspan'], ['ip_vti0', 'vti'],
  ['sit0', 'sit'], ['ip6tnl0', 'ip6tnl'], ['ip6gre0', 'ip6gre'], ['ip6_vti0', 'vti6'],
  ['pimreg', null], ['pim6reg', null],
]);

/** Why the kernel would refuse to move `link` to another namespace, or undefined. */
function netnsImmutable(link: LinkInfo): string | undefined {
  // Linux 6.15 and later say so themselves, for every kind and driver.
  if (link.netnsImmutable !== null) return link.netnsImmutable ? 'the kernel keeps it in its network namespace (netns-immutable)' : undefined;
  if (link.kind !== null && NETNS_IMMUTABLE_KINDS.has(link.kind)) return `it is a ${link.kind}, which the kernel keeps in its network namespace`;
  const fallback = FALLBACK_TUNNELS.get(link.name);
  if (fallback !== undefined && fallback === link.kind) return 'it is a fallback tunnel device, which the kernel keeps in its network namespace';
  return undefined;
}

const familyName = (f: number) => (f === AF_INET ? 'IPv4' : 'IPv6');

/** "carries a default route (IPv4) in the host network namespace", per link index. */
function defaultRouteRoots(observed: Observed): Map<number, string> {
  const families = new Map<number, Set<string>>();
  for (const r of observed.hostDefaultRoutes ?? []) {
    if (!families.has(r.index)) families.set(r.index, new Set());
    families.get(r.index)!.add(familyName(r.family));
  }
  return new Map([...families].map(([index, f]) => [index, `carries a default route (${[...f].sort().join(' and ')}) in the host network namespace`]));
}

/** Default-route roots, and links with addresses (IPv6 link-local aside, which every link has). */
function hostUseRoots(observed: Observed): Map<number, string> {
  const roots = defaultRouteRoots(observed);
  const byLink = new Map<number, string[]>();
  for (const a of observed.hostAddresses) {
    if (a.family === AF_INET6 && a.scope === RT_SCOPE_LINK) continue;
    byLink.set(a.index, [...(byLink.get(a.index) ?? []), `${a.address}/${a.prefixlen}`]);
  }
  for (const [index, [first, ...rest]] of byLink) {
    const more = rest.length ? ` and ${rest.length} more` : '';
    if (!roots.has(index)) roots.set(index, `has addresses in the host network namespace (${first}${more})`);
  }
  return roots;
}

interface Support {
  server: LinkInfo;
  via: 'lower' | 'peer' | 'master' | 'port';
  /** What the server is to the upper: "the lower device of macvlan m0". */
  relation: string;
}

/**
 * The devices `upper` stands on in the host namespace: its lower device or peer (IFLA_LINK in
 * this namespace), its master, and its ports.
 */
function supports(upper: LinkInfo, byIndex: Map<number, LinkInfo>, portsOf: Map<number, LinkInfo[]>): Support[] {
  const out: Support[] = [];
  const lower = upper.linkIndex !== null && upper.linkNetnsid === null && upper.linkIndex !== upper.index ? byIndex.get(upper.linkIndex) : undefined;
  if (lower && upper.kind !== null && PEER_KINDS.has(upper.kind)) out.push({ server: lower, via: 'peer', relation: `the ${upper.kind} peer of ${upper.name}` });
  else if (lower) out.push({ server: lower, via: 'lower', relation: `the lower device of ${upper.kind ?? 'device'} ${upper.name}` });
  const master = upper.masterIndex !== null ? byIndex.get(upper.masterIndex) : undefined;
  if (master) out.push({ server: master, via: 'master', relation: `the master of ${upper.name}` });
  for (const port of portsOf.get(upper.index) ?? []) out.push({ server: port, via: 'port', relation: `a port of ${upper.name}` });
  return out;
}

/**
 * Every host link the roots depend on, transitively through lower devices, veth peers and
 * masters, with what it does for them: index -> "carries ..." for a root, "is the lower device
 * of macvlan m0, which carries ..." for the others.
 */
function dependencies(observed: Observed, roots: Map<number, string>): Map<number, string> {
  const byIndex = new Map(observed.hostLinks.map((l) => [l.index, l]));
  const portsOf = new Map<number, LinkInfo[]>();
  for (const l of observed.hostLinks) if (l.masterIndex !== null) portsOf.set(l.masterIndex, [...(portsOf.get(l.masterIndex) ?? []), l]);
  const phrase = new Map(roots);
  const queue = [...roots.keys()];
  while (queue.length) {
    const upper = byIndex.get(queue.shift()!);
    if (!upper) continue;
    for (const { server, relation } of supports(upper, byIndex, portsOf)) {
      if (phrase.has(server.index)) continue;
      phrase.set(server.index, `is ${relation}, which ${phrase.get(upper.index)}`);
      queue.push(server.index);
    }
  }
  return phrase;
}

/** The devices stacked on `link` in the host namespace (not its veth peer): "macvlan m0", "port p0". */
function uppers(link: LinkInfo, observed: Observed): string[] {
  return observed.hostLinks.filter((u) => u.index !== link.index).flatMap((u) => {
    const stacked = u.linkIndex === link.index && u.linkNetnsid === null && !(u.kind !== null && PEER_KINDS.has(u.kind));
    return [...(stacked ? [`${u.kind ?? 'device'} ${u.name}`] : []), ...(u.masterIndex === link.index ? [`port ${u.name}`] : [])];
  });
}

/**
 * Why the host device `link` must not be moved whatever the policy says, or undefined.
 * `macvlanMasters`: ifindex of a host master -> id of another container whose journal holds a
 * macvlan on it (by ifindex, so a renamed master is still known). A request that moves the master
 * of its own macvlan is refused by src/config/load.ts.
 */
export function hostDeviceRefusal(link: LinkInfo, observed: Observed, macvlanMasters: Map<number, string>): Refusal | undefined {
  if (link.flags & IFF_LOOPBACK) return { rule: 'loopback', reason: 'it is the loopback device' };
  const roots = defaultRouteRoots(observed);
  const needed = dependencies(observed, roots).get(link.index);
  if (needed !== undefined) return { rule: roots.has(link.index) ? 'default-route' : 'default-route-lower', reason: `it ${needed}` };
  if (link.masterIndex) {
    const master = observed.hostLinks.find((l) => l.index === link.masterIndex);
    const kind = link.slaveKind ?? master?.kind ?? 'master';
    return { rule: 'port', reason: `it is a ${kind} port of ${master ? master.name : `link #${link.masterIndex}`}` };
  }
  const immutable = netnsImmutable(link);
  if (immutable) return { rule: 'netns-immutable', reason: immutable };
  const stacked = uppers(link, observed);
  if (stacked.length) return { rule: 'upper-devices', reason: `it has upper devices in the host network namespace: ${stacked.join(', ')}` };
  const owner = macvlanMasters.get(link.index);
  if (owner !== undefined) return { rule: 'macvlan-master', reason: `it is the master of a macvlan of container ${owner}` };
  return undefined;
}

/**
 * Why macvlan mode passthru must not take `master`, or undefined: passthru hands the master's
 * traffic to the container, so a master the host uses (a default route or addresses on it, or on
 * a device that stands on it) would cut the host off.
 */
export function passthruRefusal(master: LinkInfo, observed: Observed): Refusal | undefined {
  const used = dependencies(observed, hostUseRoots(observed)).get(master.index);
  return used === undefined ? undefined : { rule: 'passthru-host-master', reason: `${master.name} ${used}` };
}

/** One line naming the device, the rule and the policy file, as the policy's own refusals do. */
export function alwaysRefusedError(spec: DeviceSpec, subject: string, refusal: Refusal, policy: Policy): PolicyError {
  const rule = `always-refused: ${refusal.rule}`;
  return new PolicyError(
    `${subject} is refused by ${rule}, whatever ${policyRef(policy)} says: ${refusal.reason}`,
    { device: spec.key, source: spec.source, rule, policyFile: policy.file },
  );
}
