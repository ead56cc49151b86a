// Everything `ip`, `ethtool` and `sysctl` can change on a moved NIC from inside the container, done
// there by a hostile process, and the host's view of the NIC through the same tools, to compare
// before createRuntime and after the restore. Stand-in NICs are veth ends with four queues each
// way, so that `ethtool -L` has something to change; their peers stay on the host.
import { isDeepStrictEqual } from 'node:util';
import { loadKoffi } from '../../native/koffi-loader';
import * as libc from '../../native/libc';
import { NetlinkSocket } from '../../src/netlink/client';
import { attrMap, attrU32, decodeAttrs, encodeIfInfo, IFINFOMSG_LEN, MessageBuilder } from '../../src/netlink/codec';
import { Netns } from '../../src/netns/netns';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueId, uniqueName } from './names';
import { inSimHost, netnsPath, REPO_ROOT, sh, shOk, sleep } from './sandbox';
import { cniDirs, writeConflist } from './cni-networks';
import { configBundle, ociState, traced, userStderr } from './netdevices';
import type { Rig } from './netdevices';
import type { Test } from 'tap';

const ip = (ns: string, args: string[]) => shOk('ip', ['-n', ns, ...args]);
/** A command inside the network namespace at `path` (nsenter --net). */
const inside = (path: string, argv: string[]) => shOk('nsenter', [`--net=${path}`, ...argv]);

// Numbers of linux/if_link.h and linux/rtnetlink.h, written here so that the helper does not
// depend on the code under test.
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const IFLA_IFNAME = 3;
const IFLA_XDP = 43;
const IFLA_XDP_FD = 1;
const IFLA_XDP_FLAGS = 3;
const XDP_FLAGS_SKB_MODE = 2;
const XDP_FLAGS_DRV_MODE = 4;
const IFLA_GSO_IPV4_MAX_SIZE = 63;
const IFLA_GRO_IPV4_MAX_SIZE = 64;

/** The stand-in NIC's IPv6 address, which must come home valid, not tentative. */
export const NIC_V6 = '2001:db8:20::1';

/**
 * A stand-in NIC in `ns` (veth, 4 tx and 4 rx queues, peer on the host, both up) with settings of
 * its own: addresses (the IPv6 one through duplicate address detection), an IPv6 MTU below the
 * link's, neighbour table settings, generic receive offload on and two tx queues in use.
 */
