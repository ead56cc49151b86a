// A version-2 journal written before the journal had its own record types
// (test/fixtures/journal-v2.json, see test/unit/records.test.ts) loads, and its records go back
// into a real kernel through the converters: the addresses, routes (multipath, metrics, tables,
// IPv6), permanent neighbours and traffic control of its two moved NICs on fresh stand-in NICs,
// and its veth's host-end addresses and container routes on a third. Read back from the kernel and
// converted to records again, they are what the journal says, on the new ifindexes. In-process,
// in a throwaway netns.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addAddress, listAddresses } from '../../src/netlink/address';
import type { NetlinkSocket } from '../../src/netlink/client';
import { getLink } from '../../src/netlink/link';
import { listConfiguredNeighbours } from '../../src/netlink/neighbour';
import { addRoute, listDeviceRoutes } from '../../src/netlink/route';
import { listTc } from '../../src/netlink/tc';
import { Netns } from '../../src/netns/netns';
import { restoreRoutesNeighboursTc } from '../../src/apply/device-state';
import { addressInfo, addressRecord, neighbourRecord, routeEntry, routeRecord, tcRecord } from '../../src/apply/convert-records';
import { isKernelLinkLocal, translateLabel } from '../../src/plan/plan';
import type { AddressRecord, RouteRecord } from '../../src/state/journal-records';
import { StateDir } from '../../src/state/statedir';
import type { Journal } from '../../src/state/statedir';
import { uniqueName } from '../helpers/names';
import { netnsPath, REPO_ROOT, Sandbox } from '../helpers/sandbox';

const fixtureLine = fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/journal-v2.json'), 'utf8');
const fixtureId = (JSON.parse(fixtureLine) as { journal: Journal }).journal.containerId;

/** The fixture, through the state layer: version, checksum and schema checked. */
function loadFixture(sb: Sandbox): Journal {
  const store = new StateDir(sb.tempDir('state'));
  store.lockContainer(fixtureId).release();
  fs.writeFileSync(path.join(store.containerDir(fixtureId), 'journal.json'), fixtureLine, { mode: 0o600 });
  const j = store.readJournal(fixtureId);
  if (!j) throw new Error('the fixture journal did not load');
  return j;
}

/** A route as recorded on ifindex `from`, now on `to`. */
const movedTo = (r: RouteRecord, from: number, to: number): RouteRecord => ({
  ...r,
  ...(r.oif === from ? { oif: to } : {}),
  ...(r.multipath ? { multipath: r.multipath.map((nh) => (nh.ifindex === from ? { ...nh, ifindex: to } : nh)) } : {}),
});

const sortedJson = (list: unknown[]): string[] => list.map((x) => JSON.stringify(x)).sort();

/** What an address is, apart from the lifetimes left, which run down. */
const addressKey = ({ preferredLifetime: _p, validLifetime: _v, ...a }: AddressRecord): string => JSON.stringify(a);

interface Stage {
  sb: Sandbox;
  sock: NetlinkSocket;
  /** A fresh stand-in NIC (a veth end, both ends up) in the throwaway netns. */
  nic: () => { name: string; index: number };
}

function stage(t: Test): Stage {
  const sb = new Sandbox(t);
  const ns = sb.createNetns('records');
  const handle = Netns.open(netnsPath(ns));
  const sock = handle.socket();
  t.teardown(() => {
    sock.close();
    handle.close();
  });
  return {
    sb,
    sock,
    nic: () => {
      const name = uniqueName('nic');
      sb.createVethPair(ns, name, uniqueName('peer'));
      return { name, index: getLink(sock, { name })!.index };
    },
  };
}

