// oci-netdev as a CNI plugin moving a host NIC (a veth end standing in for one, in a throwaway
// simulated host), in chains with Debian's reference plugins (host-local IPAM, tuning) run by the
// libcni-like runner of test/helpers/cni.ts: ADD, CHECK, DEL and DEL again, DEL after the
// container's netns path is gone or without CNI_NETNS, the interface name taken, IPAM failing.
import t, { Test } from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chainAdd, chainCheck, chainDel, CniList, execPlugin, nicSetup, NicSetup, reservations } from '../helpers/cni';
import { OCI_NETDEV } from '../helpers/hook';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from '../../src/libcni/spec';
import { uniqueId, uniqueName } from '../helpers/names';
import { ipDetails, stateEntries } from '../helpers/netdevices';
import { netnsPath, settledTo, shOk, steady } from '../helpers/sandbox';

type Setup = NicSetup;

/** A stand-in NIC with a permanent global address of its own, which must come home too. */
function setup(t: Test): Setup {
  const s = nicSetup(t);
  shOk('ip', ['-n', s.rig.simhost, 'addr', 'add', '198.51.100.7/24', 'dev', s.nic]);
  return s;
}

function hostLocal(s: Setup, extra: object = {}): object {
  return { type: 'host-local', dataDir: s.ipamDir, ranges: [[{ subnet: '10.123.0.0/24', gateway: '10.123.0.1', ...extra }]], routes: [{ dst: '0.0.0.0/0' }] };
}

/** oci-netdev moving the NIC with host-local, then tuning setting MAC and MTU. */
function nicList(s: Setup, name = uniqueId('net')): CniList {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      { type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir, ipam: hostLocal(s) },
      { type: 'tuning', mac: '02:00:5e:00:53:77', mtu: 1280, dataDir: s.tuningDir },
    ],
  };
}

const held = (s: Setup, network: string): string[] => reservations(s.ipamDir, network);