export function queuedNic(ns: string): string {
  const nic = uniqueName('nic');
  const peer = uniqueName('peer');
  ip(ns, ['link', 'add', nic, 'numtxqueues', '4', 'numrxqueues', '4', 'type', 'veth', 'peer', 'name', peer, 'numtxqueues', '4', 'numrxqueues', '4']);
  ip(ns, ['link', 'set', peer, 'up']);
  ip(ns, ['link', 'set', nic, 'up', 'txqueuelen', '900']);
  ip(ns, ['addr', 'add', '192.0.2.20/24', 'dev', nic]);
  ip(ns, ['addr', 'add', `${NIC_V6}/64`, 'dev', nic]);
  shOk(...inSimHost(ns, ['sysctl', '-q', '-w', `net.ipv6.conf.${nic}.mtu=1400`, `net.ipv4.conf.${nic}.rp_filter=2`,
    `net.ipv4.neigh.${nic}.ucast_solicit=7`, `net.ipv4.neigh.${nic}.base_reachable_time_ms=12345`, `net.ipv6.neigh.${nic}.retrans_time_ms=2500`]));
  // Neighbour entries an operator or a control plane configured, each kind the kernel keeps.
  for (const entry of [
    ['192.0.2.31', 'lladdr', '02:00:00:00:00:31', 'nud', 'permanent'],
    ['192.0.2.32', 'lladdr', '02:00:00:00:00:32', 'nud', 'noarp'],
    ['192.0.2.33', 'lladdr', '02:00:00:00:00:33', 'extern_learn'],
    ['192.0.2.34', 'lladdr', '02:00:00:00:00:34', 'nud', 'stale', 'extern_learn'],
    ['192.0.2.35', 'managed'],
    ['2001:db8:20::31', 'lladdr', '02:00:00:00:00:31', 'nud', 'permanent', 'router'],
    ['proxy', '192.0.2.36'],
    ['proxy', '2001:db8:20::36'],
  ]) ip(ns, ['neigh', 'add', ...entry, 'dev', nic]);
  // Nexthop objects: one a route goes through, one nothing uses, a group of the NIC's only (the
  // kernel deletes it with them) and a group with a member on another device (it lives on without
  // the NIC's). Not on the peer: the kernel deletes a nexthop whose link loses its carrier.
  const other = uniqueName('oth');
  const otherPeer = uniqueName('othp');
  ip(ns, ['link', 'add', other, 'type', 'veth', 'peer', 'name', otherPeer]);
  ip(ns, ['link', 'set', otherPeer, 'up']);
  ip(ns, ['link', 'set', other, 'up']);
  ip(ns, ['nexthop', 'add', 'id', '101', 'via', '192.0.2.1', 'dev', nic]);
  ip(ns, ['nexthop', 'add', 'id', '102', 'via', '192.0.2.2', 'dev', nic]);
  ip(ns, ['nexthop', 'add', 'id', '103', 'via', '192.0.2.3', 'dev', nic]);
  ip(ns, ['nexthop', 'add', 'id', '104', 'dev', other]);
  ip(ns, ['nexthop', 'add', 'id', '110', 'group', '101/102,3']);
  ip(ns, ['nexthop', 'add', 'id', '111', 'group', '102/104']);
  ip(ns, ['route', 'add', '198.51.100.0/24', 'nhid', '101']);
  ip(ns, ['route', 'add', '198.51.101.0/24', 'nhid', '110', 'table', '300']);
  ip(ns, ['route', 'add', '198.51.102.0/24', 'nhid', '111']);
  shOk(...inSimHost(ns, ['ethtool', '-K', nic, 'gro', 'on']));
  shOk(...inSimHost(ns, ['ethtool', '-L', nic, 'rx', '4', 'tx', '2']));
  return nic;
}

/** A two-instruction XDP program (r0 = XDP_PASS; exit) loaded with bpf(2); its fd. */
function loadXdpPass(): number {
  const koffi = loadKoffi();
  const lib = koffi.load('libc.so.6');
  const attrType = koffi.struct({
    prog_type: 'uint32', insn_cnt: 'uint32', insns: 'const void *', license: 'const char *',
    log_level: 'uint32', log_size: 'uint32', log_buf: 'uint64', kern_version: 'uint32', prog_flags: 'uint32',
    prog_name: 'char[16]', prog_ifindex: 'uint32', expected_attach_type: 'uint32', rest: 'uint8[56]',
  });
  // syscall(2) reads its arguments from the registers a fixed-argument call fills the same way.
  const syscall = lib.func('syscall', 'long', ['long', 'int', koffi.pointer(attrType), 'uint32']) as (...a: unknown[]) => number;
  const SYS_BPF: Partial<Record<string, number>> = { x64: 321, arm64: 280 };
  const BPF_PROG_LOAD = 5;
  const BPF_PROG_TYPE_XDP = 6;
  const XDP_PASS = 2;
  const insns = Buffer.alloc(16);
  insns.writeUInt8(0xb7, 0); // BPF_ALU64 | BPF_MOV | BPF_K, dst r0
  insns.writeInt32LE(XDP_PASS, 4);
  insns.writeUInt8(0x95, 8); // BPF_JMP | BPF_EXIT
  const fd = syscall(SYS_BPF[process.arch], BPF_PROG_LOAD, {
    prog_type: BPF_PROG_TYPE_XDP, insn_cnt: 2, insns, license: 'GPL', log_level: 0, log_size: 0, log_buf: 0,
    kern_version: 0, prog_flags: 0, prog_name: 'ondt_pass', prog_ifindex: 0, expected_attach_type: 0, rest: new Array(56).fill(0),
  }, koffi.sizeof(attrType));
  if (fd < 0) throw new Error(`bpf(BPF_PROG_LOAD) failed: errno ${koffi.errno()}`);
  return fd;
}

