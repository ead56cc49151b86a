// A hostile container (issue 8): between createRuntime and poststop a process with CAP_NET_ADMIN
// in the container's netns (here `ip -n <ctr>`) rewrites what it can of the devices it was given:
// alias, name, MTU, MAC, link group; it makes look-alikes, or points an annotation at devices
// that are not the host's to take. Whatever it does, poststop brings the real host devices back
// exactly, deletes only what oci-netdev created, and puts nothing of the container's on the host.
// A stand-in NIC is a veth end whose peer never leaves the simulated host: after poststop the peer
// still pointing at the device of the NIC's name (same netns, no link_netnsid) proves that it is
// the real NIC and not a copy.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { encodeId } from '../../src/state/statedir';
import { uniqueId, uniqueName } from '../helpers/names';
import { addAddress, NsSnapshot, nsSnapshot, sh, ShResult, shOk, settledTo, steady } from '../helpers/sandbox';
import {
  annotationPolicy, configBundle, inCtr, groupedDevices, ipDetails, makeRig, nonLoopback, ociState, Rig, stateEntries, traced, userStderr,
} from '../helpers/netdevices';
import { ok, refused } from '../helpers/assert';
import { standIn } from '../helpers/host';

interface Nic {
  name: string;
  /** Its veth peer; it stays on the simulated host. */
  peer: string;
  mac: string;
}

