// Adversary cases not covered by tamper, restore-faults and state-faults: a container (CAP_NET_ADMIN
// in its netns, here `ip -n <ctr>`) that replaces a created macvlan at its ifindex, piles altnames
// on the NIC, sends the NIC out and back, hides a veth end, shares its netns with another
// container, swaps in look-alikes while the hook is killed; a host device that takes a created
// veth's host-end name first. Nothing of the container's lands on the host and the host's own
// devices are as before.
import t, { Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHook } from '../helpers/hook';
import { standIn } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { settledTo, sh, shOk, steady } from '../helpers/sandbox';
import { cli, configBundle, inCtr, makeRig, nonLoopback, ociState, Rig, stateEntries, traced, userStderr } from '../helpers/netdevices';

interface Link {
  ifname: string;
  ifindex: number;
  address: string;
  altnames?: string[];
  link?: string;
  link_netnsid?: number;
}
function linkIn(ns: string, dev: string): Link | undefined {
  const r = sh('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', dev]);
  return r.status === 0 ? (JSON.parse(r.stdout) as Link[])[0] : undefined;
}
const allLinks = (ns: string): Link[] => JSON.parse(shOk('ip', ['-n', ns, '-j', '-d', 'link', 'show'])) as Link[];

const run = (rig: Rig, cmd: string, id: string, bundle: string) =>
  traced(rig, cmd, ociState(id, bundle, cmd === 'poststop' ? 'stopped' : 'creating'));

