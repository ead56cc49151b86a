// Every record ends (issue 18, item 5): a NIC deleted on the host while a container holds it is
// reported lost once and its record closes (poststop or gc), gc then has nothing left and exits 0,
// and the name can be given to a new container; a NIC deleted between createRuntime's plan and its
// move fails the hook cleanly, leaving nothing behind; `gc --forget ID` drops a record; gc in a
// loop while containers start and stop reports no failure. Stand-in NICs are veth ends whose peer
// stays on the host: deleting the peer deletes the NIC wherever it is, as a VF vanishes with its PF.
import t, { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { attach } from '../../src/engine/attach';
import { detachAttachment } from '../../src/engine/detach';
import { StateDir } from '../../src/state/statedir';
import { ApplyError } from '../../src/errors';
import { Logger } from '../../src/log/logger';
import { runHook, startHook } from '../helpers/hook';
import { allHome, creating, inProcessOptions, pinsIn, startHookIn, stopped } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, makeRig, nonLoopback, ociState, Rig, stateEntries } from '../helpers/netdevices';
import { addAddress, netnsPath, NsSnapshot, ShResult, shOk, settledTo, sleep, steady } from '../helpers/sandbox';
import { ok } from '../helpers/assert';

/** A stand-in NIC with an address; deleting `peer` on the host deletes it wherever it is. */
function nic(rig: Rig, name = uniqueName('nic'), n = 1): { dev: string; peer: string } {
  const peer = uniqueName('peer');
  rig.sb.createVethPair(rig.simhost, name, peer);
  addAddress(rig.simhost, name, `10.71.${n}.1/24`, ['broadcast', '+']);
  return { dev: name, peer };
}

function hook(rig: Rig, command: 'create-runtime' | 'poststop', id: string, bundle: string, extra: object = {}): ShResult {
  return runHook(rig.simhost, command, ociState(id, bundle, command === 'poststop' ? 'stopped' : 'creating', extra), { stateDir: rig.stateDir });
}

/** `snap` without the devices named. */
const without = (snap: NsSnapshot, ...names: string[]): NsSnapshot => Object.fromEntries(Object.entries(snap).filter(([n]) => !names.includes(n)));

const linesWith = (text: string, word: RegExp): string[] => text.split('\n').filter((l) => word.test(l));

/** A new container takes a NIC named `dev` (made anew on the host) and gives it back: the name is free for claims. */
async function claimableAgain(t: Test, rig: Rig, dev: string): Promise<void> {
  const again = nic(rig, dev, 9);
  const before = await steady(rig.simhost);
  const ctr = rig.sb.createNetns('ctr');
  const id = uniqueId('next');
  const bundle = configBundle(rig.sb, ctr, { netDevices: { [dev]: { name: 'eth1' } } });
  ok(t, hook(rig, 'create-runtime', id, bundle), `a new container claiming ${dev}`);
  t.same(nonLoopback(ctr), ['eth1'], 'it has the new NIC');
  ok(t, hook(rig, 'poststop', id, bundle), 'its poststop');
  t.same(await settledTo(rig.simhost, before), before, `the new ${again.dev} is home as it was`);
}

t.test('a NIC deleted on the host while a container holds it: poststop reports it lost once and restores the rest; gc exits 0; the name is free', async (t) => {
  const rig = makeRig(t);
  const gone = nic(rig, undefined, 1);
  const stays = nic(rig, undefined, 2);
  const before = await steady(rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [gone.dev]: { name: 'eth1' }, [stays.dev]: { name: 'eth2' } } });
  ok(t, hook(rig, 'create-runtime', id, bundle), 'create-runtime');
  shOk('ip', ['-n', rig.simhost, 'link', 'del', gone.peer]);
  t.same(nonLoopback(rig.ctr), ['eth2'], 'the NIC is gone from the container too');

  const r = hook(rig, 'poststop', id, bundle);
  ok(t, r, 'poststop');
  const lost = linesWith(r.stderr, /lost/);
  t.equal(lost.length, 1, 'one line says lost', { stderr: r.stderr });
  t.match(lost[0], new RegExp(`WARNING: container ${id}: device ${gone.dev}: lost: .*; its record is closed`), 'naming the container and the device');
  t.same(await settledTo(rig.simhost, without(before, gone.dev, gone.peer)), without(before, gone.dev, gone.peer), 'the other NIC is home exactly');
  t.same(stateEntries(rig.stateDir), [], 'the record is closed');
  t.same(pinsIn(rig.stateDir), [], 'no pin left');

  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc afterwards');
  t.equal(gc.stdout, 'gc: nothing to do\n', 'gc has nothing to do and calls nothing lost again');
  await claimableAgain(t, rig, gone.dev);
});

