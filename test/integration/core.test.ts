// The core job, hook by hook. createRuntime moves host devices into the container netns
// (runtime-spec netDevices): with and without rename, %d, addresses, MTU, MAC, link up; it refuses,
// changing nothing, when it cannot. poststop puts everything back exactly, also when the kernel
// already returned the device or its name is taken. A throwaway netns plays the host (the engine
// runs in this test process with it as its host namespace; `oci-netdev status` under nsenter
// --net), another the container, and veth ends stand in for NICs.
import t from 'tap';
import { rmSync } from 'node:fs';
import { StateDir } from '../../src/state/statedir';
import { OCI_NETDEV } from '../helpers/hook';
import { ok, refused } from '../helpers/assert';
import { bundleFor, createRuntime, hostNic, pinsIn, poststop } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, makeRig, stateEntries } from '../helpers/netdevices';
import {
  addAddress, AddrSnapshot, inSimHost, linkSnapshot, netnsPath, nsSnapshot, sh, shOk, settledTo, steady } from '../helpers/sandbox';

const addr = (family: 'inet' | 'inet6', local: string, prefixlen: number, more: Partial<AddrSnapshot> = {}): AddrSnapshot => ({
  family, local, prefixlen, scope: 'global', label: null, broadcast: null, flags: [], ...more,
});

t.test('move with rename keeps global permanent addresses, MTU and MAC, sets the link up; poststop restores', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w, { mtu: 1400, mac: '02:00:5e:00:53:11', alias: 'uplink', down: true });
  // Move with the device: IPv4 with broadcast and a label, a second IPv4, IPv6.
  addAddress(w.simhost, dev, '192.0.2.10/24', ['broadcast', '192.0.2.255', 'label', `${dev}:w`]);
  addAddress(w.simhost, dev, '198.51.100.10/24', ['broadcast', '+']);
  addAddress(w.simhost, dev, '2001:db8:1::10/64', ['nodad']);
  addAddress(w.simhost, dev, '2001:db8:2::10/64', ['nodad', 'noprefixroute']);
  // Stay behind: link and host scope, and finite lifetimes (IPv4 and IPv6).
  addAddress(w.simhost, dev, '169.254.10.10/16', ['scope', 'link']);
  addAddress(w.simhost, dev, '10.255.0.1/32', ['scope', 'host']);
  addAddress(w.simhost, dev, '2001:db8:3::10/64', ['nodad', 'valid_lft', '3000', 'preferred_lft', '2000']);
  addAddress(w.simhost, dev, '203.0.113.10/24', ['valid_lft', '3000', 'preferred_lft', '2000']);
  const before = await steady(w.simhost);
  const ctBefore = nsSnapshot(w.ctr);
  const target = uniqueName('ct');
  const id = uniqueId('ctr');
  const bundle = bundleFor(w, { [dev]: { name: target } });

  ok(t, createRuntime(w, id, bundle), 'create-runtime');
  t.notOk(dev in nsSnapshot(w.simhost), 'the device left the host');
  t.notOk(dev in nsSnapshot(w.ctr), 'nothing in the container under the host name');
  const inside = linkSnapshot(w.ctr, target);
  t.equal(inside.name, target, 'renamed in the container');
  t.equal(inside.mtu, 1400, 'MTU kept');
  t.equal(inside.mac, '02:00:5e:00:53:11', 'MAC kept');
  t.equal(inside.up, true, 'set up after the move (it was down on the host)');
  t.equal(inside.alias, 'uplink', 'its alias travels with it: oci-netdev marks nothing the container could rewrite');
  t.same(inside.addresses, [
    addr('inet', '192.0.2.10', 24, { broadcast: '192.0.2.255', label: `${target}:w` }),
    addr('inet', '198.51.100.10', 24, { broadcast: '198.51.100.255', label: target }),
    addr('inet6', '2001:db8:1::10', 64, { flags: ['nodad'] }),
    addr('inet6', '2001:db8:2::10', 64, { flags: ['nodad', 'noprefixroute'] }),
  ], 'exactly the global permanent addresses, with broadcast, label and flags');
  t.same(Object.keys(nsSnapshot(w.ctr)).sort(), [...Object.keys(ctBefore), target].sort(), 'nothing else appeared in the container');

  const st = cli(w, ['status', '--json']);
  ok(t, st, 'status --json');
  t.match(JSON.parse(st.stdout), [{
    containerId: id, bundle, phase: 'attached', pinned: true, pid: null, alive: false,
    devices: [{ key: dev, containerName: target, kind: 'moved', state: 'in', mac: '02:00:5e:00:53:11', mtu: 1400 }],
  }], 'status lists the device, live from the container');

  ok(t, poststop(w, id, bundle), 'poststop');
  const after = await settledTo(w.simhost, before);
  t.same(after[dev], before[dev], 'the device is back: name, MTU, MAC, flags (down), alias, addresses of every scope and lifetime');
  t.same(after, before, 'and the whole host is as before');
  t.same(nsSnapshot(w.ctr), ctBefore, 'the container netns is as before');
  t.same(stateEntries(w.stateDir), [], 'no state left');
});