const v4 = (ns: string, dev: string) => (ipDetails(ns)[dev]?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`).sort();

t.test('a moved NIC with host-local then tuning: ADD, CHECK, DEL, DEL again', async (t) => {
  const s = setup(t);
  const before = await steady(s.rig.simhost);
  const list = nicList(s);

  const add = chainAdd(list, s.run);
  t.notOk(add.failed, 'the chain ADDs', { failed: add.failed });
  const result = add.result as { cniVersion: string; interfaces: { name: string; mac: string; sandbox: string }[]; ips: { address: string; gateway: string; interface: number }[] };
  t.equal(result.cniVersion, '1.0.0', 'the result speaks the list version');
  t.same(result.interfaces.map((i) => [i.name, i.sandbox]), [['eth0', s.run.netns]], 'one interface, eth0 in the sandbox');
  t.equal(result.interfaces[0].mac, '02:00:5e:00:53:77', 'tuning rewrote the MAC in the result');
  t.same(result.ips.map((i) => [i.address, i.gateway, i.interface]), [['10.123.0.2/24', '10.123.0.1', 0]], 'the IPAM address, on interface 0');
  t.notOk(s.nic in ipDetails(s.rig.simhost), 'the NIC left the host');
  const eth0 = ipDetails(s.rig.ctr).eth0;
  t.equal(eth0?.address, '02:00:5e:00:53:77', 'the container sees eth0 with the MAC tuning set');
  t.equal(eth0?.mtu, 1280, 'and its MTU');
  t.same(v4(s.rig.ctr, 'eth0'), ['10.123.0.2/24', '198.51.100.7/24'], 'its own permanent address and the IPAM one');
  t.match(shOk('ip', ['-n', s.rig.ctr, 'route', 'show', 'default']), /default via 10\.123\.0\.1 dev eth0/, 'the IPAM route through the gateway');
  t.same(held(s, list.name), ['10.123.0.2'], 'host-local holds the address');
  t.match(shOk('nsenter', [`--net=${netnsPath(s.rig.simhost)}`, OCI_NETDEV, 'status', '--state-dir', s.rig.stateDir]),
    `CNI network ${list.name}, container ${s.run.containerId}, eth0`, 'oci-netdev status names the CNI attachment');

  t.notOk(chainCheck(list, s.run, result).failed, 'CHECK passes');
  shOk('ip', ['-n', s.rig.ctr, 'addr', 'del', '10.123.0.2/24', 'dev', 'eth0']);
  const broken = chainCheck(list, s.run, result).failed;
  t.equal(broken?.type, 'oci-netdev', 'CHECK fails once the IPAM address is gone from the container');
  t.match(broken?.outcome.json, { code: 100, msg: /10\.123\.0\.2\/24/ }, 'naming the address');

  t.notOk(chainDel(list, s.run, result).failed, 'the chain DELs');
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before: name, MAC, MTU, address, up');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
  t.same(held(s, list.name), [], 'the IPAM reservation is released');
  t.notOk(chainDel(list, s.run, result).failed, 'a second DEL succeeds');
  t.same(await settledTo(s.rig.simhost, before), before, 'and changes nothing');
});

// Every spec version the plugin serves, as CNI's own suites loop over them: ADD (the result in that
// version's shape), CHECK from 0.4.0, DEL, DEL again. oci-netdev alone, with no delegate: Debian's
// plugins stop at 1.0.0, and a version's shape is the plugin's own. Cheap (a plugin run each); the
// chains with IPAM and tuning here and the runtimes in test/e2e stay at one version, since each
// costs seconds and what differs between versions there is the delegates' and the runtimes'.
for (const version of SUPPORTED_VERSIONS) {
  t.test(`spec version ${version}: ADD, CHECK, DEL and DEL again of oci-netdev alone`, async (t) => {
    const s = setup(t);
    const before = await steady(s.rig.simhost);
    const list: CniList = { cniVersion: version, name: uniqueId('net'), plugins: [{ type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir }] };
    const mac = ipDetails(s.rig.simhost)[s.nic]?.address;
    const add = chainAdd(list, s.run);
    t.notOk(add.failed, 'ADD', { failed: add.failed });
    // Results before 0.3.0 have no interfaces; with no IPAM they hold no address either.
    const expected = version < '0.3.0' ? { cniVersion: version } : { cniVersion: version, interfaces: [{ name: 'eth0', mac, mtu: 1500, sandbox: s.run.netns }] };
    t.same(add.result, expected, `the result in the shape of ${version}`);
    t.same(Object.keys(ipDetails(s.rig.ctr)).sort(), ['eth0', 'lo'], 'the NIC is eth0 in the container');
    if (version >= '0.4.0') t.notOk(chainCheck(list, s.run, add.result).failed, 'CHECK passes');
    t.notOk(chainDel(list, s.run, add.result).failed, 'DEL');
    t.same(await settledTo(s.rig.simhost, before), before, 'the NIC is home as it was');
    t.same(stateEntries(s.rig.stateDir), [], 'no state left');
    t.notOk(chainDel(list, s.run, add.result).failed, 'a second DEL succeeds');
  });
}

t.test('DEL after the container netns path is gone, and DEL without CNI_NETNS', async (t) => {
  for (const variant of ['path deleted', 'no CNI_NETNS'] as const) {
    await t.test(variant, async (t) => {
      const s = setup(t);
      const before = await steady(s.rig.simhost);
      const list = nicList(s);
      const add = chainAdd(list, s.run);
      t.notOk(add.failed, 'ADD', { failed: add.failed });
      if (variant === 'path deleted') {
        // The namespace stays alive through oci-netdev's pin; the sandbox's own path goes.
        shOk('ip', ['netns', 'del', s.rig.ctr]);
        t.notOk(existsSync(netnsPath(s.rig.ctr)), 'the netns path is gone');
        const del = chainDel(list, s.run, add.result);
        t.notOk(del.failed, 'the chain DELs with a CNI_NETNS that no longer exists', { failed: del.failed });
        shOk('ip', ['netns', 'add', s.rig.ctr]); // for the sandbox's teardown
      } else {
        const del = chainDel(list, { ...s.run, netns: undefined }, add.result);
        t.notOk(del.failed, 'the chain DELs without CNI_NETNS', { failed: del.failed });
      }
      t.same(await settledTo(s.rig.simhost, before), before, 'the NIC is home as it was');
      t.same(stateEntries(s.rig.stateDir), [], 'no state left');
      t.same(held(s, list.name), [], 'the IPAM reservation is released');
    });
  }
});

t.test('ADD with the interface name taken in the container fails and rolls back, IPAM included', async (t) => {
  const s = setup(t);
  shOk('ip', ['-n', s.rig.ctr, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
  const before = await steady(s.rig.simhost);
  const list = nicList(s);
  const add = chainAdd(list, s.run);
  t.equal(add.failed?.type, 'oci-netdev', 'oci-netdev fails the ADD');
  t.equal(add.failed?.outcome.status, 1, 'with exit 1');
  t.same(add.failed?.outcome.json, { cniVersion: '1.0.0', code: 100, msg: `device ${s.nic}: name eth0 already exists in the container` }, 'and a CNI error on stdout naming eth0');
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(held(s, list.name), [], 'the IPAM reservation is released');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
  t.notOk(chainDel(list, s.run).failed, 'the runtime\'s DEL after the failed ADD succeeds');
  t.ok(ipDetails(s.rig.ctr).other0, 'the container\'s own devices are untouched');
});

t.test('ADD failing in IPAM leaves the NIC on the host', async (t) => {
  const s = setup(t);
  const other = uniqueName('nic');
  s.rig.sb.createVethPair(s.rig.simhost, other, uniqueName('peer'));
  const network = uniqueId('net');
  // A range of one address: the first container takes it, the second finds none.
  const ipam = hostLocal(s, { rangeStart: '10.123.0.9', rangeEnd: '10.123.0.9' });
  const first: CniList = { cniVersion: '1.0.0', name: network, plugins: [{ type: 'oci-netdev', device: other, stateDir: s.rig.stateDir, ipam }] };
  const ctr2 = s.rig.sb.createNetns('ctr');
  const firstRun = { ...s.run, containerId: uniqueId('ctr'), netns: netnsPath(ctr2) };
  const added = chainAdd(first, firstRun);
  t.notOk(added.failed, 'the first container takes the only address', { failed: added.failed });
  const before = await steady(s.rig.simhost);

  const second: CniList = { ...first, plugins: [{ type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir, ipam }] };
  const add = chainAdd(second, s.run);
  t.equal(add.failed?.type, 'oci-netdev', 'the second ADD fails');
  t.same(add.failed?.outcome.json, { cniVersion: '1.0.0', code: 999, msg: 'host-local: failed to allocate for range 0: no IP addresses available in range set: 10.123.0.9-10.123.0.9' },
    'with the IPAM plugin named, and its own code and message');
  t.same(await settledTo(s.rig.simhost, before), before, 'its NIC stays on the host as it was');
  t.same(Object.keys(ipDetails(s.rig.ctr)), ['lo'], 'nothing reached its container');
  t.same(held(s, network), ['10.123.0.9'], 'the first container keeps its address');
  t.notOk(chainDel(first, firstRun, added.result).failed, 'the first container DELs');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('errors are CNI errors on stdout: version, environment, config', async (t) => {
  const s = setup(t);
  const conf = { cniVersion: '1.0.0', name: 'n', type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir };
  // The error speaks the config's version once the config is read and its version known; before (the
  // environment) or when the version is not one it serves, the plugin's own (CURRENT_VERSION).
  const versions = JSON.stringify(SUPPORTED_VERSIONS);
  const cases: [string, object, Record<string, string>, { cniVersion: string; code: number; msg: string }][] = [
    ['an unsupported version', { ...conf, cniVersion: '0.9.9' }, {},
      { cniVersion: CURRENT_VERSION, code: 1, msg: `incompatible CNI versions: config is "0.9.9", plugin supports ${versions}` }],
    ['CHECK below 0.4.0', { ...conf, cniVersion: '0.3.1' }, { CNI_COMMAND: 'CHECK' },
      { cniVersion: '0.3.1', code: 1, msg: 'config version 0.3.1 does not allow CHECK (it needs 0.4.0 or later)' }],
    ['no CNI_IFNAME', conf, { CNI_IFNAME: '' }, { cniVersion: CURRENT_VERSION, code: 4, msg: 'required environment variable CNI_IFNAME missing for ADD' }],
    ['a bad mtu', { ...conf, mtu: 'big' }, {}, { cniVersion: '1.0.0', code: 7, msg: 'network config: mtu: must be an integer from 68 to 65535 (got "big")' }],
    ['no device', { ...conf, device: undefined }, {},
      { cniVersion: '1.0.0', code: 7, msg: 'network config: device: one of device, hwaddr, kernelpath, pciBusID or runtimeConfig.deviceID is required' }],
  ];
  for (const [what, c, env, error] of cases) {
    const out = execPlugin(s.run, env.CNI_COMMAND ?? 'ADD', 'oci-netdev', c, env);
    t.equal(out.status, 1, `${what}: exit 1`);
    t.same(out.json, error, `${what}: code ${error.code}`);
  }
  const policy = join(s.rig.sb.tempDir('policy'), 'policy.json');
  writeFileSync(policy, JSON.stringify({ cni: { allowDevices: ['nothing-*'] } }), { mode: 0o644 });
  // The node's policy, from the plugin's environment: a network config cannot choose it.
  const refused = execPlugin(s.run, 'ADD', 'oci-netdev', conf, { OCI_NETDEV_POLICY: policy });
  t.same(refused.json, { cniVersion: '1.0.0', code: 7, msg: `device ${s.nic}: host device ${s.nic} is refused for the CNI network config by policy ${policy}: it matches no pattern of cni.allowDevices ["nothing-*"]` },
    'the policy section cni refuses a device: code 7 naming device, rule and file');
  t.ok(s.nic in ipDetails(s.rig.simhost), 'the NIC never moved');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('DEL after the container renamed the device and changed its MAC: the NIC still comes home', async (t) => {
  const s = setup(t);
  const before = await steady(s.rig.simhost);
  const list = nicList(s);
  const add = chainAdd(list, s.run);
  t.notOk(add.failed, 'ADD', { failed: add.failed });
  shOk('ip', ['-n', s.rig.ctr, 'link', 'set', 'eth0', 'down']);
  shOk('ip', ['-n', s.rig.ctr, 'link', 'set', 'eth0', 'name', 'renamed0', 'address', '02:00:5e:00:53:11']);
  t.notOk(chainDel(list, s.run, add.result).failed, 'the chain DELs');
  t.same(await settledTo(s.rig.simhost, before), before, 'the NIC is home as it was');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
  t.same(held(s, list.name), [], 'the IPAM reservation is released');
});

t.test('oci-netdev status and gc: an attachment whose netns path is gone is restored, a live one kept', async (t) => {
  const s = setup(t);
  const other = uniqueName('nic');
  s.rig.sb.createVethPair(s.rig.simhost, other, uniqueName('peer'));
  const before = await steady(s.rig.simhost);
  const list = nicList(s);
  const liveCtr = s.rig.sb.createNetns('ctr');
  const liveList: CniList = { ...list, plugins: [{ type: 'oci-netdev', device: other, stateDir: s.rig.stateDir }] };
  const liveRun = { ...s.run, containerId: uniqueId('ctr'), netns: netnsPath(liveCtr) };
  t.notOk(chainAdd(list, s.run).failed, 'ADD the one to be orphaned');
  t.notOk(chainAdd(liveList, liveRun).failed, 'ADD the live one');
  shOk('ip', ['netns', 'del', s.rig.ctr]);
  const cli = (args: string[]) => shOk('nsenter', [`--net=${netnsPath(s.rig.simhost)}`, OCI_NETDEV, ...args, '--state-dir', s.rig.stateDir]);
  const entries = JSON.parse(cli(['status', '--json'])) as { origin?: { containerId: string }; alive: boolean }[];
  t.same(entries.map((e) => [e.origin?.containerId, e.alive]).sort(), [[s.run.containerId, false], [liveRun.containerId, true]].sort(),
    'status shows both, alive while the netns path holds');
  t.match(cli(['gc']), /1 restored, 1 kept/, 'gc restores the orphan and keeps the live one');
  shOk('ip', ['netns', 'add', s.rig.ctr]); // for the sandbox's teardown
  t.ok(s.nic in ipDetails(s.rig.simhost), 'the orphan\'s NIC is home');
  t.ok(ipDetails(liveCtr).eth0, 'the live one keeps its device');
  t.notOk(chainDel(liveList, liveRun).failed, 'DEL the live one');
  t.notOk(chainDel(list, s.run).failed, 'the orphan\'s DEL after gc succeeds and releases its address');
  t.same(held(s, list.name), [], 'no address held');
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});
