// The IPv6 configuration a host gives a NIC, which the kernel does not carry across namespaces,
// comes back as it was: link-local addresses the host added (with address generation off), the
// stable_secret and the link-local the kernel makes from it, a random link-local next to a static
// one, the IPv6 token, static multicast link-layer addresses; and in the order the host sees them,
// altnames and IPv6 addresses. After poststop, after a rollback and after gc, with a process in the
// container changing them meanwhile. A throwaway netns plays the host; veth ends stand in for NICs.
import t from 'tap';
import type { Test } from 'tap';
import { ok, okQuietly } from '../helpers/assert';
import { bundleFor, createRuntime, poststop } from '../helpers/host';
import { uniqueId } from '../helpers/names';
import { cli, makeRig, Rig } from '../helpers/netdevices';
import { netnsPath } from '../helpers/sandbox';
import { dadDone } from '../helpers/device-state';
import { hostConfiguredNics, HostConfiguredNics, hostView, hostViewSettledTo, HostView, MANUAL_MADDRS, MANUAL_TOKEN, tamperHostConfigured, rolledBackAfter } from '../helpers/device-settings';

/** The NICs' names in the container. */
const IN_CONTAINER: HostConfiguredNics = { manual: 'eth1', stable: 'eth2', random: 'eth3' };
const ROLES = Object.keys(IN_CONTAINER) as (keyof HostConfiguredNics)[];

type Views = Record<keyof HostConfiguredNics, HostView>;

async function prepared(t: Test): Promise<{ rig: Rig; nics: HostConfiguredNics; before: Views }> {
  const rig = makeRig(t);
  const nics = hostConfiguredNics(rig.simhost);
  await dadDone(rig.simhost, Object.values(nics));
  const before = {} as Views;
  for (const role of ROLES) before[role] = await hostViewSettledTo(rig.simhost, nics[role], hostView(rig.simhost, nics[role]));
  // What the test is about, there before createRuntime.
  const v6 = (role: keyof HostConfiguredNics) => (before[role].addresses as { family: string; local: string }[]).filter((a) => a.family === 'inet6').map((a) => a.local);
  t.same(v6('manual'), ['2001:db8:21::3', '2001:db8:21::2', '2001:db8:21::1', 'fe80::a2', 'fe80::a1'], 'the manual NIC: IPv6 newest first per scope, its own link-locals only');
  t.match(before.manual.link, { altnames: [`${nics.manual}-z`, `${nics.manual}-a`] }, 'altnames in the order added');
  t.equal(before.manual.token, `token ${MANUAL_TOKEN} dev ${nics.manual}`, 'a token');
  t.same(before.manual.maddr.filter((l) => l.endsWith('static')), [`link  ${MANUAL_MADDRS[1]} users 2 static`, `link  ${MANUAL_MADDRS[0]} static`], 'static multicast addresses, one the kernel uses too');
  t.ok(before.stable.sysctls.includes(`net.ipv6.conf.${nics.stable}.stable_secret = 2001:0db8:0000:0000:0000:0000:05ec:0001`), 'the stable NIC has its secret');
  t.match(before.stable.addresses, [{ scope: 'link', 'stable-privacy': true }], 'and its stable-privacy link-local');
  t.match(before.random.addresses, [{ local: 'fe80::c1' }, { scope: 'link', 'stable-privacy': true }], 'the random NIC: a static link-local on top of the generated one');
  return { rig, nics, before };
}

function netDevices(nics: HostConfiguredNics): Record<string, { name: string }> {
  return Object.fromEntries(ROLES.map((r) => [nics[r], { name: IN_CONTAINER[r] }]));
}

/** Each NIC is home and the host sees it as before. */
async function sameAsBefore(t: Test, rig: Rig, nics: HostConfiguredNics, before: Views): Promise<void> {
  for (const role of ROLES) {
    const after = await hostViewSettledTo(rig.simhost, nics[role], before[role]);
    for (const k of Object.keys(before[role]) as (keyof HostView)[]) t.same(after[k], before[role][k], `${role} NIC: ${k} as before`);
  }
}

t.test('after poststop, the IPv6 configuration of the host and the order of altnames and addresses are as before', async (t) => {
  const { rig, nics, before } = await prepared(t);
  const id = uniqueId('ctr');
  const bundle = bundleFor(rig, netDevices(nics));
  ok(t, createRuntime(rig, id, bundle), 'create-runtime');
  tamperHostConfigured(netnsPath(rig.ctr), IN_CONTAINER);
  okQuietly(t, poststop(rig, id, bundle), 'poststop');
  await sameAsBefore(t, rig, nics, before);
});

t.test('after a rollback, the IPv6 configuration of the host and the order of altnames and addresses are as before', async (t) => {
  const { rig, nics, before } = await prepared(t);
  // The container's process at work on the moved NICs during a network's ADD, which then fails.
  rolledBackAfter(t, rig, netDevices(nics), 'tamperHostConfigured', [IN_CONTAINER]);
  await sameAsBefore(t, rig, nics, before);
});

t.test('after gc (the container died without poststop), the IPv6 configuration of the host and the order of altnames and addresses are as before', async (t) => {
  const { rig, nics, before } = await prepared(t);
  const id = uniqueId('ctr');
  ok(t, createRuntime(rig, id, bundleFor(rig, netDevices(nics))), 'create-runtime');
  tamperHostConfigured(netnsPath(rig.ctr), IN_CONTAINER);
  // The state has no pid: gc cannot tell the container runs, and restores it as if it were gone.
  const gc = cli(rig, ['gc']);
  okQuietly(t, gc, 'gc');
  t.match(gc.stdout, new RegExp(`^${id}: restored`, 'm'), 'gc restores the NICs');
  await sameAsBefore(t, rig, nics, before);
});