t.test('a NIC deleted on the host while held, the container gone without poststop: gc reports it lost once, exit 0', async (t) => {
  const rig = makeRig(t);
  const gone = nic(rig);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [gone.dev]: { name: 'eth1' } } });
  const pid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  ok(t, hook(rig, 'create-runtime', id, bundle, { pid }), 'create-runtime (an init that cannot exist)');
  shOk('ip', ['-n', rig.simhost, 'link', 'del', gone.peer]);

  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc');
  t.match(gc.stdout, new RegExp(`^${id}: lost \\(container is gone: device ${gone.dev}: lost: `, 'm'), 'gc says the device is lost');
  t.match(gc.stdout, /^gc: 0 restored, 0 kept, 0 failed, 1 lost$/m, 'and counts it');
  t.equal(linesWith(gc.stderr, /lost/).length, 1, 'one warning says so', { stderr: gc.stderr });
  t.same(stateEntries(rig.stateDir), [], 'the record is closed');
  const again = cli(rig, ['gc']);
  ok(t, again, 'the next gc');
  t.equal(again.stdout, 'gc: nothing to do\n', 'has nothing to do');
  await claimableAgain(t, rig, gone.dev);
});

t.test('a NIC deleted on the host between createRuntime\'s plan and its move: the hook fails cleanly and leaves nothing behind', async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const gone = nic(rig, undefined, 1);
  const stays = nic(rig, undefined, 2);
  const before = await steady(rig.simhost);
  const ctrBefore = await steady(rig.ctr);
  const id = uniqueId('ctr');
  // The NIC asked for second is deleted once the plan is made: the first has been moved by then.
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [stays.dev]: { name: 'eth2' }, [gone.dev]: { name: 'eth1' } } });
  let stderr = '';
  const log = new Logger({ stderr: (text) => (stderr += text) });
  let deleted = false;
  const opts = {
    ...inProcessOptions(rig, log),
    beforeApply: () => {
      shOk('ip', ['-n', rig.simhost, 'link', 'del', gone.peer]);
      deleted = true;
    },
  };
  let thrown: unknown;
  try {
    attach(creating(id, bundle), opts);
  } catch (err) {
    thrown = err;
  }
  log.close();
  t.ok(deleted, 'the NIC was deleted between the plan and the steps');
  t.ok(thrown instanceof ApplyError, 'attach fails', { thrown: String(thrown) });
  t.equal((thrown as ApplyError).code, 'ERR_APPLY', 'with everything undone (not ERR_ROLLBACK)');
  t.equal((thrown as Error).message, `device ${gone.dev}: gone from the host while being planned`, 'one line naming the device and what happened');
  t.equal(stderr, '', 'and no warning');
  await allHome(t, rig, without(before, gone.dev, gone.peer), ctrBefore);
  await claimableAgain(t, { ...rig, inProcess: false }, gone.dev);
});

t.test('gc --forget ID drops a record without restoring, logged; a live container and an unknown id are one error line each', async (t) => {
  const rig = makeRig(t);
  const held = nic(rig);
  const live = uniqueId('ctr');
  const liveBundle = configBundle(rig.sb, rig.ctr, { netDevices: { [held.dev]: { name: 'eth1' } } });
  ok(t, hook(rig, 'create-runtime', live, liveBundle, { pid: process.pid }), 'create-runtime of a running container');
  const refused = cli(rig, ['gc', '--forget', live]);
  t.equal(refused.status, 1, 'gc --forget of a running container exits 1');
  t.equal(refused.stderr, `oci-netdev: container ${live}: not forgotten: its process ${process.pid} is running; stop it (its poststop restores the devices), then run oci-netdev gc\n`, 'with one line saying what to do');
  t.same(stateEntries(rig.stateDir), [live], 'its record stays');
  ok(t, hook(rig, 'poststop', live, liveBundle), 'its poststop');

  // A container whose process is gone (a pid that has exited) without its poststop.
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [held.dev]: { name: 'eth1' } } });
  ok(t, hook(rig, 'create-runtime', id, bundle, { pid: spawnSync('true').pid }), 'create-runtime');
  const r = cli(rig, ['gc', '--forget', id]);
  ok(t, r, 'gc --forget');
  const reason = `record dropped without restoring anything (it held device ${held.dev})`;
  t.equal(r.stdout, `${id}: forgotten (${reason})\ngc: 0 restored, 0 kept, 0 failed, 1 forgotten\n`, 'it says what it dropped');
  t.equal(r.stderr, `oci-netdev: WARNING: container ${id}: ${reason}\n`, 'and logs it as a warning');
  t.same(stateEntries(rig.stateDir), [], 'the record is gone');
  t.same(pinsIn(rig.stateDir), [], 'and its pin');
  t.same(nonLoopback(rig.ctr), ['eth1'], 'the device is left where it was');
  const gc = cli(rig, ['gc']);
  t.equal(gc.stdout, 'gc: nothing to do\n', 'gc has nothing to do');

  const unknown = cli(rig, ['gc', '--forget', 'no-such-ctr']);
  t.equal(unknown.status, 1, 'an unknown id exits 1');
  t.equal(unknown.stderr, `oci-netdev: container no-such-ctr has no record in ${rig.stateDir}\n`, 'with one line');
});

