// Failures of the core hooks, and nothing lost by them: a device failing mid-apply rolls back the
// ones before it; a hook killed with SIGKILL in the middle of its moves is undone by `gc`; two
// hooks racing for one device end with one owner and the other refused, naming the owner. A
// throwaway netns plays the host (the hook runs under nsenter --net), others the containers, and
// veth ends stand in for NICs.
import t, { Test } from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeId } from '../../src/state/statedir';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV, runHook, RunningHook, startHook as startRunningHook } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import {
  addAddress, inSimHost, mountPoints, netnsPath, nsSnapshot, Sandbox, sh, ShResult, shOk, settledTo, sleep, steady } from '../helpers/sandbox';

interface World {
  sb: Sandbox;
  simhost: string;
  stateDir: string;
}

function world(t: Test): World {
  const sb = new Sandbox(t);
  return { sb, simhost: sb.createNetns('simhost'), stateDir: makeStateDir(sb) };
}

/** A stand-in NIC (one end of a veth pair, both ends up) in the simulated host. */
function nic(w: World): string {
  const name = uniqueName('nic');
  w.sb.createVethPair(w.simhost, name, uniqueName('peer'));
  return name;
}

const state = (id: string, bundle: string) => ({ ociVersion: '1.0.2', id, status: 'creating', bundle });
const stopped = (id: string, bundle: string) => ({ ...state(id, bundle), status: 'stopped' });
const bundleFor = (w: World, ct: string, netDevices: Record<string, object>) =>
  makeBundle(w.sb, { args: ['true'], netnsPath: netnsPath(ct), netDevices });

/** The hook as a runtime starts it, without waiting for it. */
const startHook = (w: World, subcommand: string, st: object): RunningHook =>
  startRunningHook(w.simhost, subcommand, st, { stateDir: w.stateDir });

function ok(t: Test, r: ShResult, what: string): void {
  t.equal(r.status, 0, `${what} exits 0`, { stderr: r.stderr });
}


/** The journal inside its envelope (the file's first line; reserved space follows it). */
function journalIn(file: string): { started: number; phase: string } {
  const text = readFileSync(file, 'utf8');
  return (JSON.parse(text.slice(0, text.indexOf('\n'))) as { journal: { started: number; phase: string } }).journal;
}

const stateLeft = (w: World): string[] => readdirSync(w.stateDir).filter((n) => n !== 'claims.lock');
const pinsIn = (w: World): string[] => mountPoints().filter((m) => m.startsWith(w.stateDir + '/'));

t.test('a device failing mid-apply: the devices before it are rolled back, the host is as before', async (t) => {
  const w = world(t);
  const ct = w.sb.createNetns('ct');
  // IPv6 is off for devices arriving in the container, so adding an IPv6 address there fails:
  // a real kernel refusal after the device has been moved.
  shOk(...inSimHost(ct, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']));
  const [first, second, third] = [nic(w), nic(w), nic(w)];
  shOk('ip', ['-n', w.simhost, 'link', 'set', first, 'mtu', '1400', 'alias', 'first uplink', 'down']);
  addAddress(w.simhost, first, '192.0.2.110/24', ['broadcast', '+', 'label', `${first}:a`]);
  addAddress(w.simhost, second, '198.51.100.110/24', ['broadcast', '+']);
  addAddress(w.simhost, second, '2001:db8:110::1/64', ['nodad']);
  addAddress(w.simhost, third, '203.0.113.110/24');
  const before = await steady(w.simhost);
  const ctBefore = await steady(ct);
  const bundle = bundleFor(w, ct, { [first]: { name: uniqueName('a') }, [second]: { name: uniqueName('b') }, [third]: {} });

  const r = runHook(w.simhost, 'create-runtime', state(uniqueId('ctr'), bundle), { stateDir: w.stateDir });
  t.not(r.status, 0, 'create-runtime fails');
  const lines = r.stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, 'one line on stderr', { stderr: r.stderr });
  t.match(lines[0], second, 'naming the device that failed');
  t.match(lines[0], /2001:db8:110::1.*(EACCES|IPv6 is disabled)/, 'and the kernel refusal');
  t.notMatch(lines[0], /rollback also failed/, 'the rollback succeeded');
  t.same(await settledTo(w.simhost, before), before, 'the host is exactly as before: the first device came back, the third never left');
  t.same(await settledTo(ct, ctBefore), ctBefore, 'the container holds none of them');
  t.same(pinsIn(w), [], 'no pin left');
  t.same(stateLeft(w), [], 'no journal left');
});

const DEVICES = 24;
const STEPS_PER_DEVICE = 3; // moveIn, copyAddresses, configure

for (const killAt of [5, 34, 64]) {
  t.test(`SIGKILL of the hook after ${killAt} of ${DEVICES * STEPS_PER_DEVICE} steps, then gc: the host is as before`, async (t) => {
    const w = world(t);
    const ct = w.sb.createNetns('ct');
    const devs = Array.from({ length: DEVICES }, () => nic(w));
    devs.forEach((d, i) => {
      addAddress(w.simhost, d, `10.77.${i}.1/24`, ['broadcast', '+']);
      addAddress(w.simhost, d, `2001:db8:77:${i.toString(16)}::1/64`, ['nodad']);
    });
    const before = await steady(w.simhost);
    const ctBefore = await steady(ct);
    const id = uniqueId('ctr');
    const bundle = bundleFor(w, ct, Object.fromEntries(devs.map((d) => [d, { name: uniqueName('c') }])));
    const journal = join(w.stateDir, encodeId(id), 'journal.json');

    const hook = startHook(w, 'create-runtime', state(id, bundle));
    let exited = false;
    void hook.done.then(() => (exited = true));
    let started = 0;
    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline) {
      try {
        started = journalIn(journal).started;
      } catch {
        // not written yet, or being replaced
      }
      if (started >= killAt) break;
      await sleep(1);
    }
    t.notOk(exited, `the hook was still running at step ${started}`);
    process.kill(hook.pid, 'SIGKILL');
    const r = await hook.done;
    t.equal(r.signal, 'SIGKILL', 'killed');
    const j = journalIn(journal);
    t.equal(j.phase, 'attaching', 'the journal says it died while attaching');
    t.ok(j.started >= killAt && j.started < DEVICES * STEPS_PER_DEVICE, `killed mid-way, after step ${j.started}`);
    const left = devs.filter((d) => !(d in nsSnapshot(w.simhost)));
    t.ok(left.length >= 1 && left.length < DEVICES, `${left.length} of ${DEVICES} devices had left the host`);

    const gc = sh(...inSimHost(w.simhost, [OCI_NETDEV, '--state-dir', w.stateDir, 'gc']));
    ok(t, gc, 'gc');
    t.match(gc.stdout, new RegExp(`^${id}: restored \\(hook died while attaching\\)$`, 'm'), 'gc reports the restore');
    t.same(await settledTo(w.simhost, before), before, 'the host is exactly as before: every device, address, MTU, MAC and flag');
    t.same(await settledTo(ct, ctBefore), ctBefore, 'the container netns holds none of our devices');
    t.same(pinsIn(w), [], 'no pin left');
    t.same(stateLeft(w), [], 'no journal left');

    const again = sh(...inSimHost(w.simhost, [OCI_NETDEV, '--state-dir', w.stateDir, 'gc']));
    ok(t, again, 'a second gc');
    t.equal(again.stdout, 'gc: nothing to do\n', 'finds nothing to do');
  });
}

