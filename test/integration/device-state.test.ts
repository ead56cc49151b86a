// What a move destroys comes back: a NIC's routes (via a gateway, with a metric, in table 100 and
// a table above 255, IPv6), its permanent neighbours (IPv4 and IPv6), its per-device sysctls and its
// traffic control (an htb root with a class and a filter, a pfifo root) are on the host again after
// poststop and after a rollback; an IPv6 address with finite lifetimes has its prefix route back.
// A throwaway netns plays the host (the hook runs under nsenter --net), veth ends stand in for NICs.
import t from 'tap';
import { restoreSysctls } from '../../src/apply/device-state';
import { Netns } from '../../src/netns/netns';
import { ok } from '../helpers/assert';
import { bundleFor, createRuntime, poststop } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { makeRig, Rig } from '../helpers/netdevices';
import { inSimHost, nsSnapshot, shOk, settledTo, steady } from '../helpers/sandbox';
import { dadDone, deviceStates, deviceStatesSettledTo, deviceStateSnapshot, DeviceStateSnapshot, FINITE_V6, richNics } from '../helpers/device-state';

/** The device's prefix route of FINITE_V6, if the kernel has one. */
const finitePrefixRoute = (w: Rig, dev: string): unknown[] =>
  JSON.parse(shOk(...inSimHost(w.simhost, ['ip', '-j', '-6', 'route', 'show', FINITE_V6.prefix, 'dev', dev]))) as unknown[];

t.test('after poststop, routes, neighbours, sysctls and tc of moved NICs are back exactly', async (t) => {
  const w = makeRig(t);
  const { dual, v4only } = richNics(w.sb, w.simhost);
  const links = await steady(w.simhost);
  await dadDone(w.simhost, [dual, v4only]);
  const before = deviceStates(w.simhost, [dual, v4only]);
  t.equal(finitePrefixRoute(w, dual).length, 1, 'the finite-lifetime IPv6 address has its prefix route before');
  const id = uniqueId('ctr');
  const bundle = bundleFor(w, { [dual]: { name: uniqueName('a') }, [v4only]: {} });

  ok(t, createRuntime(w, id, bundle), 'create-runtime');
  t.notOk(dual in nsSnapshot(w.simhost), 'the NIC left the host');
  t.same(deviceStateSnapshot(w.simhost, 'lo').rules, before[dual].rules, 'the ip rule stays on the host meanwhile');

  const r = poststop(w, id, bundle);
  ok(t, r, 'poststop');
  t.equal(r.stderr, '', 'no warning: everything was restored');
  t.same(await settledTo(w.simhost, links), links, 'links and addresses as before');
  const after = await deviceStatesSettledTo(w.simhost, before);
  for (const dev of [dual, v4only]) {
    for (const k of Object.keys(before[dev]) as (keyof DeviceStateSnapshot)[]) {
      t.same(after[dev][k], before[dev][k], `${dev}: ${k} as before`);
    }
  }
  t.ok(before[dual].routes.length >= 8 && before[dual].neighbours.length === 2 && before[dual].filters.length >= 1, 'and the comparison had something to compare');
  t.ok(before[v4only].filters.some((l) => l.includes('flowid 1:1')) && before[v4only].filters.some((l) => l.includes('flowid 1:3')), 'clsact filters on both sides were compared');
  t.equal(finitePrefixRoute(w, dual).length, 1, 'the finite-lifetime IPv6 address has its prefix route back');
});

t.test('after a rollback, routes, neighbours, sysctls and tc of moved NICs are back exactly', async (t) => {
  const w = makeRig(t);
  // IPv6 is off for devices arriving in the container, so adding the dual NIC's IPv6 addresses
  // there fails after both NICs have moved: a real kernel refusal, then a rollback.
  shOk(...inSimHost(w.ctr, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']));
  const { dual, v4only } = richNics(w.sb, w.simhost);
  const links = await steady(w.simhost);
  await dadDone(w.simhost, [dual, v4only]);
  const before = deviceStates(w.simhost, [dual, v4only]);
  const bundle = bundleFor(w, { [v4only]: {}, [dual]: { name: uniqueName('a') } });

  const r = createRuntime(w, uniqueId('ctr'), bundle);
  t.not(r.status, 0, 'create-runtime fails');
  t.match(r.stderr, /add address 2001:db8:a::10\/64 .*(EACCES|IPv6 is disabled)/, 'on an IPv6 address of the dual NIC, after the move');
  t.match(r.stderr, dual, 'naming it');
  t.notMatch(r.stderr, /rollback also failed|not restored/, 'the rollback restored everything');
  t.same(await settledTo(w.simhost, links), links, 'links and addresses as before');
  const after = await deviceStatesSettledTo(w.simhost, before);
  for (const dev of [dual, v4only]) {
    for (const k of Object.keys(before[dev]) as (keyof DeviceStateSnapshot)[]) {
      t.same(after[dev][k], before[dev][k], `${dev}: ${k} as before`);
    }
  }
  t.equal(finitePrefixRoute(w, dual).length, 1, 'the finite-lifetime IPv6 address has its prefix route back');
});

t.test('a recorded sysctl that cannot be read back is named in one warning with the reason, and the others are still restored', async (t) => {
  const rig = makeRig(t);
  const dev = uniqueName('sys');
  rig.sb.createVethPair(rig.simhost, dev, uniqueName('peer'));
  using host = Netns.open(`/run/netns/${rig.simhost}`);
  const warnings: string[] = [];
  // "ipv4/.." would name the device's conf folder itself: the reader refuses such a key.
  const state = { routes: [], neighbours: [], tc: [], sysctls: { 'ipv4/..': '1', 'ipv6/accept_ra': '0' } };
  restoreSysctls(host, state, 'k', dev, (m) => warnings.push(m));
  t.equal(warnings.length, 1, 'one warning', { warnings });
  t.equal(warnings[0], `device k: sysctl ipv4/..=1 not restored: device ${dev}: ipv4/.. is not a per-device sysctl`, 'naming the sysctl and why');
  t.equal(shOk(...inSimHost(rig.simhost, ['cat', `/proc/sys/net/ipv6/conf/${dev}/accept_ra`])).trim(), '0', 'the other one is restored, in the host given');
});