/** The ifindex of `dev` in the namespace the socket is in. */
function indexOf(sock: NetlinkSocket, dev: string): number {
  const req = new MessageBuilder(RTM_GETLINK, 0).raw(encodeIfInfo({})).str(IFLA_IFNAME, dev);
  const [reply] = sock.request(req, { op: 'get link', device: dev }).filter((m) => m.type === RTM_NEWLINK);
  return reply.payload.readInt32LE(4);
}

/** RTM_NEWLINK on `dev` with the attributes `fill` adds, from within the namespace at `path`. */
function setLinkRaw(path: string, dev: string, fill: (b: MessageBuilder) => void): void {
  using ns = Netns.open(path);
  ns.within(() => {
    using sock = NetlinkSocket.open();
    const req = new MessageBuilder(RTM_NEWLINK, 0).raw(encodeIfInfo({ index: indexOf(sock, dev) }));
    fill(req);
    sock.request(req, { op: 'hostile change', device: dev });
  });
}

/** A new XDP program (passes every packet) on `dev` in the namespace at `path`, in place of any attached in that mode. */
export function attachXdp(path: string, dev: string, mode: 'drv' | 'skb'): void {
  const prog = loadXdpPass();
  try {
    const flags = mode === 'drv' ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    setLinkRaw(path, dev, (b) => b.nest(IFLA_XDP, (x) => x.s32(IFLA_XDP_FD, prog).u32(IFLA_XDP_FLAGS, flags)));
  } finally {
    libc.close(prog);
  }
}

/**
 * What a process with CAP_NET_ADMIN in the container does to the moved NIC `dev`, in the network
 * namespace at `path`: every link flag user space sets, queue length, GSO/GRO sizes and segments,
 * link mode and broadcast address (`ip`); offload features and channels (`ethtool`, the ones a
 * veth has); per-device sysctls; and an XDP program attached in driver or generic (skb) mode (the
 * kernel allows one of the two at a time).
 */
export function tamper(path: string, dev: string, xdp: 'drv' | 'skb'): void {
  inside(path, ['ip', 'link', 'set', dev, 'promisc', 'on', 'allmulticast', 'on', 'arp', 'off', 'multicast', 'off', 'dynamic', 'on',
    'trailers', 'off', 'txqueuelen', '5', 'gso_max_size', '30000', 'gso_max_segs', '100', 'gro_max_size', '30000',
    'mode', 'dormant', 'broadcast', '12:34:56:78:9a:bc']);
  // iproute2 6.1 cannot set the IPv4 sizes yet.
  setLinkRaw(path, dev, (b) => b.u32(IFLA_GSO_IPV4_MAX_SIZE, 20000).u32(IFLA_GRO_IPV4_MAX_SIZE, 20000));
  inside(path, ['ethtool', '-K', dev, 'tso', 'off', 'gso', 'off', 'rx', 'off', 'tx', 'off', 'sg', 'off', 'gro', 'off',
    'rx-gro-list', 'on', 'rx-udp-gro-forwarding', 'on', 'tx-nocache-copy', 'on', 'rxvlan', 'off', 'txvlan', 'off']);
  inside(path, ['sysctl', '-q', '-w', `net.ipv6.conf.${dev}.mtu=1300`, `net.ipv4.conf.${dev}.rp_filter=0`, `net.ipv6.conf.${dev}.hop_limit=7`,
    `net.ipv4.neigh.${dev}.ucast_solicit=1`, `net.ipv4.neigh.${dev}.gc_stale_time=5`, `net.ipv6.neigh.${dev}.mcast_solicit=9`]);
  attachXdp(path, dev, xdp);
  // After the XDP program: a veth in driver mode needs as many rx queues as its peer has tx queues.
  inside(path, ['ethtool', '-L', dev, 'rx', xdp === 'drv' ? '4' : '1', 'tx', '1']);
}

/** The container's view of `dev` after tamper: what the test checks it did. */
export function tampered(ctr: string, dev: string): { flags: string[]; txqlen: number; xdp: unknown } {
  const [l] = JSON.parse(shOk('ip', ['-n', ctr, '-d', '-j', 'link', 'show', 'dev', dev])) as { flags: string[]; txqlen: number; xdp?: unknown }[];
  return { flags: l.flags, txqlen: l.txqlen, xdp: l.xdp };
}

