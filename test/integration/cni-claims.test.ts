// Claims are shared between the doors: two CNI containers racing for one device (one wins, the
// other gets code 11 naming the owner), and a device held through the OCI hooks cannot be taken
// through CNI, nor the other way round.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chainAdd, chainDel, CniList, CniRun, cniPath, reservations, startPlugin } from '../helpers/cni';
import { uniqueId, uniqueName } from '../helpers/names';
import { configBundle, ipDetails, makeRig, ociState, stateEntries, traced, userStderr } from '../helpers/netdevices';
import { netnsPath, settledTo, steady } from '../helpers/sandbox';

t.test('two containers race for one device: one gets it, the other code 11 naming the owner', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const ipamDir = rig.sb.tempDir('ipam');
  const before = await steady(rig.simhost);
  const network = uniqueId('net');
  const conf = {
    cniVersion: '1.0.0', name: network, type: 'oci-netdev', device: nic, stateDir: rig.stateDir,
    ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.125.0.0/24' }]] },
  };
  const path = cniPath(rig.sb, rig.stateDir);
  const runs: CniRun[] = [rig.ctr, rig.sb.createNetns('ctr')].map((ns) => ({
    simhost: rig.simhost, containerId: uniqueId('ctr'), netns: netnsPath(ns), ifname: 'eth0', path,
  }));
  const outcomes = await Promise.all(runs.map((r) => startPlugin(r, 'ADD', 'oci-netdev', conf)));
  const winner = outcomes.findIndex((o) => o.status === 0);
  t.not(winner, -1, 'one ADD succeeds', { outcomes });
  const loser = outcomes[1 - winner];
  t.equal(loser.status, 1, 'the other fails');
  t.match(loser.json, { code: 11, msg: new RegExp(`${nic} is held by container .*${runs[winner].containerId}`) }, 'with code 11 naming the owner');
  const held = reservations(ipamDir, network);
  t.equal(held.length, 1, 'only the winner keeps an IPAM address');

  const list: CniList = { cniVersion: '1.0.0', name: network, plugins: [conf] };
  for (const r of runs) t.notOk(chainDel(list, r).failed, `DEL ${r.containerId}`);
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.notOk(existsSync(join(ipamDir, network, '10.125.0.2')) || existsSync(join(ipamDir, network, '10.125.0.3')), 'no address held');
});

t.test('a device held through the hooks cannot be taken through CNI, and the other way round', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const before = await steady(rig.simhost);
  const path = cniPath(rig.sb, rig.stateDir);
  const list: CniList = { cniVersion: '1.0.0', name: uniqueId('net'), plugins: [{ type: 'oci-netdev', device: nic, stateDir: rig.stateDir }] };
  const cniCtr = rig.sb.createNetns('ctr');
  const run: CniRun = { simhost: rig.simhost, containerId: uniqueId('ctr'), netns: netnsPath(cniCtr), ifname: 'eth0', path };

  const ociId = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'eth1' } } });
  t.equal(traced(rig, 'create-runtime', ociState(ociId, bundle, 'creating')).status, 0, 'the hook takes the device');
  const add = chainAdd(list, run);
  t.equal(add.failed?.outcome.status, 1, 'a CNI ADD for it fails');
  t.match(add.failed?.outcome.json, { code: 11, msg: new RegExp(`held by container ${ociId}`) }, 'with code 11 naming the hook\'s container');
  t.notOk(chainDel(list, run).failed, 'the runtime\'s DEL after the failed ADD succeeds');
  t.ok(ipDetails(rig.ctr).eth1, 'and leaves the hook\'s device where it is');
  t.equal(traced(rig, 'poststop', ociState(ociId, bundle, 'stopped')).status, 0, 'poststop');

  const added = chainAdd(list, run);
  t.notOk(added.failed, 'now CNI takes it', { failed: added.failed });
  const hook = traced(rig, 'create-runtime', ociState(uniqueId('ctr'), bundle, 'creating'));
  t.not(hook.status, 0, 'the hook cannot take it');
  t.match(userStderr(hook.stderr), `held by container cni:${list.name}:${run.containerId}:eth0`, 'and names the CNI attachment');
  t.notOk(chainDel(list, run, added.result).failed, 'DEL');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});