t.test('the moved NICs of a version-2 journal: addresses, routes, neighbours and tc back in the kernel as recorded', async (t) => {
  const { sb, sock, nic } = stage(t);
  const journal = loadFixture(sb);
  const moved = journal.plan.devices.flatMap((d) => (d.kind === 'host' ? [d] : []));
  t.equal(moved.length, 2, 'the fixture has its two moved NICs');
  for (const d of moved) {
    const orig = d.original;
    const state = orig.state!;
    const home = nic();
    const ctx = { op: 'restore address', device: d.key };
    // As convergeOnHost does: the restorable addresses, labels renamed with the device.
    const restorable = orig.addresses.filter((a) => !isKernelLinkLocal(a)).map((a) => ({ ...a, label: translateLabel(a.label, orig.name, home.name) }));
    for (const a of restorable) addAddress(sock, home.index, addressInfo(a), ctx);
    const warnings: string[] = [];
    restoreRoutesNeighboursTc(sock, state, orig.index, home.index, d.key, (w) => warnings.push(w));
    t.same(warnings, [], `${orig.name}: nothing refused`);

    const addresses = listAddresses(sock, home.index).map(({ index: _i, ...a }) => addressRecord(a)).filter((a) => !isKernelLinkLocal(a));
    t.same(sortedJson(addresses.map(addressKey)), sortedJson(restorable.map((a) => addressKey(addressRecord(addressInfo(a))))),
      `${orig.name}: its addresses, flags, scopes and labels`);
    const finite = restorable.filter((a) => a.validLifetime !== 0xffffffff);
    for (const a of finite) {
      const now = addresses.find((x) => x.address === a.address)!;
      t.ok(now.validLifetime <= a.validLifetime && now.validLifetime > 0 && now.preferredLifetime <= a.preferredLifetime, `${a.address}: its lifetimes, running down`);
    }
    t.same(sortedJson(listDeviceRoutes(sock, home.index).map(routeRecord)), sortedJson(state.routes.map((r) => movedTo(r, orig.index, home.index))),
      `${orig.name}: its ${state.routes.length} routes, on the new ifindex`);
    t.same(listConfiguredNeighbours(sock, home.index).map(neighbourRecord), state.neighbours, `${orig.name}: its ${state.neighbours.length} neighbours`);
    t.same(listTc(sock, home.index).map(tcRecord), state.tc, `${orig.name}: its ${state.tc.length} qdiscs, classes and filters`);
  }
});

t.test('the veth of a version-2 journal: its addresses at both ends and its container routes go into the kernel as recorded', async (t) => {
  const { sb, sock, nic } = stage(t);
  const veth = loadFixture(sb).plan.devices.find((d) => d.kind === 'veth');
  if (veth?.kind !== 'veth') throw new Error('the fixture has no veth');
  t.ok(veth.containerAddresses.length && veth.hostAddresses?.length && veth.containerRoutes?.length, 'it has addresses at both ends and routes');
  // As copyAddresses, addRoutes and createVeth do, on a stand-in for each end (the host end's last:
  // in one namespace, a gateway at the host end would be a local address).
  const globalAddresses = (index: number) => listAddresses(sock, index).map(({ index: _i, ...a }) => addressRecord(a)).filter((a) => a.scope === 0);
  const [inside, host] = [nic(), nic()];
  const addresses = (end: { name: string; index: number }, recorded: AddressRecord[]) => {
    for (const a of recorded) addAddress(sock, end.index, addressInfo(a), { op: 'add address', device: veth.key });
    // The kernel reports IFA_F_PERMANENT, and the device's name as the label of an IPv4 address without one.
    const asGiven = ({ label, ...a }: AddressRecord) => ({ ...a, flags: a.flags & ~0x80, ...(label !== end.name ? { label } : {}) });
    t.same(sortedJson(globalAddresses(end.index).map(asGiven)), sortedJson(recorded), `${end.name}: its addresses`);
  };
  addresses(inside, veth.containerAddresses);
  for (const r of veth.containerRoutes ?? []) {
    addRoute(sock, routeEntry({ ...r, oif: inside.index }), inside.index, inside.index, { op: 'add route', device: veth.key });
  }
  const routes = listDeviceRoutes(sock, inside.index).map(routeRecord);
  for (const r of veth.containerRoutes ?? []) {
    const now = routes.find((x) => x.family === r.family && x.dst === r.dst && x.dstLen === r.dstLen);
    // IPv6 gets the kernel's metric and preference where the config gave none.
    const chosen = r.family === 10 && r.priority === undefined ? { priority: 1024, pref: 0 } : {};
    t.same(now, { ...r, oif: inside.index, ...chosen }, `route ${r.dst ?? 'default'}/${r.dstLen} as recorded`);
  }
  addresses(host, veth.hostAddresses ?? []);
});
