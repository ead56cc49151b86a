// The claims lock is held only for what must be serialised (reading the claims, the check, and the
// journal that claims): hooks of different containers overlap in their kernel work. The engine is
// called in this process (an in-process rig), so a hook can be held in the middle of its work
// (EngineOptions.beforeApply, the info line of each step) while another runs to its end.
import t from 'tap';
import { attach } from '../../src/engine/attach';
import { detach, gc } from '../../src/engine/detach';
import type { EngineOptions } from '../../src/engine/options';
import { DeviceBusyError } from '../../src/errors';
import { Logger } from '../../src/log/logger';
import { StateDir } from '../../src/state/statedir';
import { creating, hostNic, inProcessOptions, stopped } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { configBundle, makeRig, nonLoopback, Rig, stateEntries } from '../helpers/netdevices';
import { settledTo, shOk, steady } from '../helpers/sandbox';

/** Engine options on the rig's host whose warnings are collected. */
function options(rig: Rig): { opts: EngineOptions; warnings: string[] } {
  const warnings: string[] = [];
  const log = new Logger({ stderr: () => {} });
  return { opts: { ...inProcessOptions(rig, log), warn: (m) => warnings.push(m) }, warnings };
}

/** Whether another hook could take the claims lock now. */
function claimsFree(stateDir: string): boolean {
  const lock = new StateDir(stateDir).tryLockClaims();
  lock?.release();
  return lock !== null;
}

t.test('two containers with disjoint devices: the second attaches and detaches while the first is in its kernel work; the first one\'s device is refused, naming it', async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const nicA = hostNic(rig);
  const nicB = hostNic(rig);
  const before = await steady(rig.simhost);
  const ctrB = rig.sb.createNetns('ctr');
  const ctrC = rig.sb.createNetns('ctr');
  const [idA, idB, idC] = [uniqueId('a'), uniqueId('b'), uniqueId('c')];
  const bundleA = configBundle(rig.sb, rig.ctr, { netDevices: { [nicA]: { name: 'eth1' } } });
  const bundleB = configBundle(rig.sb, ctrB, { netDevices: { [nicB]: { name: 'eth1' } } });
  const bundleC = configBundle(rig.sb, ctrC, { netDevices: { [nicA]: { name: 'eth1' } } });
  const { opts, warnings } = options(rig);
  const freeAtStepsOfA: boolean[] = [];
  let inside = false;
  attach(creating(idA, bundleA), {
    ...opts,
    info: (_message, id) => {
      if (id === idA) freeAtStepsOfA.push(claimsFree(rig.stateDir));
    },
    beforeApply: () => {
      inside = true;
      t.ok(claimsFree(rig.stateDir), 'the claims lock is free once the first has its journal, before its first kernel change');
      attach(creating(idB, bundleB), opts);
      t.same(nonLoopback(ctrB), ['eth1'], 'the second container got its device meanwhile');
      t.throws(() => attach(creating(idC, bundleC), opts), { constructor: DeviceBusyError, message: `device ${nicA} is held by container ${idA}` }, 'a third asking for the first one\'s device is refused, naming the first');
      t.same(nonLoopback(ctrC), [], 'and gets nothing');
      detach(stopped(idB, bundleB), opts);
      t.same(nonLoopback(ctrB), [], 'the second container\'s poststop ran too');
    },
  });
  t.ok(inside, 'the second ran inside the first');
  t.same(nonLoopback(rig.ctr), ['eth1'], 'the first container got its device');
  t.ok(freeAtStepsOfA.length > 0 && freeAtStepsOfA.every((free) => free), 'the claims lock is free at every step of the first', { freeAtStepsOfA });
  detach(stopped(idA, bundleA), opts);
  t.same(warnings, [], 'no warning');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
});

t.test('a poststop that brings a device home under a fallback name lets go of the claims lock once its journal records the name, before the other devices come home', async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const first = hostNic(rig);
  const second = hostNic(rig);
  const before = await steady(rig.simhost);
  const id = uniqueId('fb');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [first]: { name: 'eth1' }, [second]: { name: 'eth2' } } });
  const { opts, warnings } = options(rig);
  attach(creating(id, bundle), opts);
  // The host takes the second one's name; it comes home first (undone last step first), as a fallback.
  const squatter = uniqueName('sq');
  rig.sb.createVethPair(rig.simhost, second, squatter);
  const afterFallback: string[] = [];
  detach(stopped(id, bundle), {
    ...opts,
    info: (m) => {
      if (warnings.length) afterFallback.push(`${claimsFree(rig.stateDir) ? 'free' : 'held'}: ${m}`);
    },
  });
  const fallback = `${second.slice(0, 12)}-r0`;
  t.same(warnings.slice(0, 1), [`device ${second}: name ${second} is taken on the host by another device; restored as ${fallback}`], 'the second came home under a fallback name');
  t.same(afterFallback.filter((l) => l.includes('moveOut')), [`free: device ${second}: moveOut (undoes moveIn)`, `free: device ${first}: moveOut (undoes moveIn)`],
    'the claims lock is free once the name is recorded, and while the first comes home');
  shOk('ip', ['-n', rig.simhost, 'link', 'del', second]);
  t.same(gc(opts).map((r) => [r.containerId, r.action]), [[id, 'restored']], 'gc gives the name back once it is free');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
});
