// The engine called in this test process (no hook process, no nsenter), given a throwaway netns as
// its host (EngineOptions.hostNetns): a moved NIC with IPv4 and IPv6 addresses, routes, per-device
// sysctls, MTU and MAC, a created veth and a macvlan go into the container and back, and the host
// is exactly as before; gc restores on that host too, CNI plugins run there, and validate --live
// and the device list read it. The test process's own namespace (the machine's) sees none of it:
// no event names a device of the test, and the thread is still in it after every call.
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import t, { Test } from 'tap';
import { hostDevices } from '../../src/engine/devices';
import { attach, validateConfig } from '../../src/engine/attach';
import { detach, gc } from '../../src/engine/detach';
import { status } from '../../src/engine/status';
import { cniSettings } from '../../src/engine/networks';
import { Logger } from '../../src/log/logger';
import { DEBIAN_CNI } from '../helpers/cni';
import { bridgeNetwork, cniDirs, leases } from '../helpers/cni-networks';
import { ok } from '../helpers/assert';
import { bundleFor, createRuntime, creating, hostNic, inProcessOptions, poststop, stopped, watchOwnNamespace } from '../helpers/host';
import { dadDone, deviceStates, deviceStatesSettledTo, richNics } from '../helpers/device-state';
import { uniqueId, uniqueName } from '../helpers/names';
import { ipDetails, makeRig, nonLoopback, Rig, stateEntries } from '../helpers/netdevices';
import { settledTo, sh, shOk, steady } from '../helpers/sandbox';

const threadNetns = (): string => readlinkSync('/proc/thread-self/ns/net');

/** The engine's warnings, as the CLI would print them; none is expected. */
function quietLog(): { log: Logger; stderr: () => string } {
  let text = '';
  return { log: new Logger({ stderr: (s) => (text += s) }), stderr: () => text };
}