t.test('move without rename keeps the host name', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w);
  addAddress(w.simhost, dev, '192.0.2.20/24', ['broadcast', '+']);
  addAddress(w.simhost, dev, '2001:db8::20/64', ['nodad']);
  const before = await steady(w.simhost);
  const id = uniqueId('ctr');
  const bundle = bundleFor(w, { [dev]: {} });

  ok(t, createRuntime(w, id, bundle), 'create-runtime');
  const inside = linkSnapshot(w.ctr, dev);
  t.equal(inside.up, true, 'up in the container');
  t.same(inside.addresses.map((a) => `${a.local}/${a.prefixlen}`), ['192.0.2.20/24', '2001:db8::20/64'], 'addresses kept');
  t.equal(inside.addresses[0].label, dev, 'the IPv4 label is the device name');

  ok(t, poststop(w, id, bundle), 'poststop');
  t.same(await settledTo(w.simhost, before), before, 'host as before');
});

t.test('a %d name gets the name the kernel picks, found by ifindex', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const base = uniqueName('tpl');
  // base0 is taken in the container, so the kernel picks base1.
  w.sb.createVethPair(w.ctr, `${base}0`, uniqueName('peer'));
  const dev = hostNic(w);
  addAddress(w.simhost, dev, '192.0.2.30/24', ['label', dev]);
  addAddress(w.simhost, dev, '2001:db8::30/64', ['nodad']);
  const before = await steady(w.simhost);
  const id = uniqueId('ctr');
  const bundle = bundleFor(w, { [dev]: { name: `${base}%d` } });

  ok(t, createRuntime(w, id, bundle), 'create-runtime');
  const ct = nsSnapshot(w.ctr);
  t.notOk(`${base}%d` in ct, 'no device named literally %d');
  const inside = ct[`${base}1`];
  t.ok(inside, `the device is ${base}1`);
  t.equal(inside?.up, true, 'and up');
  t.same(inside?.addresses.map((a) => [a.local, a.label]), [['192.0.2.30', `${base}1`], ['2001:db8::30', null]], 'addresses added to the resolved name');
  t.equal(ct[`${base}0`]?.addresses.length, 0, 'the device already there is untouched');

  const st = JSON.parse(shOk(...inSimHost(w.simhost, [OCI_NETDEV, '--state-dir', w.stateDir, 'status', '--json'])));
  t.equal(st[0]?.devices[0]?.containerName, `${base}1`, 'status reports the resolved name');

  ok(t, poststop(w, id, bundle), 'poststop');
  t.same(await settledTo(w.simhost, before), before, 'host as before');
});

t.test('target name already taken in the container: error naming the device, nothing changed', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w);
  const other = hostNic(w);
  addAddress(w.simhost, dev, '192.0.2.40/24', ['broadcast', '+']);
  addAddress(w.simhost, dev, '2001:db8::40/64', ['nodad']);
  const taken = uniqueName('taken');
  w.sb.createVethPair(w.ctr, taken, uniqueName('peer'));
  const before = await steady(w.simhost);
  const ctBefore = nsSnapshot(w.ctr);
  // The first device is fine; the second asks for the taken name.
  const bundle = bundleFor(w, { [other]: {}, [dev]: { name: taken } });

  refused(t, createRuntime(w, uniqueId('ctr'), bundle), `oci-netdev: device ${dev}: name ${taken} already exists in the container`, 'the second device');
  t.same(await settledTo(w.simhost, before), before, 'host unchanged: every device, address and flag');
  t.same(nsSnapshot(w.ctr), ctBefore, 'container unchanged');
  t.same(stateEntries(w.stateDir), [], 'no journal or pin left');
});

