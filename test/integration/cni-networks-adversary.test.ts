// The CNI networks of the hooks (type "cni" entries) under attack, by someone who did not write
// them: container ids and arguments that libcni's cache or a plugin's environment cannot hold.
// Each must be refused before anything changes, and never leave a DEL owed that can never run.
import t, { Test } from 'tap';
import { join } from 'node:path';
import { uniqueId } from '../helpers/names';
import { cli, configBundle, makeRig, nonLoopback, ociState, Rig, stateEntries, traced, userStderr } from '../helpers/netdevices';
import { cacheEntries, cniDirs, CniDirs, readRecords, writeConflist, writeRecorders } from '../helpers/cni-networks';
import { nsSnapshot } from '../helpers/sandbox';

interface Setup { rig: Rig; dirs: CniDirs; record: string; net: string }

/** A rig with a one-plugin network of the recording plugin. */
function recordedNetwork(t: Test): Setup {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  const record = join(dirs.confDir, 'calls.jsonl');
  writeRecorders(dirs, ['rec-a']);
  const net = uniqueId('adv');
  writeConflist(dirs, net, [{ type: 'rec-a', record }]);
  return { rig, dirs, record, net };
}

/** createRuntime of `id` with `entry` for the network must fail in one line matching `said`, with nothing run, changed or left. */
function refusedUntouched(t: Test, s: Setup, id: string, entry: object, said: RegExp): void {
  const before = nsSnapshot(s.rig.simhost);
  const bundle = configBundle(s.rig.sb, s.rig.ctr, { netDevices: { [s.net]: { type: 'cni', ...entry } } });
  const r = traced(s.rig, 'create-runtime', ociState(id, bundle, 'creating'), s.dirs.env);
  t.not(r.status, 0, 'createRuntime fails');
  const line = userStderr(r.stderr);
  t.equal(line.split('\n').length, 1, 'in one line', { line });
  t.match(line, said, 'saying why');
  t.same(readRecords(s.record).filter((c) => c.command !== 'VERSION'), [], 'no plugin ran');
  t.same(stateEntries(s.rig.stateDir), [], 'no state: no DEL is owed');
  t.same(cacheEntries(s.dirs), [], 'nothing cached');
  t.same(nsSnapshot(s.rig.simhost), before, 'the host is as before');
  t.same(nonLoopback(s.rig.ctr), [], 'nothing in the container');
  t.match(cli(s.rig, ['gc']).stdout, 'gc: nothing to do', 'gc has nothing to do');
}

t.test("a container id too long for libcni's cache file name: refused before any plugin runs", async (t) => {
  const s = recordedNetwork(t);
  refusedUntouched(t, s, uniqueId('ctr').padEnd(250, 'x'), {}, new RegExp(`network ${s.net}: .*too long for libcni's result cache`));
});

t.test("a container id with a / (which would name a folder of libcni's cache): refused before any plugin runs", async (t) => {
  const s = recordedNetwork(t);
  refusedUntouched(t, s, `${uniqueId('ctr')}/x`, {}, new RegExp(`network ${s.net}: invalid container id .* for the cache`));
});

t.test('CNI_ARGS with a NUL byte in a key or a value (no environment holds one): refused before any plugin runs', async (t) => {
  const s = recordedNetwork(t);
  refusedUntouched(t, s, uniqueId('ctr'), { args: { K8S_POD_NAME: 'web\u0000x' } }, /args.*must be a string without ;, = or a NUL byte/);
  refusedUntouched(t, s, uniqueId('ctr'), { args: { 'K8S\u0000POD': 'web' } }, /args.*must be a non-empty name without ;, = or a NUL byte/);
});
