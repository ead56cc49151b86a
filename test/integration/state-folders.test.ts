// The hashed state-folder names (src/state/folders.ts) under attack, by someone who did not
// write them: a hook killed between the mkdir of a hashed folder and its `id` file, an `id` file
// lost, forged (naming another container) or replaced by a link, and ids whose encoding is
// exactly as long as a folder name may be, or one byte longer. gc and status must still see
// every container that holds devices, under its own id, and restore it.
import t, { Test } from 'tap';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateDir } from '../../src/state/statedir';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, makeRig, nonLoopback, ociState, Rig, stateEntries, traced } from '../helpers/netdevices';
import { nsSnapshot } from '../helpers/sandbox';

/** An id of exactly `bytes` bytes that encodes as itself (letters, digits, - only), unique in this run. */
const idOf = (bytes: number): string => uniqueId('sf').padEnd(bytes, 'x');

/** A NIC stand-in (a veth end) on the simulated host. */
function addNic(rig: Rig): string {
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  return nic;
}

/** createRuntime of `id` moving `nic` into the container as net0. */
function attachNic(t: Test, rig: Rig, id: string, nic: string): string {
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'net0' } } });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), {});
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  return bundle;
}

const statusIds = (rig: Rig): string[] => (JSON.parse(cli(rig, ['status', '--json']).stdout) as { containerId: string }[]).map((e) => e.containerId).sort();

t.test('a hook killed between the mkdir of a hashed folder and its id file, then createRuntime again: status sees it, gc restores it', async (t) => {
  const rig = makeRig(t);
  const nic = addNic(rig);
  const before = nsSnapshot(rig.simhost);
  const id = idOf(300);
  // What the killed hook left: the hashed folder, and nothing in it.
  const store = new StateDir(rig.stateDir);
  store.ensure();
  mkdirSync(store.containerDir(id), { mode: 0o700 });
  attachNic(t, rig, id, nic);
  t.same(nonLoopback(rig.ctr), ['net0'], 'the NIC is in the container');
  t.equal(readFileSync(join(store.containerDir(id), 'id'), 'utf8'), id, 'createRuntime wrote the id file the killed hook did not');
  t.same(statusIds(rig), [id], 'status lists the container under its full id');
  // The container dies without a poststop (its state has no pid: gone).
  const g = cli(rig, ['gc']);
  t.equal(g.status, 0, 'gc exits 0', { stdout: g.stdout, stderr: g.stderr });
  t.match(g.stdout, `${id}: restored`, 'gc restores it');
  t.same(nonLoopback(rig.ctr), [], 'nothing in the container');
  t.same(nsSnapshot(rig.simhost), before, `${nic} is home: the host is as before`);
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test('a hashed folder whose id file is lost: status still lists it, gc restores it', async (t) => {
  const rig = makeRig(t);
  const nic = addNic(rig);
  const before = nsSnapshot(rig.simhost);
  const id = idOf(400);
  attachNic(t, rig, id, nic);
  rmSync(join(new StateDir(rig.stateDir).containerDir(id), 'id'));
  t.same(statusIds(rig), [id], 'status lists the container under its full id (its journal names it)');
  const g = cli(rig, ['gc']);
  t.match(g.stdout, `${id}: restored`, 'gc restores it', { stdout: g.stdout, stderr: g.stderr });
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test("an id file forged to name another container, then replaced by a link to that container's: each container stays its own", async (t) => {
  const rig = makeRig(t);
  const nics = [addNic(rig), addNic(rig)];
  const before = nsSnapshot(rig.simhost);
  const [a, b] = [idOf(300), idOf(300)];
  const ctrB = rig.sb.createNetns('ctrb');
  const bundle = attachNic(t, rig, a, nics[0]);
  attachNic(t, { ...rig, ctr: ctrB }, b, nics[1]);
  const store = new StateDir(rig.stateDir);
  const idFileA = join(store.containerDir(a), 'id');
  rmSync(idFileA);
  writeFileSync(idFileA, b, { mode: 0o600 });
  t.same(statusIds(rig), [a, b].sort(), 'a forged id file: status lists each container once, under its own id');
  rmSync(idFileA);
  symlinkSync(join(store.containerDir(b), 'id'), idFileA);
  t.same(statusIds(rig), [a, b].sort(), 'a linked id file: the same');

  const p = traced(rig, 'poststop', ociState(a, bundle, 'stopped'), {});
  t.equal(p.status, 0, 'poststop of the first exits 0', { stderr: p.stderr });
  t.same(nonLoopback(rig.ctr), [], "the first container's NIC is home");
  t.same(nonLoopback(ctrB), ['net0'], "the second's is not touched");
  t.same(statusIds(rig), [b], 'only the second is left');
  t.match(cli(rig, ['gc']).stdout, `${b}: restored`, 'gc restores the second');
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test('ids whose encoding is exactly a folder name long, and one byte longer: plain and hashed folders, both listed and restored', async (t) => {
  const rig = makeRig(t);
  const nics = [addNic(rig), addNic(rig)];
  const before = nsSnapshot(rig.simhost);
  const ids = [idOf(255), idOf(256)];
  const ctr2 = rig.sb.createNetns('ctr2');
  attachNic(t, rig, ids[0], nics[0]);
  attachNic(t, { ...rig, ctr: ctr2 }, ids[1], nics[1]);
  const folders = stateEntries(rig.stateDir).sort();
  t.ok(folders.includes(ids[0]), 'a 255-byte id is its own folder name');
  const hashed = folders.filter((f) => f !== ids[0]);
  t.equal(hashed.length, 1, 'the 256-byte id has one folder');
  t.ok(hashed[0].includes('=') && Buffer.byteLength(hashed[0]) <= 255, 'a hashed one, a valid name', { hashed });
  t.same(statusIds(rig), [...ids].sort(), 'status names both full ids');
  const g = cli(rig, ['gc']);
  for (const id of ids) t.match(g.stdout, `${id}: restored`, 'gc restores each', { stdout: g.stdout });
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});