t.test('a device that is not on the host: error naming it, nothing changed', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w);
  const missing = uniqueName('missing');
  const before = await steady(w.simhost);
  const bundle = bundleFor(w, { [dev]: {}, [missing]: {} });
  refused(t, createRuntime(w, uniqueId('ctr'), bundle), `oci-netdev: device ${missing}: no such device in the host network namespace`, 'the missing device');
  t.same(await settledTo(w.simhost, before), before, 'host unchanged');
  t.same(stateEntries(w.stateDir), [], 'no state left');
});

t.test('no network namespace path in the config and no pid in the state: error', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w);
  const before = await steady(w.simhost);
  const bundle = bundleFor(w, { [dev]: {} }, null);
  const r = createRuntime(w, uniqueId('ctr'), bundle);
  t.not(r.status, 0, 'the hook exits non-zero');
  t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line on stderr', { stderr: r.stderr });
  t.match(r.stderr, /pid/, 'says there is no pid to find the namespace by');
  t.same(await settledTo(w.simhost, before), before, 'host unchanged');
  t.same(stateEntries(w.stateDir), [], 'no state left');
});

t.test("the host's own network namespace as the container's: error", async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w);
  const before = await steady(w.simhost);
  const bundle = bundleFor(w, { [dev]: {} }, netnsPath(w.simhost));
  const r = createRuntime(w, uniqueId('ctr'), bundle);
  t.not(r.status, 0, 'the hook exits non-zero');
  t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line on stderr', { stderr: r.stderr });
  t.match(r.stderr, /host's own/, 'says the namespace is the host one');
  t.same(await settledTo(w.simhost, before), before, 'host unchanged');
  t.same(stateEntries(w.stateDir), [], 'no state left');
});

t.test('the namespace found by pid when the config gives no path', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w);
  addAddress(w.simhost, dev, '192.0.2.50/24');
  const before = await steady(w.simhost);
  // A process in the container netns stands in for the container's init.
  const { spawn } = await import('node:child_process');
  const init = spawn('ip', ['netns', 'exec', w.ctr, 'sleep', '600'], { stdio: 'ignore' });
  t.teardown(() => void init.kill('SIGKILL'));
  await new Promise((resolve) => init.once('spawn', resolve));
  // ip netns exec execs sleep in the same process once it has entered the netns.
  for (let i = 0; i < 50 && !shOk('readlink', [`/proc/${init.pid}/exe`]).includes('sleep'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const id = uniqueId('ctr');
  const bundle = bundleFor(w, { [dev]: {} }, null);
  ok(t, createRuntime(w, id, bundle, { pid: init.pid }), 'create-runtime');
  t.equal(linkSnapshot(w.ctr, dev).addresses[0]?.local, '192.0.2.50', `moved into /proc/${init.pid}/ns/net`);
  ok(t, poststop(w, id, bundle), 'poststop');
  t.same(await settledTo(w.simhost, before), before, 'host as before');
});

t.test('poststop restores several devices exactly, and a second poststop changes nothing', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const a = hostNic(w, { mtu: 1400, mac: '02:00:5e:00:53:21', alias: 'uplink a', down: true });
  addAddress(w.simhost, a, '192.0.2.70/24', ['broadcast', '+']);
  addAddress(w.simhost, a, '192.0.2.71/24', ['label', `${a}:w`]);
  addAddress(w.simhost, a, '169.254.70.1/16', ['scope', 'link']);
  addAddress(w.simhost, a, '10.255.70.1/32', ['scope', 'host']);
  addAddress(w.simhost, a, '203.0.113.70/24', ['valid_lft', '3000', 'preferred_lft', '2000']);
  addAddress(w.simhost, a, '2001:db8:70::1/64', ['nodad']);
  addAddress(w.simhost, a, '2001:db8:71::1/64', ['nodad', 'valid_lft', '3000', 'preferred_lft', '0']);
  const b = hostNic(w, { mtu: 9000 });
  addAddress(w.simhost, b, '198.51.100.70/25', ['broadcast', '+']);
  const c = hostNic(w, { alias: 'uplink c' });
  addAddress(w.simhost, c, '2001:db8:72::1/64', ['nodad']);
  const before = await steady(w.simhost);
  const ctBefore = await steady(w.ctr);
  const id = uniqueId('ctr');
  const base = uniqueName('tpl');
  const bundle = bundleFor(w, { [a]: { name: uniqueName('a') }, [b]: {}, [c]: { name: `${base}%d` } });

  ok(t, createRuntime(w, id, bundle), 'create-runtime');
  t.same([a, b, c].filter((d) => d in nsSnapshot(w.simhost)), [], 'all three left the host');
  t.equal(pinsIn(w.stateDir).length, 1, 'the container netns is pinned');

  ok(t, poststop(w, id, bundle), 'poststop');
  t.same(await settledTo(w.simhost, before), before, 'the host is exactly as before');
  t.same(await settledTo(w.ctr, ctBefore), ctBefore, 'the container holds none of them');
  t.same(pinsIn(w.stateDir), [], 'the pin is released');
  t.same(stateEntries(w.stateDir), [], 'the journal is removed');

  const again = poststop(w, id, bundle);
  ok(t, again, 'a second poststop');
  t.equal(again.stderr, '', 'and says nothing');
  t.same(nsSnapshot(w.simhost), before, 'the host is unchanged by it');
  t.same(stateEntries(w.stateDir), [], 'no state appears');
});

