// Host devices picked by MAC (`hwaddr`) instead of by name, and IPv6 addresses that are usable as
// soon as createRuntime returns (no second DAD after the move, unless `"dad": true`). Through the
// CLI, in a throwaway simulated host; veth ends stand in for NICs. pciBusID and kernelpath need a
// parent bus device, which veths lack: test/unit/select.test.ts covers them.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueId, uniqueName } from '../helpers/names';
import { configBundle, ipDetails, makeRig, ociState, Rig, stateEntries, traced } from '../helpers/netdevices';
import { addAddress, nsSnapshot, settledTo, shOk, steady } from '../helpers/sandbox';
import { ok, refused } from '../helpers/assert';

/** A stand-in NIC in the simulated host (its peer stays there, up, so it has carrier), with `mac` if given. */
function nic(rig: Rig, mac?: string): string {
  const name = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, name, uniqueName('peer'));
  if (mac) shOk('ip', ['-n', rig.simhost, 'link', 'set', name, 'address', mac]);
  return name;
}

/**
 * Duplicate address detection in `ns` for devices that arrive from now on: 20 probes a second
 * apart, so an address that goes through DAD stays tentative long enough to be seen, however
 * loaded the machine (a moved device gets the namespace's defaults).
 */
function slowDad(ns: string): void {
  shOk('nsenter', [`--net=/run/netns/${ns}`, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.dad_transmits=20']);
}

/** The container's view of one device's global IPv6 addresses, as `ip -j addr` shows them. */
function globalV6(ns: string, dev: string) {
  return (ipDetails(ns)[dev]?.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope === 'global');
}

t.test('hwaddr picks the device whatever its name; poststop brings it back under its real name', async (t) => {
  const rig = makeRig(t);
  const mac = '02:00:5e:00:53:a1';
  const dev = nic(rig, mac);
  nic(rig); // another candidate, with another MAC
  addAddress(rig.simhost, dev, '192.0.2.41/24', ['broadcast', '+']);
  const before = await steady(rig.simhost);
  const entry = uniqueName('sel');
  const target = uniqueName('ct');
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [entry]: { hwaddr: mac.toUpperCase(), name: target } } });

  ok(t, traced(rig, 'create-runtime', ociState(id, bundle, 'creating')), 'create-runtime');
  t.notOk(dev in nsSnapshot(rig.simhost), `the device with that MAC (${dev}) left the host`);
  const inside = ipDetails(rig.ctr)[target];
  t.equal(inside?.address, mac, 'the container has it under the requested name');
  t.same(inside?.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), ['192.0.2.41/24'], 'with its address');

  ok(t, traced(rig, 'poststop', ociState(id, bundle, 'stopped')), 'poststop');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before: the device is back under its own name');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('hwaddr without a name: the entry key names the device in the container', async (t) => {
  const rig = makeRig(t);
  const mac = '02:00:5e:00:53:a2';
  const dev = nic(rig, mac);
  const before = await steady(rig.simhost);
  const entry = uniqueName('sel');
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [entry]: { hwaddr: mac } } });
  ok(t, traced(rig, 'create-runtime', ociState(id, bundle, 'creating')), 'create-runtime');
  t.equal(ipDetails(rig.ctr)[entry]?.address, mac, `the container calls ${dev} by the entry key`);
  ok(t, traced(rig, 'poststop', ociState(id, bundle, 'stopped')), 'poststop');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
});