let addrCounter = 0;
const randomMac = (): string => `02:${[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

/** A stand-in NIC (standIn) with an MTU, a MAC and addresses of its own. */
function addressedStandIn(rig: Rig, role = 'nic'): Nic {
  const mac = randomMac();
  const nic = { ...standIn(rig, { role, mtu: 1400, mac }), mac };
  const n = ++addrCounter;
  addAddress(rig.simhost, nic.name, `192.0.2.${n}/24`, ['broadcast', '+']);
  addAddress(rig.simhost, nic.name, `2001:db8:${n}::1/64`, ['nodad']);
  return nic;
}

/** A device as `ip -j -d link show` gives it, with the veth peer fields; undefined when absent. */
interface PeerFields {
  ifname: string;
  group: string;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  ifalias?: string;
  address: string;
}
function linkIn(ns: string, dev: string): PeerFields | undefined {
  const r = sh('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', dev]);
  return r.status === 0 ? (JSON.parse(r.stdout) as PeerFields[])[0] : undefined;
}

interface HostState {
  snap: NsSnapshot;
  groups: Record<string, string>;
}

const groupsOf = (ns: string): Record<string, string> =>
  Object.fromEntries(Object.values(ipDetails(ns)).map((l) => [l.ifname, l.group]));

async function hostState(rig: Rig): Promise<HostState> {
  return { snap: await steady(rig.simhost), groups: groupsOf(rig.simhost) };
}

/**
 * The simulated host is as `before` (every name, MTU, MAC, flag, alias, address and link group),
 * and each NIC is the real one: it and its peer point at each other within the host.
 */
async function hostExactly(t: Test, rig: Rig, before: HostState, nics: Nic[], what: string): Promise<void> {
  t.same(await settledTo(rig.simhost, before.snap), before.snap, `${what}: the host is exactly as before`);
  t.same(groupsOf(rig.simhost), before.groups, `${what}: every host device in its link group as before`);
  for (const nic of nics) {
    const dev = linkIn(rig.simhost, nic.name);
    const peer = linkIn(rig.simhost, nic.peer);
    t.ok(dev, `${what}: ${nic.name} is on the host`);
    t.same({ link: peer?.link, netnsid: peer?.link_netnsid }, { link: nic.name, netnsid: undefined },
      `${what}: the peer ${nic.peer} is joined to the ${nic.name} on the host: it is the real NIC`, { peer });
    t.same({ link: dev?.link, netnsid: dev?.link_netnsid }, { link: nic.peer, netnsid: undefined },
      `${what}: and ${nic.name} to the peer`, { dev });
  }
}

const createRuntime = (rig: Rig, id: string, bundle: string, env: Record<string, string> = {}): ShResult =>
  traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), env);
const poststop = (rig: Rig, id: string, bundle: string, env: Record<string, string> = {}): ShResult =>
  traced(rig, 'poststop', ociState(id, bundle, 'stopped'), env);


const names = (ns: string): string[] => Object.keys(nsSnapshot(ns)).sort();

// ---------------------------------------------------------------------------------------------
// Device identity: the moved NIC comes back, and only it.

interface Tamper {
  what: string;
  /** Tampers with the NIC, known as `ctName` in the container; returns the devices the container made. */
  run(rig: Rig, ctName: string, nic: Nic): string[];
}

const identityTampers: Tamper[] = [
  {
    what: 'the alias rewritten',
    run: (rig, ctName) => {
      inCtr(rig, ['link', 'set', ctName, 'alias', 'whatever']);
      return [];
    },
  },
  {
    what: "a look-alike with the NIC's alias and MAC under its name, the real NIC renamed",
    run: (rig, ctName, nic) => {
      const real = linkIn(rig.ctr, ctName)!;
      const hidden = uniqueName('hid');
      const fakePeer = uniqueName('fkp');
      inCtr(rig, ['link', 'set', ctName, 'down']);
      inCtr(rig, ['link', 'set', ctName, 'name', hidden]);
      inCtr(rig, ['link', 'add', ctName, 'type', 'veth', 'peer', 'name', fakePeer]);
      inCtr(rig, ['link', 'set', ctName, 'address', nic.mac, 'mtu', '1400', ...(real.ifalias ? ['alias', real.ifalias] : []), 'up']);
      inCtr(rig, ['link', 'set', fakePeer, 'up']);
      inCtr(rig, ['link', 'set', hidden, 'up']);
      return [ctName, fakePeer];
    },
  },
  {
    what: 'the NIC renamed',
    run: (rig, ctName) => {
      inCtr(rig, ['link', 'set', ctName, 'name', uniqueName('ren')]);
      return [];
    },
  },
  {
    what: "the NIC renamed and a new device under the NIC's container name",
    run: (rig, ctName) => {
      inCtr(rig, ['link', 'set', ctName, 'down']);
      inCtr(rig, ['link', 'set', ctName, 'name', uniqueName('ren')]);
      const peer = uniqueName('np');
      inCtr(rig, ['link', 'add', ctName, 'type', 'veth', 'peer', 'name', peer]);
      inCtr(rig, ['link', 'set', ctName, 'up']);
      return [ctName, peer];
    },
  },
  {
    what: "the NIC's MTU and MAC changed",
    run: (rig, ctName) => {
      inCtr(rig, ['link', 'set', ctName, 'down']);
      inCtr(rig, ['link', 'set', ctName, 'mtu', '1280', 'address', randomMac()]);
      inCtr(rig, ['link', 'set', ctName, 'up']);
      return [];
    },
  },
];

for (const tamper of identityTampers) {
  t.test(`identity: ${tamper.what}: poststop brings the real NIC back exactly, nothing of the container's`, async (t) => {
    const rig = makeRig(t);
    const nic = addressedStandIn(rig);
    const before = await hostState(rig);
    const id = uniqueId('ident');
    const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic.name]: { name: 'eth1' } } });
    ok(t, createRuntime(rig, id, bundle), 'createRuntime');
    t.ok(linkIn(rig.ctr, 'eth1'), 'the NIC is in the container as eth1');

    const made = tamper.run(rig, 'eth1', nic);

    ok(t, poststop(rig, id, bundle), 'poststop');
    await hostExactly(t, rig, before, [nic], 'after poststop');
    const left = names(rig.ctr);
    t.same(left.filter((n) => n !== 'lo' && !made.includes(n)), [], "the container holds only its own devices: none of the host's");
    t.same(stateEntries(rig.stateDir), [], 'no state left');
  });
}

// ---------------------------------------------------------------------------------------------
// Link groups: only what this container's plan created is deleted.

interface Grouped {
  nic: Nic;
  master: Nic;
  vethHost: string;
  id: string;
  bundle: string;
  /** The created devices' link group. */
  group: string;
  before: HostState;
}

