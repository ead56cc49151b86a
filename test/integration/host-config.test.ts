// The IPv6 configuration a host gives a NIC, which the kernel does not carry across namespaces,
// comes back as it was: link-local addresses the host added (with address generation off), the
// stable_secret and the link-local the kernel makes from it, a random link-local next to a static
// one, the IPv6 token, static multicast link-layer addresses; and in the order the host sees them,
// altnames and IPv6 addresses. After poststop, after a rollback and after gc, with a process in the
// container changing them meanwhile. A throwaway netns plays the host; veth ends stand in for NICs.
import t from 'tap';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { ok } from '../helpers/assert';
import { bundleFor, createRuntime, poststop } from '../helpers/host';
import { uniqueId } from '../helpers/names';
import { cli, configBundle, makeRig, ociState, Rig, traced, userStderr } from '../helpers/netdevices';
import { cniDirs, writeConflist } from '../helpers/cni-networks';
import { netnsPath, REPO_ROOT } from '../helpers/sandbox';
import { dadDone } from '../helpers/device-state';
import { hostConfiguredNics, HostConfiguredNics, hostView, hostViewSettledTo, HostView, MANUAL_MADDRS, MANUAL_TOKEN, tamperHostConfigured } from '../helpers/device-settings';

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
  const r = poststop(rig, id, bundle);
  ok(t, r, 'poststop');
  t.equal(r.stderr, '', 'without a warning: everything came back');
  await sameAsBefore(t, rig, nics, before);
});

t.test('after a rollback, the IPv6 configuration of the host and the order of altnames and addresses are as before', async (t) => {
  const { rig, nics, before } = await prepared(t);
  // A CNI network whose only plugin is the container's process at work on the moved NICs while
  // the network's ADD runs; then it fails, and createRuntime rolls back.
  const dirs = cniDirs(rig.sb);
  writeFileSync(join(dirs.pluginDir, 'tamperer'), `#!/usr/bin/env node
const fs = require('fs');
fs.readFileSync(0, 'utf8');
if (process.env.CNI_COMMAND === 'VERSION') { process.stdout.write('{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'); process.exit(0); }
if (process.env.CNI_COMMAND === 'ADD') {
  require(${JSON.stringify(join(REPO_ROOT, 'dist/test/helpers/device-settings.js'))}).tamperHostConfigured(process.env.CNI_NETNS, ${JSON.stringify(IN_CONTAINER)});
  process.stdout.write('{"cniVersion":"1.0.0","code":111,"msg":"tamperer fails ADD"}');
  process.exit(1);
}
`);
  chmodSync(join(dirs.pluginDir, 'tamperer'), 0o755);
  const net = uniqueId('net');
  writeConflist(dirs, net, [{ type: 'tamperer' }]);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { ...netDevices(nics), [net]: { type: 'cni', name: 'eth0' } } });

  const r = traced(rig, 'create-runtime', ociState(uniqueId('ctr'), bundle, 'creating'), dirs.env);
  t.not(r.status, 0, 'create-runtime fails');
  t.match(userStderr(r.stderr), /tamperer fails ADD/, "on the plugin's error, after the NICs moved and were changed");
  t.notMatch(userStderr(r.stderr), /WARNING|not restored|rollback also failed/, 'the rollback restored everything');
  await sameAsBefore(t, rig, nics, before);
});

t.test('after gc (the container died without poststop), the IPv6 configuration of the host and the order of altnames and addresses are as before', async (t) => {
  const { rig, nics, before } = await prepared(t);
  const id = uniqueId('ctr');
  ok(t, createRuntime(rig, id, bundleFor(rig, netDevices(nics))), 'create-runtime');
  tamperHostConfigured(netnsPath(rig.ctr), IN_CONTAINER);
  // The state has no pid: gc cannot tell the container runs, and restores it as if it were gone.
  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc');
  t.match(gc.stdout, new RegExp(`^${id}: restored`, 'm'), 'gc restores the NICs');
  t.equal(gc.stderr, '', 'without a warning');
  await sameAsBefore(t, rig, nics, before);
});
