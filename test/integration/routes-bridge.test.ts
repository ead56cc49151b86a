// Routes and the veth host end (issue 12): `gateway` and `routes` on a created veth and on a moved
// NIC, read back with `ip -j route` in the container; a veth host end that joins a bridge of the
// simulated host, with its own MAC and addresses, and the container pinging the bridge; the
// refusals (bridge not allowed, missing, not a bridge; a gateway the device cannot reach), each one
// line with the host unchanged. After poststop the simulated host is identical and nothing is left.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { Test } from 'tap';
import { uniqueId, uniqueName } from '../helpers/names';
import { nsSnapshot, settledTo, shOk, sleep, steady } from '../helpers/sandbox';
import { deviceStates, deviceStatesSettledTo } from '../helpers/device-state';
import {
  configBundle, configRoutes, groupedDevices, ipDetails, makeRig, nonLoopback, ociState, ping, requests, Rig, RTM, stateEntries, traced,
  userStderr,
} from '../helpers/netdevices';

function attach(rig: Rig, netDevices: Record<string, object>, env: Record<string, string> = {}) {
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices });
  return { id, bundle, r: traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), env) };
}

async function detachAndCheck(t: Test, rig: Rig, id: string, bundle: string, before: object): Promise<void> {
  const r = traced(rig, 'poststop', ociState(id, bundle, 'stopped'));
  t.equal(r.status, 0, 'poststop exits 0', { stderr: r.stderr });
  t.equal(userStderr(r.stderr), '', 'poststop prints nothing but the trace');
  // A bridge's carrier follows its ports a moment later.
  t.same(await settledTo(rig.simhost, before as never), before, 'the simulated host is identical to before');
  t.same(groupedDevices(rig.simhost), [], 'no device of a link group remains on the host');
  t.same(nonLoopback(rig.ctr), [], 'nothing remains in the container netns');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
}

/** A policy file with `doc`, mode 0644 as the policy requires. */
function policyFile(rig: Rig, doc: object): string {
  const file = join(rig.sb.tempDir('policy'), 'policy.json');
  writeFileSync(file, JSON.stringify(doc), { mode: 0o644 });
  return file;
}

/** A bridge in use on the simulated host: its own MAC (as docker0 or virbr0 have), a port, IPv4 and IPv6 addresses. */
function hostBridge(rig: Rig): string {
  const br = uniqueName('br');
  const ip = (args: string[]) => shOk('ip', ['-n', rig.simhost, ...args]);
  ip(['link', 'add', br, 'address', '02:00:00:62:00:01', 'type', 'bridge']);
  const port = uniqueName('bp');
  rig.sb.createVethPair(rig.simhost, port, uniqueName('bpp'));
  ip(['link', 'set', port, 'master', br]);
  ip(['link', 'set', br, 'up']);
  ip(['addr', 'add', '10.62.0.1/24', 'dev', br]);
  ip(['addr', 'add', 'fd62::1/64', 'dev', br, 'nodad']);
  return br;
}

t.test('veth: gateway and routes of both families are in the container routing table', async (t) => {
  const rig = makeRig(t);
  const before = nsSnapshot(rig.simhost);
  const { id, bundle, r } = attach(rig, {
    [uniqueName('vh')]: {
      type: 'veth', name: 'eth0', addresses: ['10.61.0.2/24', 'fd61::2/64'], gateway: '10.61.0.1',
      routes: [
        { dst: '::/0', gw: 'fd61::1' },
        { dst: '198.51.100.0/24', gw: '10.61.0.254', metric: 50 },
        { dst: '203.0.113.0/24' },
        { dst: '2001:db8:9::/48', gw: 'fe80::1', metric: 7 },
      ],
    },
  });
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.equal(requests(r.stderr, RTM.NEWROUTE).length, 5, 'one RTM_NEWROUTE per route');

  t.same(configRoutes(rig.ctr, '-4', 'eth0'), [
    { dst: 'default', gateway: '10.61.0.1', protocol: 'static', flags: [] },
    { dst: '198.51.100.0/24', gateway: '10.61.0.254', protocol: 'static', metric: 50, flags: [] },
    { dst: '203.0.113.0/24', protocol: 'static', scope: 'link', flags: [] },
  ], 'IPv4: the gateway as default route, a route with metric, a link route');
  t.same(configRoutes(rig.ctr, '-6', 'eth0').filter((x) => x.dst !== 'fe80::/64' && !String(x.dst).startsWith('ff00')), [
    { dst: '2001:db8:9::/48', gateway: 'fe80::1', protocol: 'static', metric: 7, flags: [], pref: 'medium' },
    { dst: 'default', gateway: 'fd61::1', protocol: 'static', metric: 1024, flags: [], pref: 'medium' },
  ], 'IPv6: a default route and a route through a link-local gateway');

  await detachAndCheck(t, rig, id, bundle, before);
});