/** A macvlan created as eth3 on a stand-in NIC, then deleted by the container: `mv` is what it was. */
async function macvlanDeletedByContainer(t: Test) {
  const rig = makeRig(t);
  const master = standIn(rig);
  const before = await steady(rig.simhost);
  const id = uniqueId('adv');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { mv0: { type: 'macvlan', master: master.name, name: 'eth3' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  const mv = linkIn(rig.ctr, 'eth3')!;
  inCtr(rig, ['link', 'del', 'eth3']);
  return { rig, before, id, bundle, mv };
}

t.test('a created macvlan replaced by an impostor at its ifindex with its MAC: the impostor is not the host\'s to take, the host as before', async (t) => {
  const { rig, before, id, bundle, mv } = await macvlanDeletedByContainer(t);
  const fake = uniqueName('fake');
  inCtr(rig, ['link', 'add', 'eth3', 'index', String(mv.ifindex), 'address', mv.address, 'type', 'veth', 'peer', 'name', fake]);

  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 0, 'poststop exits 0', { stderr: userStderr(r.stderr) });
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before');
  t.same(nonLoopback(rig.ctr).sort(), ['eth3', fake].sort(), "the container's own devices are left to it");
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('as many altnames as the kernel takes added to the NIC in the container: it comes home with none of them', async (t) => {
  const rig = makeRig(t);
  const nic = standIn(rig);
  const before = await steady(rig.simhost);
  const id = uniqueId('adv');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic.name]: { name: 'eth1' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  // As many as the kernel takes (it stops near 500, when the altname list fills its attribute).
  const batch = join(rig.sb.tempDir('alt'), 'batch');
  writeFileSync(batch, Array.from({ length: 1000 }, () => `link property add dev eth1 altname ${uniqueName('alt')}\n`).join(''));
  sh('ip', ['-n', rig.ctr, '-force', '-batch', batch]);
  const count = linkIn(rig.ctr, 'eth1')?.altnames?.length ?? 0;
  t.ok(count > 100, `the container gave the NIC ${count} altnames`);

  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 0, 'poststop exits 0', { stderr: userStderr(r.stderr) });
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before');
  t.same(linkIn(rig.simhost, nic.name)?.altnames ?? [], [], "none of the container's altnames on the host");
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test("a host device with the created veth's host-end name before createRuntime: refused or kept, never deleted", async (t) => {
  const rig = makeRig(t);
  const squatter = standIn(rig);
  const before = await steady(rig.simhost);
  const id = uniqueId('adv');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [squatter.name]: { type: 'veth', name: 'eth2' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.comment(`createRuntime exit ${created.status}: ${userStderr(created.stderr)}`);
  const r = run(rig, 'poststop', id, bundle);
  t.comment(`poststop exit ${r.status}: ${userStderr(r.stderr)}`);
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before; the squatter is not deleted');
  t.same(nonLoopback(rig.ctr), [], 'nothing left in the container');
});

t.test('SIGKILL of create-runtime at many points, the container swapping in look-alikes, then gc: host as before, nothing of the container\'s on it', async (t) => {
  const rig = makeRig(t);
  const nic = standIn(rig);
  const master = standIn(rig);
  const vethHost = uniqueName('vh');
  const netDevices = {
    [nic.name]: { name: 'eth1' },
    [vethHost]: { type: 'veth', name: 'eth2', addresses: ['10.2.0.2/24'] },
    mv0: { type: 'macvlan', master: master.name, name: 'eth3' },
  };
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices });
  const before = await steady(rig.simhost);
  const traceLines = (stderr: string): number => stderr.split('\n').filter((l) => l.startsWith('trace: ')).length;

  const firstId = uniqueId('adv');
  const whole = run(rig, 'create-runtime', firstId, bundle);
  t.equal(whole.status, 0, 'an uninterrupted createRuntime exits 0', { stderr: userStderr(whole.stderr) });
  const total = traceLines(whole.stderr);
  t.equal(run(rig, 'poststop', firstId, bundle).status, 0, 'and its poststop');

  const points = [...new Set(Array.from({ length: 8 }, (_, i) => 1 + Math.round((i * (total - 2)) / 7)))];
  const bad: string[] = [];
  for (const n of points) {
    const id = uniqueId('adv');
    let killed = false;
    const hook = startHook(rig.simhost, 'create-runtime', ociState(id, bundle, 'creating'), {
      stateDir: rig.stateDir,
      env: { OCI_NETDEV_TRACE: '1' },
      onStderr: (soFar) => {
        if (killed || traceLines(soFar) < n) return;
        killed = true;
        process.kill(hook.pid, 'SIGKILL');
      },
    });
    const r = await hook.done;
    // The container renames whatever it got and puts a look-alike (same name and MAC) in its place.
    const fakes: string[] = [];
    for (const l of allLinks(rig.ctr).filter((l) => l.ifname !== 'lo')) {
      const fakePeer = uniqueName('fkp');
      inCtr(rig, ['link', 'set', l.ifname, 'name', uniqueName('hid')]);
      inCtr(rig, ['link', 'add', l.ifname, 'address', l.address, 'type', 'veth', 'peer', 'name', fakePeer]);
      fakes.push(l.ifname, fakePeer);
    }
    const gc = cli(rig, ['gc']);
    const problems: string[] = [];
    const host = await settledTo(rig.simhost, before);
    if (JSON.stringify(host) !== JSON.stringify(before)) problems.push(`the host is not as before: ${JSON.stringify(Object.keys(host))}`);
    const ctrLeft = allLinks(rig.ctr).map((l) => l.ifname).filter((n) => n !== 'lo');
    if (ctrLeft.some((d) => !fakes.includes(d))) problems.push(`devices not the container's are left in it: ${ctrLeft.join(' ')}`);
    if (stateEntries(rig.stateDir).length) problems.push('state is left');
    const what = `kill after request ${n} (${r.signal ?? `exit ${r.status}`}, ${traceLines(r.stderr)} seen), ${fakes.length / 2} look-alikes`;
    if (problems.length) {
      bad.push(`${what}: ${problems.join(', ')}`);
      t.fail(`${what}: ${problems.join(', ')}`, { gcStdout: gc.stdout, gcStderr: userStderr(gc.stderr) });
      break;
    }
    t.pass(`${what}: gc restores the host exactly, the look-alikes stay in the container`);
    for (const f of fakes) sh('ip', ['-n', rig.ctr, 'link', 'del', f]);
  }
  t.same(bad, [], 'every kill point ends with the host as before and nothing of the container\'s on it');
});

t.test("two containers sharing one netns, each with a created veth: one's poststop leaves the other's devices", async (t) => {
  const rig = makeRig(t);
  const before = await steady(rig.simhost);
  const [hostA, hostB] = [uniqueName('vha'), uniqueName('vhb')];
  const idA = uniqueId('adv');
  const idB = uniqueId('adv');
  const bundleA = configBundle(rig.sb, rig.ctr, { netDevices: { [hostA]: { type: 'veth', name: 'eth2' } } });
  const bundleB = configBundle(rig.sb, rig.ctr, { netDevices: { [hostB]: { type: 'veth', name: 'eth5' } } });
  t.equal(run(rig, 'create-runtime', idA, bundleA).status, 0, 'A createRuntime exits 0');
  const b = run(rig, 'create-runtime', idB, bundleB);
  t.comment(`B createRuntime exit ${b.status}: ${userStderr(b.stderr)}`);
  // A's process swaps group tricks: it puts eth5 (B's) into A's created-device group.
  const groupA = (JSON.parse(shOk('ip', ['-n', rig.ctr, '-j', '-d', 'link', 'show', 'dev', 'eth2'])) as { group: string }[])[0].group;
  if (b.status === 0) inCtr(rig, ['link', 'set', 'eth5', 'group', groupA]);
  t.equal(run(rig, 'poststop', idA, bundleA).status, 0, 'A poststop exits 0');
  if (b.status === 0) {
    t.ok(linkIn(rig.simhost, hostB), "B's veth host end is still on the host after A's poststop");
    t.ok(linkIn(rig.ctr, 'eth5'), "B's container end is still there");
    t.equal(run(rig, 'poststop', idB, bundleB).status, 0, 'B poststop exits 0');
  }
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(nonLoopback(rig.ctr), [], 'nothing left in the shared netns');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test("a created macvlan replaced by the container's own macvlan (on its own veth) at its ifindex with its MAC: left to the container, the host as before", async (t) => {
  const { rig, before, id, bundle, mv } = await macvlanDeletedByContainer(t);
  const [lower, lowerPeer] = [uniqueName('low'), uniqueName('lowp')];
  inCtr(rig, ['link', 'add', lower, 'type', 'veth', 'peer', 'name', lowerPeer]);
  inCtr(rig, ['link', 'add', 'eth3', 'index', String(mv.ifindex), 'address', mv.address, 'link', lower, 'type', 'macvlan', 'mode', 'bridge']);
  t.equal(linkIn(rig.ctr, 'eth3')?.ifindex, mv.ifindex, "the container's macvlan holds the created macvlan's ifindex");

  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 0, 'poststop exits 0', { stderr: userStderr(r.stderr) });
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before');
  t.same(nonLoopback(rig.ctr).sort(), ['eth3', lower, lowerPeer].sort(), "the container's own devices are left to it");
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

/**
 * The NIC attached as eth1, then hidden by the container in a netns of its own (`hidden`), and an
 * impostor veth (`fake` its peer) made at the NIC's ifindex in the container.
 */
async function nicHiddenBehindImpostor(t: Test) {
  const rig = makeRig(t);
  const nic = standIn(rig);
  const hidden = rig.sb.createNetns('own');
  const before = await steady(rig.simhost);
  const id = uniqueId('adv');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic.name]: { name: 'eth1' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  const index = linkIn(rig.ctr, 'eth1')!.ifindex;
  inCtr(rig, ['link', 'set', 'eth1', 'netns', hidden]);
  const fake = uniqueName('fake');
  inCtr(rig, ['link', 'add', 'eth1', 'index', String(index), 'type', 'veth', 'peer', 'name', fake]);
  return { rig, nic, hidden, before, id, bundle, index, fake };
}

t.test('the NIC sent out and back by the container so that it comes back at a new ifindex, an impostor at the old one: the NIC still comes home', async (t) => {
  const { rig, nic, hidden, before, id, bundle, index, fake } = await nicHiddenBehindImpostor(t);
  const moved = uniqueName('back');
  shOk('ip', ['-n', hidden, 'link', 'set', 'eth1', 'name', moved, 'netns', rig.ctr]);
  t.not(linkIn(rig.ctr, moved)?.ifindex, index, 'the real NIC is back in the container under another ifindex');

  const r = run(rig, 'poststop', id, bundle);
  t.comment(`poststop exit ${r.status}: ${userStderr(r.stderr)}`);
  const gc = cli(rig, ['gc']);
  t.comment(`gc exit ${gc.status}: ${gc.stdout}${userStderr(gc.stderr)}`);
  t.same(allLinks(rig.simhost).filter((l) => l.ifname === fake || (l.ifname === nic.name && l.link !== nic.peer)), [],
    "nothing of the container's is on the host");
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before: the NIC is not lost');
});

t.test('the NIC hidden by the container in a netns of its own, an impostor at its ifindex: poststop fails and says so, gc names the failed restore, and the NIC comes home once it is back', async (t) => {
  const { rig, hidden, before, id, bundle } = await nicHiddenBehindImpostor(t);

  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 1, 'poststop fails: the NIC is not where it can be proven', { stdout: r.stdout });
  t.ok(linkIn(rig.ctr, 'eth1'), 'the impostor is left in the container');
  const gc = cli(rig, ['gc']);
  t.match(gc.stdout, `${id}: failed (an earlier restore did not finish: `, 'gc says a restore failed, not that a hook died');

  // The NIC back where it was given: the next gc brings it home.
  shOk('ip', ['-n', hidden, 'link', 'set', 'eth1', 'name', uniqueName('back'), 'netns', rig.ctr]);
  inCtr(rig, ['link', 'del', 'eth1']);
  const again = cli(rig, ['gc']);
  t.match(again.stdout, `${id}: restored (an earlier restore did not finish)`, 'gc restores it');
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test("a created veth's container end moved by the container into a netns of its own: poststop takes the pair away all the same", async (t) => {
  const rig = makeRig(t);
  const hidden = rig.sb.createNetns('own');
  const before = await steady(rig.simhost);
  const vethHost = uniqueName('vh');
  const id = uniqueId('adv');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [vethHost]: { type: 'veth', name: 'eth2' } } });
  const created = run(rig, 'create-runtime', id, bundle);
  t.equal(created.status, 0, 'createRuntime exits 0', { stderr: userStderr(created.stderr) });
  inCtr(rig, ['link', 'set', 'eth2', 'netns', hidden]);

  const r = run(rig, 'poststop', id, bundle);
  t.equal(r.status, 0, 'poststop exits 0', { stderr: userStderr(r.stderr) });
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before: no host end left');
  t.same(nonLoopback(hidden), [], 'the container end went with it');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});
