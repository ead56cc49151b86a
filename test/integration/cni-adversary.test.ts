// The CNI plugin under attack, by someone who did not write it: ids too long for a folder name,
// a restore that fails during DEL, gc releasing an orphan's IPAM reservation, a hostile
// environment and config, ADD twice, DEL on another network, two networks after one device.
// Every bad input is one CNI error naming what is wrong, and changes nothing.
import t from 'tap';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chainAdd, chainDel, CniList, CniRun, execPlugin, nicSetup, NicSetup, reservations } from '../helpers/cni';
import { OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { ipDetails, stateEntries } from '../helpers/netdevices';
import { netnsPath, settledTo, shOk, steady } from '../helpers/sandbox';

type Setup = NicSetup;

function nicConf(s: Setup, name = uniqueId('net'), extra: object = {}): Record<string, unknown> {
  return { cniVersion: '1.0.0', name, type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir, ...extra };
}

function hostLocal(s: Setup): object {
  return { type: 'host-local', dataDir: s.ipamDir, ranges: [[{ subnet: '10.124.0.0/24' }]] };
}

const held = (s: Setup, network: string): string[] => reservations(s.ipamDir, network);

const cliIn = (s: Setup, args: string[]) => shOk('nsenter', [`--net=${netnsPath(s.rig.simhost)}`, OCI_NETDEV, ...args, '--state-dir', s.rig.stateDir]);

t.test('a 200-character network name and 250-character container ids: bounded, distinct state folders; ADD and DEL work', async (t) => {
  const s = nicSetup(t);
  const other = uniqueName('nic');
  s.rig.sb.createVethPair(s.rig.simhost, other, uniqueName('peer'));
  const before = await steady(s.rig.simhost);
  const network = 'n'.repeat(200);
  // Two ids alike but for their last character: a truncated folder name would mix them up.
  const ids = ['a', 'b'].map((c) => `${'c'.repeat(249)}${c}`);
  const ctr2 = s.rig.sb.createNetns('ctr');
  const runs = [{ ...s.run, containerId: ids[0] }, { ...s.run, containerId: ids[1], netns: netnsPath(ctr2) }];
  const confs = [nicConf(s, network), nicConf(s, network, { device: other })];
  for (const i of [0, 1]) {
    const add = execPlugin(runs[i], 'ADD', 'oci-netdev', confs[i]);
    t.equal(add.status, 0, `ADD ${i} succeeds`, { out: add.stdout });
  }
  const folders = stateEntries(s.rig.stateDir);
  t.equal(folders.length, 2, 'two state folders');
  t.ok(folders.every((f) => Buffer.byteLength(f) <= 255), 'each a valid file name');
  const listed = JSON.parse(cliIn(s, ['status', '--json'])) as { origin?: { containerId: string; network: string } }[];
  t.same(listed.map((e) => e.origin?.containerId).sort(), ids, 'status names the full container ids');
  t.ok(listed.every((e) => e.origin?.network === network), 'and the full network name');
  const del = execPlugin(runs[0], 'DEL', 'oci-netdev', confs[0]);
  t.equal(del.status, 0, 'DEL of the first succeeds', { out: del.stdout });
  t.ok(ipDetails(ctr2).eth0, 'the second keeps its device');
  t.ok(s.nic in ipDetails(s.rig.simhost), 'the first NIC is home');
  t.equal(execPlugin(runs[1], 'DEL', 'oci-netdev', confs[1]).status, 0, 'DEL of the second succeeds');
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('gc of an orphan (netns path gone without DEL) releases its IPAM reservation', async (t) => {
  const s = nicSetup(t);
  const before = await steady(s.rig.simhost);
  const conf = nicConf(s, uniqueId('net'), { ipam: hostLocal(s) });
  const add = execPlugin(s.run, 'ADD', 'oci-netdev', conf);
  t.equal(add.status, 0, 'ADD', { out: add.stdout });
  t.same(held(s, conf.name as string), ['10.124.0.2'], 'host-local holds an address');
  shOk('ip', ['netns', 'del', s.rig.ctr]);
  t.match(cliIn(s, ['gc']), /1 restored/, 'gc restores the orphan');
  shOk('ip', ['netns', 'add', s.rig.ctr]); // for the sandbox's teardown
  t.same(held(s, conf.name as string), [], 'and releases its address');
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('a restore failing during DEL: DEL succeeds with a warning, the journal stays, a later DEL finishes', async (t) => {
  const s = nicSetup(t);
  const before = await steady(s.rig.simhost);
  const hidden = s.rig.sb.createNetns('own');
  const conf = nicConf(s);
  t.equal(execPlugin(s.run, 'ADD', 'oci-netdev', conf).status, 0, 'ADD');
  const index = (JSON.parse(shOk('ip', ['-n', s.rig.ctr, '-j', 'link', 'show', 'eth0'])) as { ifindex: number }[])[0].ifindex;
  // The container hides the NIC in a namespace of its own and puts an impostor at its ifindex.
  shOk('ip', ['-n', s.rig.ctr, 'link', 'set', 'eth0', 'netns', hidden]);
  const fake = uniqueName('fake');
  shOk('ip', ['-n', s.rig.ctr, 'link', 'add', 'eth0', 'index', String(index), 'type', 'veth', 'peer', 'name', fake]);

  const del = execPlugin(s.run, 'DEL', 'oci-netdev', conf);
  t.equal(del.status, 0, 'DEL succeeds, so that the chain goes on', { out: del.stdout });
  t.match(del.stderr, /warning: .*gc/, 'with a warning on stderr');
  t.equal(stateEntries(s.rig.stateDir).length, 1, 'the journal is kept');
  t.ok(ipDetails(s.rig.ctr).eth0, 'the impostor is left alone');
  t.notOk(s.nic in ipDetails(s.rig.simhost), 'the impostor did not come home as the NIC');

  shOk('ip', ['-n', hidden, 'link', 'set', 'eth0', 'name', uniqueName('back'), 'netns', s.rig.ctr]);
  shOk('ip', ['-n', s.rig.ctr, 'link', 'del', 'eth0']);
  const again = execPlugin(s.run, 'DEL', 'oci-netdev', conf);
  t.equal(again.status, 0, 'a later DEL succeeds', { out: again.stdout });
  t.same(await settledTo(s.rig.simhost, before), before, 'and brings the NIC home as it was');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('a hostile environment: one code-4 error naming the variable, nothing changed', async (t) => {
  const s = nicSetup(t);
  const before = await steady(s.rig.simhost);
  const conf = nicConf(s);
  const file = join(s.rig.sb.tempDir('ns'), 'plain');
  writeFileSync(file, 'not a namespace');
  const link = join(s.rig.sb.tempDir('ns'), 'self');
  symlinkSync('/proc/self/ns/net', link);
  const cases: [string, Record<string, string>, number, RegExp][] = [
    ['a container id with /', { CNI_CONTAINERID: 'a/../../b' }, 4, /CNI_CONTAINERID/],
    ['a container id of ..', { CNI_CONTAINERID: '..' }, 4, /CNI_CONTAINERID/],
    ['a container id with a newline', { CNI_CONTAINERID: 'a\nb' }, 4, /CNI_CONTAINERID/],
    ['a container id with :', { CNI_CONTAINERID: 'a:b' }, 4, /CNI_CONTAINERID/],
    ['an ifname with :', { CNI_IFNAME: 'eth0:1' }, 4, /CNI_IFNAME/],
    ['an ifname too long', { CNI_IFNAME: 'e'.repeat(16) }, 4, /CNI_IFNAME/],
    ['an ifname of ..', { CNI_IFNAME: '..' }, 4, /CNI_IFNAME/],
    ['CNI_NETNS relative', { CNI_NETNS: 'run/netns/x' }, 4, /CNI_NETNS/],
    ['CNI_NETNS a regular file', { CNI_NETNS: file }, 4, /CNI_NETNS/],
    ["CNI_NETNS the plugin's own namespace through a symlink", { CNI_NETNS: link }, 4, /CNI_NETNS/],
    ['CNI_NETNS missing', { CNI_NETNS: join(s.rig.sb.tempDir('ns'), 'none') }, 4, /CNI_NETNS/],
    ['CNI_PATH with a relative folder', { CNI_PATH: `bin:${s.run.path.join(':')}` }, 4, /CNI_PATH/],
    ['a multicast MAC in CNI_ARGS', { CNI_ARGS: 'MAC=01:00:5e:00:00:01' }, 4, /CNI_ARGS: MAC/],
    ['an all-zero MAC in CNI_ARGS', { CNI_ARGS: 'MAC=00:00:00:00:00:00' }, 4, /CNI_ARGS: MAC/],
  ];
  for (const [what, env, code, msg] of cases) {
    const out = execPlugin(s.run, 'ADD', 'oci-netdev', conf, env);
    t.equal(out.status, 1, `${what}: exit 1`);
    t.match(out.json, { code, msg }, `${what}: code ${code}`);
    t.equal(out.stdout.trim().split('\n').length, 1, `${what}: one line`);
  }
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(Object.keys(ipDetails(s.rig.ctr)), ['lo'], 'nothing reached the container');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('a hostile config: one code-6 or code-7 error naming the key, nothing changed', async (t) => {
  const s = nicSetup(t);
  const before = await steady(s.rig.simhost);
  const conf = nicConf(s);
  const cases: [string, object | string, number, RegExp][] = [
    ['an ipam type ../x', { ...conf, ipam: { type: '../x' } }, 7, /ipam\.type/],
    ['an ipam type /bin/true', { ...conf, ipam: { type: '/bin/true' } }, 7, /ipam\.type/],
    ['an mtu of 70000', { ...conf, mtu: 70000 }, 7, /mtu/],
    ['an mtu of 1.5', { ...conf, mtu: 1.5 }, 7, /mtu/],
    ['a multicast mac', { ...conf, mac: '01:00:5e:00:00:01' }, 7, /mac/],
    ['a zero mac', { ...conf, mac: '00:00:00:00:00:00' }, 7, /mac/],
    ['a network name with :', { ...conf, name: 'a:b' }, 7, /name/],
    ['a network name with /', { ...conf, name: '../x' }, 7, /name/],
    ['deeply nested JSON', `{"cniVersion":"1.0.0","name":"n","type":"oci-netdev","x":${'['.repeat(100000)}${']'.repeat(100000)}}`, 6, /JSON/],
    ['4 MiB of stdin', `{"cniVersion":"1.0.0","name":"n","type":"oci-netdev","x":"${'x'.repeat(4 << 20)}"}`, 6, /network config/],
  ];
  for (const [what, c, code, msg] of cases) {
    const out = execPlugin(s.run, 'ADD', 'oci-netdev', c);
    t.equal(out.status, 1, `${what}: exit 1`);
    t.match(out.json, { code, msg }, `${what}: code ${code}`);
  }
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(Object.keys(ipDetails(s.rig.ctr)), ['lo'], 'nothing reached the container');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('ADD twice, DEL on another network, a second network after the same device', async (t) => {
  const s = nicSetup(t);
  const before = await steady(s.rig.simhost);
  const network = uniqueId('net');
  const conf = nicConf(s, network, { ipam: hostLocal(s) });
  const add = execPlugin(s.run, 'ADD', 'oci-netdev', conf);
  t.equal(add.status, 0, 'ADD', { out: add.stdout });
  const again = execPlugin(s.run, 'ADD', 'oci-netdev', conf);
  t.equal(again.status, 1, 'a second ADD of the same attachment fails');
  t.match(again.json, { code: 100, msg: /already has eth0 attached/ }, 'saying so');
  t.same(held(s, network), ['10.124.0.2'], 'without a second reservation');

  const elsewhere = execPlugin(s.run, 'DEL', 'oci-netdev', nicConf(s, uniqueId('net')));
  t.equal(elsewhere.status, 0, 'DEL on a network it was never added to succeeds');
  t.ok(ipDetails(s.rig.ctr).eth0, 'and leaves the attachment alone');

  const ctr2 = s.rig.sb.createNetns('ctr');
  const run2: CniRun = { ...s.run, containerId: uniqueId('ctr'), netns: netnsPath(ctr2) };
  const list: CniList = { cniVersion: '1.0.0', name: uniqueId('net'), plugins: [{ type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir, ipam: hostLocal(s) }] };
  const taken = chainAdd(list, run2);
  t.match(taken.failed?.outcome.json, { code: 11, msg: new RegExp(`${s.nic}.*${s.run.containerId}`) }, 'another network after the same device gets code 11 naming the holder');
  t.same(held(s, list.name), [], 'its IPAM reservation is released');
  t.same(Object.keys(ipDetails(ctr2)), ['lo'], 'nothing reached its container');

  t.notOk(chainDel(list, run2).failed, 'its DEL succeeds');
  t.ok(ipDetails(s.rig.ctr).eth0, 'and leaves the holder alone');
  t.equal(execPlugin(s.run, 'DEL', 'oci-netdev', conf).status, 0, 'the holder DELs');
  t.same(held(s, network), [], 'its address is released');
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});