t.test('a leased address comes back with the lease it has left, and not after it ran out', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w);
  const added = Date.now();
  addAddress(w.simhost, dev, '192.0.2.100/24');
  addAddress(w.simhost, dev, '203.0.113.100/24', ['valid_lft', '3000', 'preferred_lft', '2000']);
  addAddress(w.simhost, dev, '203.0.113.101/24', ['valid_lft', '600', 'preferred_lft', '600']);
  addAddress(w.simhost, dev, '2001:db8:100::1/64', ['nodad', 'valid_lft', '3000', 'preferred_lft', '900']);
  const id = uniqueId('ctr');
  const bundle = bundleFor(w, { [dev]: {} });
  ok(t, createRuntime(w, id, bundle), 'create-runtime');
  t.same(linkSnapshot(w.ctr, dev).addresses.map((a) => a.local), ['192.0.2.100'], 'only the permanent address went into the container');

  // The container held the device for 1000 s (as far as the journal knows).
  const store = new StateDir(w.stateDir);
  const j = store.readJournal(id)!;
  store.writeJournal({ ...j, createdAt: new Date(Date.parse(j.createdAt) - 1000_000).toISOString() });

  ok(t, poststop(w, id, bundle), 'poststop');
  type Life = { local: string; valid_life_time: number; preferred_life_time: number };
  const lives = (JSON.parse(shOk('ip', ['-n', w.simhost, '-j', 'addr', 'show', 'dev', dev]))[0].addr_info as Life[])
    .filter((a) => !a.local.startsWith('fe80:'));
  const life = (local: string) => lives.find((a) => a.local === local);
  // Besides the 1000 s of the journal, a lease ages by the real time the test took, however slow
  // the machine is: the bounds are taken from the clock, not guessed.
  const real = Math.ceil((Date.now() - added) / 1000) + 1;
  const aged = (left: number, expected: number) => left <= expected + 1 && left >= expected - real;
  t.same(lives.map((a) => a.local).sort(), ['192.0.2.100', '2001:db8:100::1', '203.0.113.100'], 'the expired lease is not brought back');
  t.equal(life('192.0.2.100')?.valid_life_time, 0xffffffff, 'permanent stays permanent');
  t.ok(aged(life('203.0.113.100')!.valid_life_time, 2000), `IPv4 valid lifetime aged: ${life('203.0.113.100')?.valid_life_time} (${real} s real)`);
  t.ok(aged(life('203.0.113.100')!.preferred_life_time, 1000), `IPv4 preferred lifetime aged: ${life('203.0.113.100')?.preferred_life_time}`);
  t.ok(aged(life('2001:db8:100::1')!.valid_life_time, 2000), `IPv6 valid lifetime aged: ${life('2001:db8:100::1')?.valid_life_time}`);
  t.equal(life('2001:db8:100::1')?.preferred_life_time, 0, 'IPv6 preferred lifetime ran out: deprecated');
});