t.test('veth: the host end joins a bridge of the host with its MAC and addresses; the container pings the bridge', async (t) => {
  const rig = makeRig(t);
  const br = hostBridge(rig);
  const before = await steady(rig.simhost);
  const hostEnd = uniqueName('vh');
  const { id, bundle, r } = attach(rig, {
    [hostEnd]: {
      type: 'veth', name: 'eth0', addresses: ['10.62.0.2/24', 'fd62::2/64'], gateway: '10.62.0.1',
      hostBridge: br, hostMac: '02:00:00:62:00:AA', hostAddresses: ['10.63.0.1/24', 'fd63::1/64'],
    },
  });
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.equal(requests(r.stderr, RTM.NEWLINK).filter((l) => l.includes(`create veth ${hostEnd}`)).length, 1, 'one request creates the pair in the bridge');

  const he = ipDetails(rig.simhost)[hostEnd];
  t.equal(he?.master, br, 'the host end is a port of the bridge');
  t.equal(he?.address, '02:00:00:62:00:aa', 'the host end has its MAC');
  t.same(he?.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort(), ['10.63.0.1/24', 'fd63::1/64'], 'the host end has its addresses');
  t.equal(ipDetails(rig.simhost)[br]?.address, '02:00:00:62:00:01', 'the bridge keeps its MAC');
  t.equal(ping(rig.ctr, '10.62.0.1'), 0, 'the container pings the bridge over IPv4');
  t.equal(ping(rig.ctr, 'fd62::1'), 0, 'the container pings the bridge over IPv6');

  await detachAndCheck(t, rig, id, bundle, before);
});

t.test('a moved NIC: routes in the container, and its own host routes back after poststop', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const ip = (args: string[]) => shOk('ip', ['-n', rig.simhost, ...args]);
  ip(['addr', 'add', '192.0.2.10/24', 'dev', nic]);
  ip(['addr', 'add', '2001:db8:a::10/64', 'dev', nic, 'nodad']);
  ip(['route', 'add', '198.18.0.0/16', 'via', '192.0.2.1', 'dev', nic, 'metric', '9']);
  ip(['-6', 'route', 'add', '2001:db8:b::/64', 'via', '2001:db8:a::1', 'dev', nic]);
  // The link-local address's local route comes once its duplicate detection is over.
  const tentative = () => shOk('ip', ['-n', rig.simhost, '-6', 'addr', 'show', 'dev', nic, 'tentative']).trim();
  for (let i = 0; i < 100 && tentative(); i++) await sleep(100);
  const before = await steady(rig.simhost);
  const states = deviceStates(rig.simhost, [nic]);

  const { id, bundle, r } = attach(rig, {
    [nic]: { name: 'net1', routes: [{ dst: '0.0.0.0/0', gw: '192.0.2.254' }, { dst: '2001:db8:c::/48', gw: '2001:db8:a::fe', metric: 3 }] },
  });
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.same(configRoutes(rig.ctr, '-4', 'net1'), [{ dst: 'default', gateway: '192.0.2.254', protocol: 'static', flags: [] }], 'IPv4 default route inside');
  t.same(configRoutes(rig.ctr, '-6', 'net1').filter((x) => x.protocol === 'static'), [
    { dst: '2001:db8:c::/48', gateway: '2001:db8:a::fe', protocol: 'static', metric: 3, flags: [], pref: 'medium' },
  ], 'IPv6 route inside');

  await detachAndCheck(t, rig, id, bundle, before);
  t.same(await deviceStatesSettledTo(rig.simhost, states), states, "the NIC's own host routes are back, and nothing of the container's");
});

t.test('refusals: one line, nothing changed', async (t) => {
  const rig = makeRig(t);
  const br = hostBridge(rig);
  const notBridge = uniqueName('nb');
  rig.sb.createVethPair(rig.simhost, notBridge, uniqueName('nbp'));
  const before = await steady(rig.simhost);
  const strict = policyFile(rig, { config: { allowBridges: ['ont-none*'] } });
  const cases: [string, object, string, Record<string, string>?][] = [
    ['a bridge the policy does not allow', { hostBridge: br },
      `host bridge ${br} is refused for linux.netDevices by policy ${strict}: it matches no pattern of config.allowBridges ["ont-none*"]`,
      { OCI_NETDEV_POLICY: strict }],
    ['a bridge that does not exist', { hostBridge: 'ont-nobr0' }, 'hostBridge ont-nobr0 does not exist on the host'],
    ['a device that is not a bridge', { hostBridge: notBridge }, `hostBridge ${notBridge} is not a bridge (it is a veth)`],
    ['an MTU that would lower the bridge\'s', { hostBridge: br, mtu: 1400 }, `hostBridge ${br} has MTU 1500; mtu 1400 would lower it for the whole bridge`],
    ['a gateway the device cannot reach', { addresses: ['10.64.0.2/24'], gateway: '10.65.0.1' },
      "gateway: 10.65.0.1 is on no subnet of the device's IPv4 addresses (10.64.0.2/24) and in no route of the entry without gw; the kernel would refuse it"],
    ['a route with host bits', { routes: [{ dst: '10.66.0.1/16' }] }, 'routes[0].dst: has host bits set; the network is 10.66.0.0/16 (got "10.66.0.1/16")'],
  ];
  for (const [what, extra, message, env] of cases) {
    const key = uniqueName('vh');
    const { r } = attach(rig, { [key]: { type: 'veth', name: 'eth0', ...extra } }, env);
    t.not(r.status, 0, `${what}: createRuntime fails`);
    t.equal(userStderr(r.stderr), `oci-netdev: device ${key}: ${message}`, `${what}: one line naming the device`);
    t.same([RTM.NEWLINK, RTM.DELLINK, RTM.NEWADDR, RTM.NEWROUTE].map((ty) => requests(r.stderr, ty).length), [0, 0, 0, 0], `${what}: no change requested`);
    t.same(nsSnapshot(rig.simhost), before, `${what}: host unchanged`);
    t.same(nonLoopback(rig.ctr), [], `${what}: container unchanged`);
    t.same(stateEntries(rig.stateDir), [], `${what}: no state`);
  }
});
