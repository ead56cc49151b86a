// Failures of the core hooks, and nothing lost by them: a device failing mid-apply rolls back the
// ones before it; a hook killed with SIGKILL in the middle of its moves is undone by `gc`; two
// hooks racing for one device end with one owner and the other refused, naming the owner. A
// throwaway netns plays the host (the hook runs under nsenter --net), others the containers, and
// veth ends stand in for NICs.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeId } from '../../src/state/statedir';
import { ok } from '../helpers/assert';
import { allHome, bundleFor, createRuntime, creating, hostNic, poststop, startHookIn, stopped } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, makeRig, stateEntries } from '../helpers/netdevices';
import { addAddress, inSimHost, netnsPath, nsSnapshot, shOk, settledTo, sleep, steady } from '../helpers/sandbox';

/** The journal inside its envelope (the file's first line; reserved space follows it). */
function journalIn(file: string): { started: number; phase: string } {
  const text = readFileSync(file, 'utf8');
  return (JSON.parse(text.slice(0, text.indexOf('\n'))) as { journal: { started: number; phase: string } }).journal;
}


t.test('a device failing mid-apply: the devices before it are rolled back, the host is as before', async (t) => {
  const w = makeRig(t);
  // IPv6 is off for devices arriving in the container, so adding an IPv6 address there fails:
  // a real kernel refusal after the device has been moved.
  shOk(...inSimHost(w.ctr, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']));
  const [first, second, third] = [hostNic(w), hostNic(w), hostNic(w)];
  shOk('ip', ['-n', w.simhost, 'link', 'set', first, 'mtu', '1400', 'alias', 'first uplink', 'down']);
  addAddress(w.simhost, first, '192.0.2.110/24', ['broadcast', '+', 'label', `${first}:a`]);
  addAddress(w.simhost, second, '198.51.100.110/24', ['broadcast', '+']);
  addAddress(w.simhost, second, '2001:db8:110::1/64', ['nodad']);
  addAddress(w.simhost, third, '203.0.113.110/24');
  const before = await steady(w.simhost);
  const ctBefore = await steady(w.ctr);
  const bundle = bundleFor(w, { [first]: { name: uniqueName('a') }, [second]: { name: uniqueName('b') }, [third]: {} });

  const r = createRuntime(w, uniqueId('ctr'), bundle);
  t.not(r.status, 0, 'create-runtime fails');
  const lines = r.stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, 'one line on stderr', { stderr: r.stderr });
  t.match(lines[0], second, 'naming the device that failed');
  t.match(lines[0], /2001:db8:110::1.*(EACCES|IPv6 is disabled)/, 'and the kernel refusal');
  t.notMatch(lines[0], /rollback also failed/, 'the rollback succeeded');
  // The first device came back, the third never left.
  await allHome(t, w, before, ctBefore);
});

const DEVICES = 24;
const STEPS_PER_DEVICE = 3; // moveIn, copyAddresses, configure

for (const killAt of [5, 34, 64]) {
  t.test(`SIGKILL of the hook after ${killAt} of ${DEVICES * STEPS_PER_DEVICE} steps, then gc: the host is as before`, async (t) => {
    const w = makeRig(t);
    const devs = Array.from({ length: DEVICES }, () => hostNic(w));
    devs.forEach((d, i) => {
      addAddress(w.simhost, d, `10.77.${i}.1/24`, ['broadcast', '+']);
      addAddress(w.simhost, d, `2001:db8:77:${i.toString(16)}::1/64`, ['nodad']);
    });
    const before = await steady(w.simhost);
    const ctBefore = await steady(w.ctr);
    const id = uniqueId('ctr');
    const bundle = bundleFor(w, Object.fromEntries(devs.map((d) => [d, { name: uniqueName('c') }])));
    const journal = join(w.stateDir, encodeId(id), 'journal.json');

    const running = startHookIn(w, 'create-runtime', creating(id, bundle));
    let exited = false;
    void running.done.then(() => (exited = true));
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
    process.kill(running.pid, 'SIGKILL');
    const r = await running.done;
    t.equal(r.signal, 'SIGKILL', 'killed');
    const j = journalIn(journal);
    t.equal(j.phase, 'attaching', 'the journal says it died while attaching');
    t.ok(j.started >= killAt && j.started < DEVICES * STEPS_PER_DEVICE, `killed mid-way, after step ${j.started}`);
    const left = devs.filter((d) => !(d in nsSnapshot(w.simhost)));
    t.ok(left.length >= 1 && left.length < DEVICES, `${left.length} of ${DEVICES} devices had left the host`);

    const gc = cli(w, ['gc']);
    ok(t, gc, 'gc');
    t.match(gc.stdout, new RegExp(`^${id}: restored \\(hook died while attaching\\)$`, 'm'), 'gc reports the restore');
    await allHome(t, w, before, ctBefore);

    const again = cli(w, ['gc']);
    ok(t, again, 'a second gc');
    t.equal(again.stdout, 'gc: nothing to do\n', 'finds nothing to do');
  });
}

t.test('two hooks racing for one device: one wins, the other fails naming the owner', async (t) => {
  const w = makeRig(t);
  for (let round = 1; round <= 3; round++) {
    const dev = hostNic(w);
    addAddress(w.simhost, dev, '192.0.2.120/24', ['broadcast', '+']);
    addAddress(w.simhost, dev, '2001:db8:120::1/64', ['nodad']);
    const before = await steady(w.simhost);
    const racers = [1, 2].map(() => {
      const ct = w.sb.createNetns('ct');
      const id = uniqueId('ctr');
      return { ct, id, bundle: bundleFor(w, { [dev]: { name: uniqueName('x') } }, netnsPath(ct)) };
    });
    const hooks = racers.map((c) => startHookIn(w, 'create-runtime', creating(c.id, c.bundle)));
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

    ok(t, poststop(w, winner.id, winner.bundle), `round ${round}: poststop of the winner`);
    ok(t, poststop(w, loser.id, loser.bundle), `round ${round}: poststop of the loser`);
    t.same(await settledTo(w.simhost, before), before, `round ${round}: the host is as before`);
  }
  t.same(stateEntries(w.stateDir), [], 'no state left');
});

t.test('hooks of different containers at the same time do not interfere', async (t) => {
  const w = makeRig(t);
  const containers = Array.from({ length: 4 }, (_, i) => {
    const ct = w.sb.createNetns('ct');
    const devs = [hostNic(w), hostNic(w)];
    devs.forEach((d, k) => addAddress(w.simhost, d, `10.88.${i}.${k + 1}/24`, ['broadcast', '+']));
    const id = uniqueId('ctr');
    return { ct, id, devs, bundle: bundleFor(w, Object.fromEntries(devs.map((d) => [d, { name: uniqueName('p') }])), netnsPath(ct)) };
  });
  const before = await steady(w.simhost);
  const results = await Promise.all(containers.map((c) => startHookIn(w, 'create-runtime', creating(c.id, c.bundle)).done));
  results.forEach((r, i) => ok(t, r, `create-runtime of container ${i}`));
  containers.forEach((c, i) => t.equal(Object.keys(nsSnapshot(c.ct)).length, 3, `container ${i} got its two devices`));
  const stops = await Promise.all(containers.map((c) => startHookIn(w, 'poststop', stopped(c.id, c.bundle)).done));
  stops.forEach((r, i) => ok(t, r, `poststop of container ${i}`));
  t.same(await settledTo(w.simhost, before), before, 'the host is as before');
  t.same(stateEntries(w.stateDir), [], 'no state left');
});