for (const returnedAs of ['its container name', 'a dev%d name'] as const) {
  t.test(`poststop with the pin gone and the device returned by the kernel under ${returnedAs}`, async (t) => {
    const w = makeRig(t, { inProcess: true });
    // This container netns is deleted mid-test, so it is not the sandbox's.
    const ct = uniqueId('ct');
    shOk('ip', ['netns', 'add', ct]);
    t.teardown(() => void sh('ip', ['netns', 'del', ct]));
    const dev = hostNic(w, { mtu: 1480, mac: '02:00:5e:00:53:31', alias: 'uplink', down: true });
    addAddress(w.simhost, dev, '192.0.2.80/24', ['broadcast', '+']);
    addAddress(w.simhost, dev, '192.0.2.81/24', ['label', `${dev}:w`]);
    addAddress(w.simhost, dev, '192.0.2.82/24');
    addAddress(w.simhost, dev, '10.255.80.1/32', ['scope', 'host']);
    addAddress(w.simhost, dev, '2001:db8:80::1/64', ['nodad']);
    const before = await steady(w.simhost);
    const id = uniqueId('ctr');
    const target = uniqueName('ct');
    const bundle = bundleFor(w, { [dev]: { name: target } }, netnsPath(ct));
    ok(t, createRuntime(w, id, bundle), 'create-runtime');
    t.equal(linkSnapshot(ct, target).addresses.length, 4, 'in the container with its global addresses');

    // What the kernel does when the last process of an unpinned netns exits: physical devices come
    // back to the host (under their container name, or dev%d when that is taken) and the netns goes.
    const pins = pinsIn(w.stateDir);
    t.equal(pins.length, 1, 'one pin');
    for (const pin of pins) {
      shOk('umount', ['--lazy', pin]);
      rmSync(pin);
    }
    const back = returnedAs === 'a dev%d name' ? uniqueName('dev') : target;
    shOk('ip', ['-n', ct, 'link', 'set', target, 'netns', w.simhost, ...(back === target ? [] : ['name', back])]);
    shOk('ip', ['netns', 'del', ct]);
    t.ok(back in nsSnapshot(w.simhost), `the device is on the host as ${back}`);

    const r = poststop(w, id, bundle);
    ok(t, r, 'poststop');
    t.match(r.stderr, /network namespace is gone/, 'warns that it restores from what the host holds');
    t.same(await settledTo(w.simhost, before), before, 'the host is exactly as before: found by its marker and restored');
    t.same(stateEntries(w.stateDir), [], 'no state left');
  });
}

t.test('the original name taken on the host at restore: a fallback name, the device kept, a warning', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dev = hostNic(w, { mtu: 1450, mac: '02:00:5e:00:53:41', alias: 'uplink' });
  addAddress(w.simhost, dev, '192.0.2.90/24', ['broadcast', '+']);
  addAddress(w.simhost, dev, '2001:db8:90::1/64', ['nodad']);
  const before = await steady(w.simhost);
  const id = uniqueId('ctr');
  const bundle = bundleFor(w, { [dev]: { name: uniqueName('ct') } });
  ok(t, createRuntime(w, id, bundle), 'create-runtime');

  // Someone takes the name while the container runs.
  const squatterPeer = uniqueName('peer');
  w.sb.createVethPair(w.simhost, dev, squatterPeer);
  const squatters = await steady(w.simhost);

  const r = poststop(w, id, bundle);
  ok(t, r, 'poststop');
  const fallback = `${dev.slice(0, 12)}-r0`;
  const warnings = r.stderr.trimEnd().split('\n');
  t.equal(warnings.length, 2, 'two warnings', { stderr: r.stderr });
  t.match(warnings[0], new RegExp(`WARNING: .*${dev}.*taken.*restored as ${fallback}$`), 'a loud warning naming the fallback');
  t.match(warnings[1], new RegExp(`WARNING: .*record stays open: ${dev}: home as ${fallback}, waits for ${dev} .*oci-netdev gc`), 'and one saying the record stays open for gc');
  const restored = { ...before[dev], name: fallback, addresses: before[dev].addresses.map((a) => ({ ...a, label: a.label === dev ? fallback : a.label })) };
  const { [dev]: _gone, ...rest } = before;
  const expected = { ...rest, [dev]: squatters[dev], [squatterPeer]: squatters[squatterPeer], [fallback]: restored };
  const after = await settledTo(w.simhost, expected);
  t.same(after[fallback], restored, 'the device is back under the fallback name with its MTU, MAC, flags, alias and addresses');
  t.same(after[dev], squatters[dev], 'the device holding the name is untouched');
  t.same(after, expected, 'nothing else on the host changed');
  t.equal(stateEntries(w.stateDir).length, 1, 'the record stays open');

  // The name comes free: gc gives it back and closes the record.
  shOk('ip', ['-n', w.simhost, 'link', 'del', dev]);
  ok(t, cli(w, ['gc']), 'gc');
  t.same(await settledTo(w.simhost, before), before, 'the device has its own name again');
  t.same(stateEntries(w.stateDir), [], 'no state left');
});