/** Names of `names` that a link, address or route event or a link of this process's namespace mentions. */
async function seenHere(stop: () => Promise<string[]>, names: string[]): Promise<{ events: string[]; links: string[] }> {
  const mentions = (line: string) => names.some((n) => new RegExp(`\\b${n}\\b`).test(line));
  const links = (JSON.parse(shOk('ip', ['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname);
  return { events: (await stop()).filter(mentions), links: links.filter((l) => names.includes(l)) };
}

function checkOwnNamespaceUntouched(t: Test, seen: { events: string[]; links: string[] }): void {
  t.same(seen.events, [], "no event of this process's namespace names a device of the test");
  t.same(seen.links, [], "no device of the test is in this process's namespace");
}

/** A bundle with the rich NIC `dual` moved (renamed, MTU and MAC changed), a veth and a macvlan on `master`. */
function mixedBundle(rig: Rig, dual: string, vethHost: string, master: string): string {
  return bundleFor(rig, {
    [dual]: { name: 'eth1', mtu: 1280, mac: '02:0a:00:00:00:11' },
    [vethHost]: { type: 'veth', name: 'eth5', addresses: ['10.55.0.2/24', 'fd55::2/64'] },
    mv0: { type: 'macvlan', master, mode: 'bridge', name: 'eth7', addresses: ['10.77.0.2/24'] },
  });
}

t.test('in-process attach and poststop on a throwaway host: everything back exactly, the real host untouched', async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const home = threadNetns();
  const { dual, v4only } = richNics(rig.sb, rig.simhost);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', dual, 'mtu', '1450']);
  const master = hostNic(rig);
  const vethHost = uniqueName('vh');
  const names = [dual, v4only, master, vethHost, 'eth1', 'eth5', 'eth7'];
  const stopWatching = await watchOwnNamespace(t);
  await dadDone(rig.simhost, [dual]);
  const links = await steady(rig.simhost);
  const states = deviceStates(rig.simhost, [dual]);
  t.ok(states[dual].sysctls.some((l) => l === `net.ipv4.conf.${dual}.rp_filter = 2`), 'the NIC has a sysctl off its default');
  const id = uniqueId('ctr');
  const bundle = mixedBundle(rig, dual, vethHost, master);

  const r = createRuntime(rig, id, bundle);
  ok(t, r, 'attach');
  t.equal(r.stderr, '', 'no warning');
  t.equal(threadNetns(), home, 'the thread is back in its own namespace');
  const inside = ipDetails(rig.ctr);
  t.same(Object.keys(inside).sort(), ['eth1', 'eth5', 'eth7', 'lo'], 'the container holds the three devices');
  t.equal(inside.eth1.mtu, 1280, 'the moved NIC has its MTU in the container');
  t.equal(inside.eth1.address, '02:0a:00:00:00:11', 'and its MAC');
  const addrs = inside.eth1.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
  t.ok(['192.0.2.10/24', '2001:db8:a::10/64'].every((a) => addrs.includes(a)), 'and its IPv4 and IPv6 addresses', { addrs });
  t.equal(inside.eth7.linkinfo?.info_kind, 'macvlan', 'the macvlan is made in the container');
  t.ok(vethHost in ipDetails(rig.simhost), "the veth's host end is on the throwaway host");
  t.notOk(dual in ipDetails(rig.simhost), 'the NIC left the throwaway host');

  const { log, stderr } = quietLog();
  const [entry] = status(inProcessOptions(rig, log));
  t.same(entry.devices.map((d) => d.state), ['in', 'in', 'in'], 'status, given the throwaway host, finds the three devices by their identity');
  t.equal(stderr(), '', 'status warns of nothing');

  const p = poststop(rig, id, bundle);
  ok(t, p, 'poststop');
  t.equal(p.stderr, '', 'no warning: everything was restored');
  t.equal(threadNetns(), home, 'the thread is back in its own namespace');
  t.same(await settledTo(rig.simhost, links), links, 'links (MTU, MAC, names) and addresses of the throwaway host as before');
  t.same(await deviceStatesSettledTo(rig.simhost, states), states, 'routes, neighbours, sysctls and tc of the NIC as before');
  t.same(nonLoopback(rig.ctr), [], 'nothing is left in the container');
  t.same(stateEntries(rig.stateDir), [], 'nor in the state dir');
  checkOwnNamespaceUntouched(t, await seenHere(stopWatching, names));
});

t.test('in-process gc restores on the throwaway host it is given', async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const home = threadNetns();
  const { dual, v4only } = richNics(rig.sb, rig.simhost);
  const master = hostNic(rig);
  const vethHost = uniqueName('vh');
  const stopWatching = await watchOwnNamespace(t);
  await dadDone(rig.simhost, [dual]);
  const links = await steady(rig.simhost);
  const states = deviceStates(rig.simhost, [dual]);
  const id = uniqueId('ctr');
  ok(t, createRuntime(rig, id, mixedBundle(rig, dual, vethHost, master)), 'attach');

  // The state has no pid: gc cannot tell the container runs, and restores it as if it were gone.
  const { log, stderr } = quietLog();
  t.same(gc(inProcessOptions(rig, log)).map((g) => g.action), ['restored'], 'gc restores the attachment');
  t.equal(stderr(), '', 'without a warning');
  t.equal(threadNetns(), home, 'the thread is back in its own namespace');
  t.same(await settledTo(rig.simhost, links), links, 'links and addresses of the throwaway host as before');
  t.same(await deviceStatesSettledTo(rig.simhost, states), states, 'routes, neighbours, sysctls and tc of the NIC as before');
  t.same(nonLoopback(rig.ctr), [], 'nothing is left in the container');
  checkOwnNamespaceUntouched(t, await seenHere(stopWatching, [dual, v4only, master, vethHost, 'eth1', 'eth5', 'eth7']));
});

t.test('in-process: a CNI bridge network is made on the throwaway host, where its plugins run', async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const dirs = cniDirs(rig.sb);
  const net = uniqueId('net');
  const bridge = uniqueName('br');
  bridgeNetwork(dirs, net, bridge, '10.99.0.0/24');
  // Had a plugin run in this process's namespace, its bridge would be there: removed all the same.
  rig.sb.defer(() => void sh('ip', ['link', 'del', bridge]));
  const home = threadNetns();
  const stopWatching = await watchOwnNamespace(t);
  const before = await steady(rig.simhost);
  const id = uniqueId('ctr');
  const bundle = bundleFor(rig, { [net]: { type: 'cni', name: 'net1' } });
  const { log, stderr } = quietLog();
  const cni = cniSettings({ confDir: dirs.confDir, path: `${dirs.pluginDir}:${DEBIAN_CNI}`, cacheDir: dirs.cacheDir });
  const opts = { ...inProcessOptions(rig, log), cni };

  attach(creating(id, bundle), opts);
  t.equal(threadNetns(), home, 'the thread is back in its own namespace');
  const host = ipDetails(rig.simhost);
  t.equal(host[bridge]?.linkinfo?.info_kind, 'bridge', 'the bridge plugin made its bridge on the throwaway host');
  t.ok(Object.values(host).some((l) => l.master === bridge && l.linkinfo?.info_kind === 'veth'), "with the container's veth as a port there");
  const inside = ipDetails(rig.ctr);
  t.match(inside.net1?.addr_info.map((a) => a.local), ['10.99.0.2'], 'the container has the interface and its address');
  t.same(leases(dirs, net), ['10.99.0.2'], 'host-local holds the lease');

  detach(stopped(id, bundle), opts);
  t.equal(stderr(), '', 'no warning');
  t.equal(threadNetns(), home, 'the thread is back in its own namespace');
  t.same(nonLoopback(rig.ctr), [], 'nothing is left in the container');
  t.same(leases(dirs, net), [], 'the lease is released');
  t.same(Object.keys(ipDetails(rig.simhost)).sort(), [...Object.keys(before), bridge].sort(), 'the throwaway host keeps only the bridge (CNI bridge DEL leaves it)');
  checkOwnNamespaceUntouched(t, await seenHere(stopWatching, [bridge, 'net1']));
});

t.test("in-process: validate --live and the device list read the throwaway host's devices", async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const nic = hostNic(rig);
  const { log, stderr } = quietLog();
  const opts = inProcessOptions(rig, log);
  const bundle = bundleFor(rig, { [nic]: { name: 'eth1' } });
  t.doesNotThrow(() => validateConfig(join(bundle, 'config.json'), opts, true), 'validate --live plans the move of a NIC only the throwaway host has');
  const listed = hostDevices(opts).map((d) => d.name).filter((n) => n !== 'lo').sort();
  t.same(listed, nonLoopback(rig.simhost), "the device list is the throwaway host's (the NIC and its peer)");
  t.ok(listed.includes(nic), 'with the NIC');
  t.equal(stderr(), '', 'no warning');
  t.same(nonLoopback(rig.ctr), [], 'nothing moved');
});