/** The host's view of one device, through iproute2, ethtool and sysctl. */
export interface HostView {
  /**
   * `ip -d -j link show`, whole: without -s it holds no counters, and the ifindex comes back
   * (oci-netdev asks for it), so nothing is left out.
   */
  link: unknown;
  /** IFLA_GSO_IPV4_MAX_SIZE and IFLA_GRO_IPV4_MAX_SIZE, which iproute2 6.1 does not print. */
  ipv4Sizes: (number | null)[];
  /** `ethtool -k`, `-l` and the link settings (`ethtool DEV`): what a veth reports. */
  ethtool: Record<string, string>;
  /** net.ipv4.{conf,neigh}.DEV.* and net.ipv6.{conf,neigh}.DEV.*, as `sysctl -a` lists them. */
  sysctls: string[];
  /** `ip -j addr`'s addresses with every flag (tentative included), in the kernel's order. */
  addresses: unknown[];
  /** `ip -6 token get`: the IPv6 interface identifier. */
  token: string;
  /**
   * `ip maddr show`'s link-layer multicast addresses, `static` marking those added with `ip maddr
   * add`; sorted, as the kernel lists them in the order the device joined them, which follows
   * what happened to it (up, addresses) rather than what was configured.
   */
  maddr: string[];
  /**
   * `ip -j neigh show nud all` and `ip -j neigh show proxy`, but for what the kernel makes and
   * changes by itself: the entries of multicast and broadcast destinations, and a managed entry's
   * state (it probes on its own).
   */
  neighbours: unknown[];
  /**
   * `ip -j nexthop show` (the namespace's: the test's only), and the routes of every
   * table and both families out of the NIC or through a nexthop object, the kernel's own too.
   */
  nexthops: unknown[];
  routes: unknown[];
}

function ipv4Sizes(ns: string, dev: string): (number | null)[] {
  using handle = Netns.open(netnsPath(ns));
  return handle.within(() => {
    using sock = NetlinkSocket.open();
    const req = new MessageBuilder(RTM_GETLINK, 0).raw(encodeIfInfo({})).str(IFLA_IFNAME, dev);
    const [reply] = sock.request(req, { op: 'get link', device: dev }).filter((m) => m.type === RTM_NEWLINK);
    const attrs = attrMap(decodeAttrs(reply.payload, IFINFOMSG_LEN));
    return [IFLA_GSO_IPV4_MAX_SIZE, IFLA_GRO_IPV4_MAX_SIZE].map((t) => { const a = attrs.get(t); return a ? attrU32(a) : null; });
  });
}

export function hostView(ns: string, dev: string): HostView {
  const ethtool = (args: string[]) => shOk(...inSimHost(ns, ['ethtool', ...args]));
  const all = sh(...inSimHost(ns, ['sysctl', '-a'])).stdout.split('\n');
  const [addr] = JSON.parse(shOk('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', dev])) as { addr_info: unknown[] }[];
  return {
    link: (JSON.parse(shOk('ip', ['-n', ns, '-d', '-j', 'link', 'show', 'dev', dev])) as unknown[])[0],
    ipv4Sizes: ipv4Sizes(ns, dev),
    ethtool: { '-k': ethtool(['-k', dev]), '-l': ethtool(['-l', dev]), settings: ethtool([dev]) },
    sysctls: all.filter((l) => ['ipv4', 'ipv6'].some((f) => ['conf', 'neigh'].some((t) => l.startsWith(`net.${f}.${t}.${dev}.`)))).sort(),
    addresses: addr.addr_info,
    token: shOk('ip', ['-n', ns, '-6', 'token', 'get', 'dev', dev]).trim(),
    maddr: shOk('ip', ['-n', ns, 'maddr', 'show', 'dev', dev]).split('\n').map((l) => l.trim()).filter((l) => l.startsWith('link ')).sort(),
    neighbours: neighbours(ns, dev),
    nexthops: JSON.parse(shOk('ip', ['-n', ns, '-j', 'nexthop', 'show'])) as unknown[],
    routes: ['-4', '-6'].flatMap((f) => JSON.parse(shOk('ip', ['-n', ns, f, '-j', 'route', 'show', 'table', 'all'])) as { dev?: string; nhid?: number }[])
      .filter((r) => r.dev === dev || r.nhid !== undefined).map((r) => JSON.stringify(r)).sort(),
  };
}