/** A moved NIC (eth1), a veth (eth2, host end vethHost) and a macvlan (eth3) on a stand-in master. */
async function attachGrouped(t: Test, rig: Rig, containerPid?: number): Promise<Grouped> {
  const nic = addressedStandIn(rig);
  const master = addressedStandIn(rig, 'mst');
  const vethHost = uniqueName('vh');
  const before = await hostState(rig);
  const id = uniqueId('group');
  const bundle = configBundle(rig.sb, rig.ctr, {
    netDevices: {
      [nic.name]: { name: 'eth1' },
      [vethHost]: { type: 'veth', name: 'eth2', addresses: ['10.2.0.2/24'] },
      mv0: { type: 'macvlan', master: master.name, name: 'eth3' },
    },
  });
  ok(t, traced(rig, 'create-runtime', ociState(id, bundle, 'creating', containerPid ? { pid: containerPid } : {})), 'createRuntime');
  const d = ipDetails(rig.ctr);
  const group = d.eth2?.group;
  t.ok(group && group !== 'default' && d.eth3?.group === group, `the created devices share link group ${group}`);
  return { nic, master, vethHost, id, bundle, group, before };
}

/** poststop (or gc) exited 0, the NIC and the master are back exactly, every created device is gone. */
async function groupTeardownChecks(t: Test, rig: Rig, g: Grouped, r: ShResult, ctrAfter: string[], what = 'poststop'): Promise<void> {
  ok(t, r, what);
  await hostExactly(t, rig, g.before, [g.nic, g.master], `after ${what}`);
  t.notOk(linkIn(rig.simhost, g.vethHost), 'the veth host end is gone');
  t.same(groupedDevices(rig.simhost), [], 'no device of the group is left on the host');
  t.same(names(rig.ctr), ctrAfter, 'the container keeps exactly its own devices; eth2 and eth3 are gone');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
}

t.test('groups: the moved NIC put into the created-device group is restored, not deleted', async (t) => {
  const rig = makeRig(t);
  const g = await attachGrouped(t, rig);
  inCtr(rig, ['link', 'set', 'eth1', 'group', g.group]);
  await groupTeardownChecks(t, rig, g, poststop(rig, g.id, g.bundle), ['lo']);
});

t.test('groups: lo put into the created-device group makes no teardown fail', async (t) => {
  const rig = makeRig(t);
  const g = await attachGrouped(t, rig);
  inCtr(rig, ['link', 'set', 'lo', 'group', g.group]);
  await groupTeardownChecks(t, rig, g, poststop(rig, g.id, g.bundle), ['lo']);
  t.ok(linkIn(rig.ctr, 'lo'), 'lo is still there');
});

t.test('groups: lo in the created-device group makes no gc fail either', async (t) => {
  const rig = makeRig(t);
  // The container's init: gc restores once it is gone.
  const init = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(() => void init.kill('SIGKILL'));
  const g = await attachGrouped(t, rig, init.pid);
  inCtr(rig, ['link', 'set', 'lo', 'group', g.group]);
  init.kill('SIGKILL');
  await new Promise((resolve) => init.once('exit', resolve));
  const gc = traced(rig, 'gc', {});
  t.match(gc.stdout, `${g.id}: restored`, 'gc restores the container', { stdout: gc.stdout });
  await groupTeardownChecks(t, rig, g, gc, ['lo'], 'gc');
});

t.test("groups: a device of the container's own in the created-device group is not deleted", async (t) => {
  const rig = makeRig(t);
  const g = await attachGrouped(t, rig);
  const own = uniqueName('own');
  const ownPeer = uniqueName('ownp');
  inCtr(rig, ['link', 'add', own, 'type', 'veth', 'peer', 'name', ownPeer]);
  inCtr(rig, ['link', 'set', own, 'group', g.group]);
  await groupTeardownChecks(t, rig, g, poststop(rig, g.id, g.bundle), ['lo', own, ownPeer].sort());
});

