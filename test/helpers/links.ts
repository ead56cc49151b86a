// LinkInfo values as the kernel would report them, for planner and policy unit tests.
import type { LinkInfo } from '../../src/netlink/link';

/** An up veth named `name` at `index`, with a MAC derived from the index; `extra` overrides. */
export function fakeLink(index: number, name: string, extra: Partial<LinkInfo> = {}): LinkInfo {
  return {
    index, name, flags: 0x1003, up: true, mtu: 1500, minMtu: 68, maxMtu: 65535, mac: `02:00:00:00:00:${index.toString(16).padStart(2, '0')}`,
    permanentMac: null, alias: '', kind: 'veth', masterIndex: null, slaveKind: null, linkIndex: null, linkNetnsid: null,
    netnsImmutable: null, parentBus: null, parentDev: null, group: 0, altNames: [], vxlan: null, macvlan: null, ipv6Token: '::',
    settings: { flags: 0, txqlen: 1000, xdp: {} },
    ...extra,
  };
}