function neighbours(ns: string, dev: string): unknown[] {
  type Entry = { dst: string; lladdr?: string; managed?: null; state?: string[] };
  const show = (args: string[]) => JSON.parse(shOk('ip', ['-n', ns, '-j', 'neigh', 'show', ...args, 'dev', dev])) as Entry[];
  const group = (e: Entry) => e.lladdr !== undefined && (parseInt(e.lladdr.slice(0, 2), 16) & 1) === 1;
  return [...show(['nud', 'all']).filter((e) => !group(e)), ...show(['proxy'])]
    .map((e) => ('managed' in e ? { ...e, state: undefined } : e))
    .sort((a, b) => a.dst.localeCompare(b.dst));
}

/** hostView, read again for up to 5 s until it equals `expected`: carrier, operstate and link-local DAD lag. */
export async function hostViewSettledTo(ns: string, dev: string, expected: HostView): Promise<HostView> {
  let now = hostView(ns, dev);
  for (let i = 0; i < 50 && !isDeepStrictEqual(now, expected); i++) {
    await sleep(100);
    now = hostView(ns, dev);
  }
  return now;
}

/** The global addresses of `dev` that are tentative (duplicate address detection running again). */
export function tentativeGlobals(ns: string, dev: string): string[] {
  const [addr] = JSON.parse(shOk('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', dev])) as { addr_info: { local: string; scope: string; tentative?: boolean }[] }[];
  return addr.addr_info.filter((a) => a.scope === 'global' && a.tentative).map((a) => a.local);
}

/** Three stand-in NICs as a host configures IPv6 on them; see hostConfiguredNics. */
export interface HostConfiguredNics {
  /** No generated link-local: two static ones, a token, static multicast addresses, altnames, global addresses. */
  manual: string;
  /** A stable-privacy link-local from a secret of its own (net.ipv6.conf.DEV.stable_secret). */
  stable: string;
  /** A random link-local (the kernel's secret for the device), and a static one added after it. */
  random: string;
}

/** Static link-layer multicast addresses of the `manual` NIC: one the kernel joins too (all-nodes). */
export const MANUAL_MADDRS = ['33:33:00:00:a1:01', '33:33:00:00:00:01'];
/** The `manual` NIC's IPv6 token. */
export const MANUAL_TOKEN = '::1:2:3:4';

/**
 * NICs (veth ends, peers up on the host) with the IPv6 configuration a host gives and the kernel
 * does not carry across namespaces: link-local addresses the host added (addrgenmode none), a
 * token, stable_secret and the link-local it makes, random link-locals; and what depends on order:
 * altnames (listed in the order they were added) and IPv6 addresses (newest first per scope).
 */
export function hostConfiguredNics(ns: string): HostConfiguredNics {
  const nics = { manual: uniqueName('man'), stable: uniqueName('stb'), random: uniqueName('rnd') };
  const sysctl = (...settings: string[]) => shOk(...inSimHost(ns, ['sysctl', '-q', '-w', ...settings]));
  for (const nic of Object.values(nics)) {
    const peer = uniqueName('peer');
    ip(ns, ['link', 'add', nic, 'type', 'veth', 'peer', 'name', peer]);
    ip(ns, ['link', 'set', peer, 'up']);
  }
  const { manual, stable, random } = nics;
  ip(ns, ['link', 'set', manual, 'addrgenmode', 'none']);
  ip(ns, ['link', 'property', 'add', 'dev', manual, 'altname', `${manual}-z`]);
  ip(ns, ['link', 'property', 'add', 'dev', manual, 'altname', `${manual}-a`]);
  // A token takes a device that accepts router advertisements.
  sysctl(`net.ipv6.conf.${manual}.accept_ra=2`);
  ip(ns, ['link', 'set', manual, 'up']);
  for (const a of ['fe80::a1/64', 'fe80::a2/64', '2001:db8:21::1/64', '2001:db8:21::2/64', '2001:db8:21::3/64']) ip(ns, ['addr', 'add', a, 'dev', manual]);
  ip(ns, ['token', 'set', `${MANUAL_TOKEN}/64`, 'dev', manual]);
  for (const m of MANUAL_MADDRS) ip(ns, ['maddr', 'add', m, 'dev', manual]);

  sysctl(`net.ipv6.conf.${stable}.stable_secret=2001:db8::5ec:1`);
  ip(ns, ['link', 'set', stable, 'up']);

  ip(ns, ['link', 'set', random, 'addrgenmode', 'random']);
  ip(ns, ['link', 'set', random, 'up']);
  ip(ns, ['addr', 'add', 'fe80::c1/64', 'dev', random]);
  return nics;
}