t.test('hwaddr matching no device, or two, is one line and changes nothing', async (t) => {
  const rig = makeRig(t);
  const mac = '02:00:5e:00:53:a3';
  const [a, b] = [nic(rig, mac), nic(rig, mac)];
  const before = await steady(rig.simhost);
  const ctBefore = nsSnapshot(rig.ctr);
  const entry = uniqueName('sel');

  const none = configBundle(rig.sb, rig.ctr, { netDevices: { [entry]: { hwaddr: '02:00:5e:00:53:ff' } } });
  refused(t, traced(rig, 'create-runtime', ociState(uniqueId('ctr'), none, 'creating')), `oci-netdev: device ${entry}: hwaddr 02:00:5e:00:53:ff matches no device in the host network namespace`, 'a hwaddr that matches nothing');

  const two = configBundle(rig.sb, rig.ctr, { netDevices: { [entry]: { hwaddr: mac } } });
  const r = traced(rig, 'create-runtime', ociState(uniqueId('ctr'), two, 'creating'));
  refused(t, r, `oci-netdev: device ${entry}: hwaddr 02:00:5e:00:53:a3 matches 2 devices in the host network namespace (${a}, ${b}); it must match one`, 'a hwaddr that matches two devices, naming both');

  t.same(nsSnapshot(rig.simhost), before, 'the host is unchanged');
  t.same(nsSnapshot(rig.ctr), ctBefore, 'the container is unchanged');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('the policy judges the device hwaddr found, not the entry key', async (t) => {
  const rig = makeRig(t);
  const mac = '02:00:5e:00:53:a4';
  const dev = nic(rig, mac);
  const before = await steady(rig.simhost);
  // The entry key would pass; the device it finds does not.
  const entry = uniqueName('ok');
  const policy = join(rig.sb.tempDir('policy'), 'policy.json');
  writeFileSync(policy, JSON.stringify({ config: { allowDevices: [entry] } }), { mode: 0o644 });
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [entry]: { hwaddr: mac } } });
  const r = traced(rig, 'create-runtime', ociState(uniqueId('ctr'), bundle, 'creating'), { OCI_NETDEV_POLICY: policy });
  refused(t, r, `oci-netdev: device ${entry}: host device ${dev} (hwaddr ${mac}) is refused for linux.netDevices by policy ${policy}: it matches no pattern of config.allowDevices ["${entry}"]`, 'the device found');
  t.same(nsSnapshot(rig.simhost), before, 'the host is unchanged');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('a moved device\'s IPv6 address is usable right after createRuntime; the host gets its original flags back', async (t) => {
  const rig = makeRig(t);
  const dev = nic(rig);
  // Added without nodad: on the host it went through DAD once, as a NIC's address does.
  addAddress(rig.simhost, dev, '2001:db8:41::1/64');
  const before = await steady(rig.simhost);
  const id = uniqueId('ctr');
  slowDad(rig.ctr);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: {} } });

  ok(t, traced(rig, 'create-runtime', ociState(id, bundle, 'creating')), 'create-runtime');
  // Read at once; DAD would keep it tentative for 20 s here.
  const v6 = globalV6(rig.ctr, dev);
  t.same(v6.map((a) => a.local), ['2001:db8:41::1'], 'the address moved');
  t.notOk(v6[0]?.tentative, 'it is not tentative', { addr: v6[0] });
  t.ok(v6[0]?.nodad, 'it was added without DAD', { addr: v6[0] });

  ok(t, traced(rig, 'poststop', ociState(id, bundle, 'stopped')), 'poststop');
  // The snapshot keeps lasting flags: nodad would show if the restore had taken the container's.
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before, the address without nodad');
});

t.test('"dad": true keeps duplicate address detection for the moved address', async (t) => {
  const rig = makeRig(t);
  const dev = nic(rig);
  addAddress(rig.simhost, dev, '2001:db8:42::1/64', ['nodad']);
  const before = await steady(rig.simhost);
  const id = uniqueId('ctr');
  slowDad(rig.ctr);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: { dad: true } } });

  ok(t, traced(rig, 'create-runtime', ociState(id, bundle, 'creating')), 'create-runtime');
  const v6 = globalV6(rig.ctr, dev);
  t.same(v6.map((a) => a.local), ['2001:db8:42::1'], 'the address moved');
  const a = v6[0] as (typeof v6)[number] & { optimistic?: boolean };
  t.ok(a?.tentative || a?.optimistic, 'it is still in DAD (tentative or optimistic)', { addr: a });
  t.notOk(a?.nodad, 'it was added with DAD', { addr: a });

  ok(t, traced(rig, 'poststop', ociState(id, bundle, 'stopped')), 'poststop');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before, the address with its nodad');
});
