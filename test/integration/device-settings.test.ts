// Whatever `ip`, `ethtool` and `sysctl` can change on a moved NIC from inside the container comes
// back as it was: the host's view of the NIC (ip -d link, the ipv4 GSO/GRO sizes, ethtool -k, -l and
// link settings, its sysctls, its addresses with their flags) is the same after poststop, after a
// rollback and after gc as before createRuntime; the container's XDP program stays behind, and the
// NIC's IPv6 address comes home valid, not tentative. A throwaway netns plays the host; a veth end
// with four queues each way stands in for the NIC.
import t from 'tap';
import type { Test } from 'tap';
import { ok, okQuietly } from '../helpers/assert';
import { bundleFor, createRuntime, poststop } from '../helpers/host';
import { uniqueId } from '../helpers/names';
import { cli, makeRig, Rig } from '../helpers/netdevices';
import { inSimHost, netnsPath, sh } from '../helpers/sandbox';
import { dadDone } from '../helpers/device-state';
import { attachXdp, hostView, hostViewSettledTo, HostView, NIC_V6, queuedNic, tamper, tampered, rolledBackAfter, tentativeGlobals } from '../helpers/device-settings';

/** The NIC in the container as eth1. */
const IN_CONTAINER = 'eth1';

async function prepared(t: Test): Promise<{ rig: Rig; nic: string; before: HostView }> {
  const rig = makeRig(t);
  const nic = queuedNic(rig.simhost);
  await dadDone(rig.simhost, [nic]);
  return { rig, nic, before: await hostViewSettledTo(rig.simhost, nic, hostView(rig.simhost, nic)) };
}

/** The NIC is home, its IPv6 address already valid, and the host sees it as before. */
async function sameAsBefore(t: Test, rig: Rig, nic: string, before: HostView): Promise<void> {
  t.same(tentativeGlobals(rig.simhost, nic), [], 'its global addresses are not tentative');
  const after = await hostViewSettledTo(rig.simhost, nic, before);
  for (const k of Object.keys(before) as (keyof HostView)[]) t.same(after[k], before[k], `${k} as before`);
}

t.test('after poststop, every setting the container changed on the moved NIC is as before', async (t) => {
  const { rig, nic, before } = await prepared(t);
  // The views a veth does not have, which hostView leaves out.
  for (const view of ['-g', '-c', '-a']) {
    t.match(sh(...inSimHost(rig.simhost, ['ethtool', view, nic])).stderr, /Operation not supported/, `ethtool ${view}: a veth has none`);
  }
  const id = uniqueId('ctr');
  const bundle = bundleFor(rig, { [nic]: { name: IN_CONTAINER } });
  ok(t, createRuntime(rig, id, bundle), 'create-runtime');
  tamper(netnsPath(rig.ctr), IN_CONTAINER, 'drv');
  const changed = tampered(rig.ctr, IN_CONTAINER);
  t.match(changed, { flags: ['BROADCAST', 'NOARP', 'ALLMULTI', 'PROMISC', 'DYNAMIC', 'NOTRAILERS', 'UP', 'LOWER_UP'], txqlen: 5 }, 'the container changed the flags');
  t.match(changed.xdp, { mode: 1 }, 'and attached an XDP program in driver mode');

  okQuietly(t, poststop(rig, id, bundle), 'poststop');
  await sameAsBefore(t, rig, nic, before);
});

t.test('after a rollback, every setting the container changed on the moved NIC is as before', async (t) => {
  const { rig, nic, before } = await prepared(t);
  // The container's process at work on the moved NICs during a network's ADD, which then fails.
  rolledBackAfter(t, rig, { [nic]: { name: IN_CONTAINER } }, 'tamper', [IN_CONTAINER, 'skb']);
  await sameAsBefore(t, rig, nic, before);
});

t.test('after gc (the container died without poststop), every setting the container changed on the moved NIC is as before', async (t) => {
  const { rig, nic, before } = await prepared(t);
  const id = uniqueId('ctr');
  ok(t, createRuntime(rig, id, bundleFor(rig, { [nic]: { name: IN_CONTAINER } })), 'create-runtime');
  tamper(netnsPath(rig.ctr), IN_CONTAINER, 'skb');
  t.match(tampered(rig.ctr, IN_CONTAINER).xdp, { mode: 2 }, 'the container attached an XDP program in generic mode');

  // The state has no pid: gc cannot tell the container runs, and restores it as if it were gone.
  const gc = cli(rig, ['gc']);
  okQuietly(t, gc, 'gc');
  t.match(gc.stdout, new RegExp(`^${id}: restored`, 'm'), 'gc restores the NIC');
  await sameAsBefore(t, rig, nic, before);
});

t.test('an IPv6 address that had passed duplicate address detection comes home valid at once, not tentative, with its flags', async (t) => {
  const { rig, nic } = await prepared(t);
  const addresses = () => (hostView(rig.simhost, nic).addresses as { local: string }[])
    .filter((a) => a.local === NIC_V6);
  const before = addresses();
  t.equal(before.length, 1, 'the NIC has its IPv6 address before');
  const id = uniqueId('ctr');
  const bundle = bundleFor(rig, { [nic]: { name: IN_CONTAINER } });
  ok(t, createRuntime(rig, id, bundle), 'create-runtime');
  ok(t, poststop(rig, id, bundle), 'poststop');
  t.same(tentativeGlobals(rig.simhost, nic), [], 'not tentative right after poststop');
  t.same(addresses(), before, 'with the flags it had (no nodad added)');
});

t.test('an XDP program the NIC carried stays; one the container put in its place is detached, and poststop says the first cannot be put back', async (t) => {
  const { rig, nic } = await prepared(t);
  attachXdp(netnsPath(rig.simhost), nic, 'skb');
  const hostProgram = (tampered(rig.simhost, nic).xdp as { prog?: { id: number } }).prog?.id;
  t.ok(hostProgram, 'the NIC carries an XDP program on the host');

  // Kept when the container leaves it alone.
  const kept = uniqueId('ctr');
  const bundle = bundleFor(rig, { [nic]: { name: IN_CONTAINER } });
  ok(t, createRuntime(rig, kept, bundle), 'create-runtime');
  okQuietly(t, poststop(rig, kept, bundle), 'poststop');
  t.match(tampered(rig.simhost, nic).xdp, { mode: 2, prog: { id: hostProgram } }, 'the program the NIC carried is still on it');

  // Replaced by the container: the container's program does not stay on the host.
  const replaced = uniqueId('ctr');
  ok(t, createRuntime(rig, replaced, bundle), 'create-runtime again');
  attachXdp(netnsPath(rig.ctr), IN_CONTAINER, 'skb');
  const theirs = (tampered(rig.ctr, IN_CONTAINER).xdp as { prog?: { id: number } }).prog?.id;
  t.not(theirs, hostProgram, 'the container put a program of its own in its place');
  const r2 = poststop(rig, replaced, bundle);
  ok(t, r2, 'poststop');
  t.match(r2.stderr, new RegExp(`WARNING.*XDP program ${hostProgram} \\(skb mode\\) was replaced in the container and cannot be put back`), 'saying the program it carried cannot be put back');
  t.equal(tampered(rig.simhost, nic).xdp, undefined, "the container's program is not on the host");
});