t.test('gc in a loop while containers start and stop: no failure is reported', async (t) => {
  const rig = makeRig(t);
  const containers = Array.from({ length: 8 }, (_, i) => {
    const { dev } = nic(rig, undefined, i + 10);
    const ctr = i === 0 ? rig.ctr : rig.sb.createNetns('ctr');
    return { dev, bundle: configBundle(rig.sb, ctr, { netDevices: { [dev]: { name: 'eth1' } } }) };
  });
  const before = await steady(rig.simhost);
  const runs: ShResult[] = [];
  let churning = true;
  const gcLoop = (async () => {
    while (churning) {
      runs.push(await startHook(rig.simhost, 'gc', {}, { stateDir: rig.stateDir }).done);
      await sleep(20);
    }
  })();
  const hooks: ShResult[] = [];
  for (let round = 0; round < 2; round++) {
    const ids = containers.map(() => uniqueId('churn'));
    // The test process is every container's init: alive, so gc keeps what is attached.
    hooks.push(...await Promise.all(containers.map((c, i) => startHookIn(rig, 'create-runtime', creating(ids[i], c.bundle, { pid: process.pid })).done)));
    hooks.push(...await Promise.all(containers.map((c, i) => startHookIn(rig, 'poststop', stopped(ids[i], c.bundle)).done)));
  }
  churning = false;
  await gcLoop;
  t.same(hooks.filter((h) => h.status !== 0).map((h) => h.stderr), [], 'every hook exits 0');
  t.ok(runs.length >= 2, `gc ran ${runs.length} times meanwhile`);
  const failures = runs.filter((r) => (r.status !== 0 && r.status !== 75) || /failed \(/.test(r.stdout));
  t.same(failures.map((r) => `exit ${r.status}: ${r.stdout}${r.stderr}`), [], 'no gc run reports a failure (exit 0, or 75 when a hook was busy)');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('containers ending between gc\'s listing and its lock: no failure, and nothing else reported for them', async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const store = new StateDir(rig.stateDir);
  const ns = shOk('stat', ['-L', '-c', '%d %i', netnsPath(rig.ctr)]).trim().split(' ').map(Number);
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  // Many containers without devices, whose init is this test process: gc keeps each one it reaches.
  const ids = Array.from({ length: 300 }, () => uniqueId('end'));
  for (const id of ids) {
    using _lock = store.lockContainer(id);
    store.createJournal({
      containerId: id, phase: 'attached', createdAt: new Date().toISOString(), containerPid: process.pid, containerStartTime: startTime,
      netnsPath: netnsPath(rig.ctr), netnsDev: ns[0], netnsIno: ns[1], plan: { group: 1, devices: [], steps: [] }, started: 0,
    });
  }
  const log = new Logger({ stderr: () => undefined });
  const opts = inProcessOptions(rig, log);
  const runs: ShResult[] = [];
  // Their poststops, one every few milliseconds, while gc runs over and over.
  for (let round = 0; round < 3 && ids.length; round++) {
    const gc = startHook(rig.simhost, 'gc', {}, { stateDir: rig.stateDir });
    let finished = false;
    void gc.done.then(() => (finished = true));
    while (!finished && ids.length) {
      detachAttachment(ids.splice(Math.floor(Math.random() * ids.length), 1)[0], opts);
      await sleep(3);
    }
    runs.push(await gc.done);
  }
  log.close();
  const failures = runs.filter((r) => (r.status !== 0 && r.status !== 75) || /failed \(/.test(r.stdout));
  t.same(failures.map((r) => `exit ${r.status}: ${r.stdout.split('\n').filter((l) => /failed/.test(l)).join('\n')}${r.stderr}`), [], 'no gc run reports a failure');
  const reported = runs.flatMap((r) => r.stdout.split('\n').filter((l) => l && !l.startsWith('gc: ')).map((l) => l.replace(/^\S+: (\w+).*/, '$1')));
  t.same([...new Set(reported)].filter((a) => a !== 'kept' && a !== 'busy'), [], 'every container gc reached was kept, or busy with its poststop');
  for (const id of ids) detachAttachment(id, opts);
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});