/**
 * What a process with CAP_NET_ADMIN in the container, in the network namespace at `path`, does to
 * the NICs of hostConfiguredNics (`manual`, `stable` and `random` are their names there): the
 * manual NIC's altnames in another order, a token and a static multicast address of its own; a
 * secret and address generation mode of its own on the other two.
 */
export function tamperHostConfigured(path: string, nics: HostConfiguredNics): void {
  const [{ altnames }] = JSON.parse(inside(path, ['ip', '-j', 'link', 'show', 'dev', nics.manual])) as { altnames: string[] }[];
  inside(path, ['ip', 'link', 'property', 'del', 'dev', nics.manual, 'altname', altnames[0]]);
  inside(path, ['ip', 'link', 'property', 'add', 'dev', nics.manual, 'altname', altnames[0]]);
  inside(path, ['ip', 'token', 'set', '::bad/64', 'dev', nics.manual]);
  inside(path, ['ip', 'maddr', 'add', '33:33:00:00:ba:d1', 'dev', nics.manual]);
  inside(path, ['sysctl', '-q', '-w', `net.ipv6.conf.${nics.stable}.stable_secret=2001:db8::bad`, `net.ipv6.conf.${nics.random}.addr_gen_mode=0`]);
}

/**
 * createRuntime of `netDevices` and of a CNI network whose only plugin is the container's process
 * at work on the moved NICs while the network's ADD runs: it calls `act` of this module with
 * CNI_NETNS and `args`, then fails the ADD. Checks that createRuntime fails on it and that the
 * rollback restored everything without a word.
 */
export function rolledBackAfter(t: Test, rig: Rig, netDevices: Record<string, object>, act: 'tamper' | 'tamperHostConfigured', args: unknown[]): void {
  const dirs = cniDirs(rig.sb);
  const plugin = join(dirs.pluginDir, 'tamperer');
  writeFileSync(plugin, `#!/usr/bin/env node
require('fs').readFileSync(0, 'utf8');
if (process.env.CNI_COMMAND === 'VERSION') { process.stdout.write('{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'); process.exit(0); }
if (process.env.CNI_COMMAND === 'ADD') {
  require(${JSON.stringify(join(REPO_ROOT, 'dist/test/helpers/device-settings.js'))}).${act}(process.env.CNI_NETNS, ...${JSON.stringify(args)});
  process.stdout.write('{"cniVersion":"1.0.0","code":111,"msg":"tamperer fails ADD"}');
  process.exit(1);
}
`);
  chmodSync(plugin, 0o755);
  const net = uniqueId('net');
  writeConflist(dirs, net, [{ type: 'tamperer' }]);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { ...netDevices, [net]: { type: 'cni', name: 'eth0' } } });
  const r = traced(rig, 'create-runtime', ociState(uniqueId('ctr'), bundle, 'creating'), dirs.env);
  t.not(r.status, 0, 'create-runtime fails');
  t.match(userStderr(r.stderr), /tamperer fails ADD/, "on the plugin's error, after the NICs moved and were changed");
  t.notMatch(userStderr(r.stderr), /WARNING|not restored|not as before|rollback also failed/, 'the rollback restored everything');
}