t.test('two hooks racing for one device: one wins, the other fails naming the owner', async (t) => {
  const w = world(t);
  for (let round = 1; round <= 3; round++) {
    const dev = nic(w);
    addAddress(w.simhost, dev, '192.0.2.120/24', ['broadcast', '+']);
    addAddress(w.simhost, dev, '2001:db8:120::1/64', ['nodad']);
    const before = await steady(w.simhost);
    const racers = [1, 2].map(() => {
      const ct = w.sb.createNetns('ct');
      const id = uniqueId('ctr');
      return { ct, id, bundle: bundleFor(w, ct, { [dev]: { name: uniqueName('x') } }) };
    });
    const hooks = racers.map((c) => startHook(w, 'create-runtime', state(c.id, c.bundle)));
    const results = await Promise.all(hooks.map((h) => h.done));
    const winners = racers.filter((_, i) => results[i].status === 0);
    t.equal(winners.length, 1, `round ${round}: exactly one hook succeeds`, { results });
    const w0 = racers.findIndex((_, i) => results[i].status === 0);
    if (w0 === -1 || winners.length !== 1) continue;
    const winner = racers[w0];
    const loser = racers[1 - w0];
    const lost = results[1 - w0];
    t.equal(lost.stderr.trimEnd().split('\n').length, 1, `round ${round}: the loser says one line`, { stderr: lost.stderr });
    t.match(lost.stderr, new RegExp(`${dev}.*(held by container ${winner.id}|no such device)`), `round ${round}: naming the device and its owner`);
    t.equal(Object.keys(nsSnapshot(winner.ct)).length, 2, `round ${round}: the device is in the winner's netns`);
    t.same(Object.keys(nsSnapshot(loser.ct)), ['lo'], `round ${round}: and not in the loser's`);
    t.notOk(existsSync(join(w.stateDir, encodeId(loser.id))), `round ${round}: the loser left no state`);

    ok(t, runHook(w.simhost, 'poststop', stopped(winner.id, winner.bundle), { stateDir: w.stateDir }), `round ${round}: poststop of the winner`);
    ok(t, runHook(w.simhost, 'poststop', stopped(loser.id, loser.bundle), { stateDir: w.stateDir }), `round ${round}: poststop of the loser`);
    t.same(await settledTo(w.simhost, before), before, `round ${round}: the host is as before`);
  }
  t.same(stateLeft(w), [], 'no state left');
});

t.test('hooks of different containers at the same time do not interfere', async (t) => {
  const w = world(t);
  const containers = Array.from({ length: 4 }, (_, i) => {
    const ct = w.sb.createNetns('ct');
    const devs = [nic(w), nic(w)];
    devs.forEach((d, k) => addAddress(w.simhost, d, `10.88.${i}.${k + 1}/24`, ['broadcast', '+']));
    const id = uniqueId('ctr');
    return { ct, id, devs, bundle: bundleFor(w, ct, Object.fromEntries(devs.map((d) => [d, { name: uniqueName('p') }]))) };
  });
  const before = await steady(w.simhost);
  const results = await Promise.all(containers.map((c) => startHook(w, 'create-runtime', state(c.id, c.bundle)).done));
  results.forEach((r, i) => ok(t, r, `create-runtime of container ${i}`));
  containers.forEach((c, i) => t.equal(Object.keys(nsSnapshot(c.ct)).length, 3, `container ${i} got its two devices`));
  const stops = await Promise.all(containers.map((c) => startHook(w, 'poststop', stopped(c.id, c.bundle)).done));
  stops.forEach((r, i) => ok(t, r, `poststop of container ${i}`));
  t.same(await settledTo(w.simhost, before), before, 'the host is as before');
  t.same(stateLeft(w), [], 'no state left');
});
