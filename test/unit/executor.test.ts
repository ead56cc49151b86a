// The executor's one promise to a crash: a step with an undo starts only once the journal on disk
// says it started, so that gc after a kill -9 at any point undoes it. The steps here are the
// executor's own table with each operation replaced by one that reads the journal from disk (a
// real StateDir in a temp dir) as it starts; the plan is the planner's for a moved NIC, a veth and
// a macvlan.
import t, { Test } from 'tap';
import { Sandbox } from '../helpers/sandbox';
import { fakeLink } from '../helpers/links';
import { applyPlan, rollback } from '../../src/apply/executor';
import { OPERATIONS } from '../../src/apply/operations';
import type { ApplyContext, Op, Side } from '../../src/apply/operations';
import { parseNetDevices } from '../../src/config/load';
import { defaultPolicy } from '../../src/config/policy';
import { planAttach } from '../../src/plan/plan';
import type { Operation } from '../../src/state/journal-records';
import { StateDir } from '../../src/state/statedir';
import type { Journal } from '../../src/state/statedir';
import { ApplyError } from '../../src/errors';

const ID = 'executor-test';

function setUp(t: Test) {
  const store = new StateDir(new Sandbox(t).tempDir('state'));
  store.ensure();
  const plan = planAttach(parseNetDevices({ nic0: { name: 'eth1' }, vh0: { type: 'veth', name: 'eth2' }, mv0: { type: 'macvlan', master: 'nic1', name: 'eth3' } }, 'config'), {
    hostLinks: [fakeLink(1, 'lo', { flags: 0x9, kind: null }), fakeLink(5, 'nic0'), fakeLink(6, 'nic1')],
    hostAddresses: [], containerLinks: [fakeLink(1, 'lo', { flags: 0x9, kind: null })], containerAddresses: [],
  }, { group: 0x12345, claims: new Map(), macvlanMasters: new Map(), policy: defaultPolicy(), indexBase: 100 });
  const journal: Journal = {
    containerId: ID, phase: 'attaching', createdAt: new Date().toISOString(), netnsPath: '/proc/1/ns/net', netnsDev: 1, netnsIno: 2, plan, started: 0,
  };
  // As attach does: the container's lock (which makes its folder) held while its journal is written.
  const lock = store.lockContainer(ID);
  t.teardown(() => lock.release());
  store.createJournal(journal);
  const ran: { op: Operation; device: string; startedOnDisk: number }[] = [];
  const watching = (failOn?: { op: Operation; device: string }): Record<Operation, Op> => {
    const table = {} as Record<Operation, Op>;
    for (const op of Object.keys(OPERATIONS) as Operation[]) {
      table[op] = (_ctx, rec) => {
        ran.push({ op, device: rec.key, startedOnDisk: store.readJournal(ID)?.started ?? -1 });
        if (failOn && failOn.op === op && failOn.device === rec.key) throw new Error(`${op} ${rec.key} failed`);
      };
    }
    return table;
  };
  // The operations never reach the kernel here: no sides are needed.
  const ctx: ApplyContext = {
    host: {} as Side, container: null, plan, persist: () => store.writeJournal(journal), warn: () => {}, info: () => {}, seen: new Map(), movedHere: new Set(),
  };
  return { store, journal, ran, watching, ctx };
}

t.test('every step with an undo starts only after the journal on disk counts it as started', async (t) => {
  const { journal, ran, watching, ctx } = setUp(t);
  const steps = journal.plan.steps;
  t.same(steps.filter((s) => s.undo).map((s) => `${s.device}:${s.do}/${s.undo}`),
    ['nic0:moveIn/moveOut', 'vh0:createVeth/deleteCreated', 'mv0:createMacvlan/deleteCreated'], 'the plan has three steps with an undo');
  applyPlan(ctx, journal, watching());
  t.equal(ran.length, steps.length, 'every step ran, once');
  steps.forEach((s, i) => {
    t.equal(ran[i].op, s.do, `step ${i + 1} is ${s.device}:${s.do}`);
    if (s.undo) t.ok(ran[i].startedOnDisk >= i + 1, `${s.device}:${s.do} ran with the journal on disk at started=${ran[i].startedOnDisk} (>= ${i + 1})`);
  });
  t.equal(journal.started, steps.length);
});

t.test('a failed step: the started steps are undone, last first, and the error says which code', async (t) => {
  const { journal, ran, watching, ctx } = setUp(t);
  const err = t.throws(() => applyPlan(ctx, journal, watching({ op: 'createMacvlan', device: 'mv0' }))) as ApplyError;
  t.ok(err instanceof ApplyError);
  t.equal(err.code, 'ERR_APPLY', 'every undo worked');
  t.equal(err.message, 'createMacvlan mv0 failed', 'the failure, as it was');
  const undos = ran.filter((r) => r.op === 'moveOut' || r.op === 'deleteCreated').map((r) => `${r.device}:${r.op}`);
  t.same(undos, ['mv0:deleteCreated', 'vh0:deleteCreated', 'nic0:moveOut'], 'the failed step too (it may have half-happened), then the others, in reverse');
});

t.test('an undo that fails too: ERR_ROLLBACK, and the other undos still run', async (t) => {
  const { journal, ran, watching, ctx } = setUp(t);
  const ops = watching({ op: 'createMacvlan', device: 'mv0' });
  const undoVeth = ops.deleteCreated;
  ops.deleteCreated = (c, rec) => {
    undoVeth(c, rec);
    if (rec.key === 'vh0') throw new Error('delete vh0 failed');
  };
  const err = t.throws(() => applyPlan(ctx, journal, ops)) as ApplyError;
  t.equal(err.code, 'ERR_ROLLBACK');
  t.match(err.message, /^createMacvlan mv0 failed; rollback also failed: delete vh0 failed$/);
  t.ok(ran.some((r) => r.device === 'nic0' && r.op === 'moveOut'), 'the NIC still went home');
});

t.test('rollback after a crash: what the journal on disk says was started is undone', async (t) => {
  const { store, journal, ran, watching, ctx } = setUp(t);
  // A run killed just after the veth's step was recorded: the journal on disk is all gc has.
  journal.started = journal.plan.steps.findIndex((s) => s.do === 'createVeth') + 1;
  store.writeJournal(journal);
  const onDisk = store.readJournal(ID);
  if (!onDisk) throw new Error('the journal is gone');
  t.same(rollback(ctx, onDisk, watching()), []);
  t.same(ran.map((r) => `${r.device}:${r.op}`), ['vh0:deleteCreated', 'nic0:moveOut'], 'the veth, then the NIC; the macvlan never started');
});