// A created veth whose container end the container tampers with: its host end still goes.
const vethTampers: { what: string; run(rig: Rig): void }[] = [
  { what: 'renamed', run: (rig) => inCtr(rig, ['link', 'set', 'eth2', 'name', uniqueName('vren')]) },
  { what: 'moved to the default group', run: (rig) => inCtr(rig, ['link', 'set', 'eth2', 'group', 'default']) },
  { what: 'deleted', run: (rig) => inCtr(rig, ['link', 'del', 'eth2']) },
];

for (const tamper of vethTampers) {
  t.test(`groups: the container end of a created veth ${tamper.what}: the host end is gone, nothing else lost`, async (t) => {
    const rig = makeRig(t);
    const g = await attachGrouped(t, rig);
    tamper.run(rig);
    await groupTeardownChecks(t, rig, g, poststop(rig, g.id, g.bundle), ['lo']);
  });
}

// ---------------------------------------------------------------------------------------------
// Adoption: an annotation entry whose key is not on the host adopts nothing.

/** A bundle asking by annotation for host device `key` (not on the host) as `name` in the container. */
function adoptionBundle(rig: Rig, key: string, name: string): string {
  return configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [key]: { name } }) } });
}

t.test("adoption: the pod's own interface, named by an annotation entry, is refused and stays", async (t) => {
  const rig = makeRig(t);
  const env = { OCI_NETDEV_POLICY: annotationPolicy(rig.sb) };
  // What a CNI plugin leaves: a veth end in the pod with an address and the default route.
  const pod = uniqueName('pod');
  const podHost = uniqueName('podh');
  shOk('ip', ['-n', rig.simhost, 'link', 'add', podHost, 'type', 'veth', 'peer', 'name', pod, 'netns', rig.ctr]);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', podHost, 'up']);
  inCtr(rig, ['link', 'set', pod, 'up']);
  inCtr(rig, ['addr', 'add', '10.88.0.5/16', 'dev', pod]);
  inCtr(rig, ['route', 'add', 'default', 'via', '10.88.0.1', 'dev', pod]);
  const before = await hostState(rig);
  const ctrBefore = await steady(rig.ctr);
  const routes = inCtr(rig, ['route', 'show']);
  const key = uniqueName('ghost');

  refused(t, createRuntime(rig, uniqueId('adopt'), adoptionBundle(rig, key, pod), env), `oci-netdev: device ${key}: no such device in the host network namespace (annotation entries never adopt a device that is already in the container)`, "adopting the pod's interface");
  await hostExactly(t, rig, before, [], 'after the refusal');
  t.same(await settledTo(rig.ctr, ctrBefore), ctrBefore, 'the pod interface is untouched: alias, addresses, flags');
  t.equal(inCtr(rig, ['route', 'show']), routes, 'and the pod keeps its routes');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('adoption: lo, named by an annotation entry, is refused', async (t) => {
  const rig = makeRig(t);
  const env = { OCI_NETDEV_POLICY: annotationPolicy(rig.sb) };
  const before = await hostState(rig);
  const ctrBefore = await steady(rig.ctr);
  const key = uniqueName('ghost');

  refused(t, createRuntime(rig, uniqueId('adopt'), adoptionBundle(rig, key, 'lo'), env), `oci-netdev: device ${key}: no such device in the host network namespace (annotation entries never adopt a device that is already in the container)`, 'adopting lo');
  await hostExactly(t, rig, before, [], 'after the refusal');
  t.same(nsSnapshot(rig.ctr), ctrBefore, 'lo in the container is untouched');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test("adoption: another container's moved device in a shared netns is refused, and its own poststop restores it", async (t) => {
  const rig = makeRig(t);
  const env = { OCI_NETDEV_POLICY: annotationPolicy(rig.sb) };
  const nic = addressedStandIn(rig);
  const before = await hostState(rig);
  const first = uniqueId('first');
  const firstBundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic.name]: { name: 'net1' } } });
  ok(t, createRuntime(rig, first, firstBundle, env), "the first container's createRuntime");
  const held = await steady(rig.ctr);
  const hostHeld = await steady(rig.simhost);
  const key = uniqueName('ghost');

  const second = uniqueId('second');
  const secondBundle = adoptionBundle(rig, key, 'net1');
  refused(t, createRuntime(rig, second, secondBundle, env), `oci-netdev: device ${key}: no such device in the host network namespace (annotation entries never adopt a device that is already in the container)`, "adopting the first container's device");
  t.same(await settledTo(rig.ctr, held), held, "the first container's device is still there, untouched");
  t.same(nsSnapshot(rig.simhost), hostHeld, 'nothing moved on the host');
  t.same(stateEntries(rig.stateDir), [encodeId(first)], "only the first container's state");
  // A runtime runs poststop for a container whose createRuntime failed.
  const secondStop = poststop(rig, second, secondBundle, env);
  t.same({ status: secondStop.status, stderr: userStderr(secondStop.stderr) }, { status: 0, stderr: '' }, "the second container's poststop exits 0 and says nothing");
  t.same(await settledTo(rig.ctr, held), held, "the second container's poststop leaves the device in place");
  t.same(nsSnapshot(rig.simhost), hostHeld, 'and puts nothing on the host');
  t.same(stateEntries(rig.stateDir), [encodeId(first)], "the first container's state is kept");

  ok(t, poststop(rig, first, firstBundle, env), "the first container's poststop");
  await hostExactly(t, rig, before, [nic], 'after its own poststop');
  t.same(nonLoopback(rig.ctr), [], 'nothing left in the shared netns');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

// ---------------------------------------------------------------------------------------------
// One container, one state.

t.test('the same id from another bundle: refused, and its poststop changes nothing of the first', async (t) => {
  const rig = makeRig(t);
  const nicA = addressedStandIn(rig);
  const nicB = addressedStandIn(rig);
  const ctrB = rig.sb.createNetns('ctrb');
  const before = await hostState(rig);
  const id = uniqueId('twice');
  const bundleA = configBundle(rig.sb, rig.ctr, { netDevices: { [nicA.name]: { name: 'eth1' } } });
  const bundleB = configBundle(rig.sb, ctrB, { netDevices: { [nicB.name]: { name: 'eth1' } } });
  ok(t, createRuntime(rig, id, bundleA), "A's createRuntime");
  const attached = await steady(rig.ctr);
  const hostAttached = await steady(rig.simhost);
  const journal = stateEntries(rig.stateDir);
  t.same(journal, [encodeId(id)], "A's state is there");

  // The runtime runs createRuntime again for A: nothing changes, the devices stay attached.
  const again = createRuntime(rig, id, bundleA);
  t.same({ status: again.status, stderr: userStderr(again.stderr) }, { status: 0, stderr: '' }, 'a second createRuntime for A exits 0 and says nothing');
  t.same(await settledTo(rig.ctr, attached), attached, 'a second createRuntime for A leaves its devices attached');
  t.same(nsSnapshot(rig.simhost), hostAttached, 'and the host as it was');
  t.same(stateEntries(rig.stateDir), journal, "A's state is kept");

  const b = createRuntime(rig, id, bundleB);
  refused(t, b, `oci-netdev: container ${id} already has devices attached from bundle ${bundleA}; run its poststop first`, 'createRuntime of the same id from bundle B');
  t.same(nonLoopback(ctrB), [], "nothing in B's netns");

  const bStop = poststop(rig, id, bundleB);
  t.same({ status: bStop.status, stderr: userStderr(bStop.stderr) }, { status: 0, stderr: `oci-netdev: WARNING: container ${id}: its devices were attached from bundle ${bundleA}, not ${bundleB}; nothing restored for this one` },
    "B's poststop exits 0 and says in one line why it changes nothing");
  t.same(await settledTo(rig.ctr, attached), attached, "after B's poststop, A's devices are still in A's netns, untouched");
  t.same(nsSnapshot(rig.simhost), hostAttached, 'the host is as while A runs');
  t.same(stateEntries(rig.stateDir), journal, "A's journal is still there");

  ok(t, poststop(rig, id, bundleA), "A's own poststop");
  await hostExactly(t, rig, before, [nicA, nicB], "after A's poststop");
  t.same(nonLoopback(rig.ctr), [], "nothing left in A's netns");
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});
