// The fsyncs a hook makes, counted by strace around the binary under test: the journal is on disk
// before each kernel change an undo depends on, and a write that no change waits on (a new phase)
// skips the folder's fsync (README, "The journal cannot tear"). For one moved device:
// create-runtime: the first journal and its folder (after the claims lock is let go), the write
// before the move and its folder, the write of phase attached; poststop: the write of phase
// detaching. The spare the first journal reserves is never read, so it is not fsynced.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { Test } from 'tap';
import { OCI_NETDEV } from '../helpers/hook';
import { creating, hostNic, stopped } from '../helpers/host';
import { uniqueId } from '../helpers/names';
import { configBundle, makeRig, nonLoopback, Rig, stateEntries } from '../helpers/netdevices';
import { inSimHost, settledTo, sh, steady } from '../helpers/sandbox';
import type { OciState } from '../../src/config/types';

/** Runs the hook under strace; the fsync calls it made, with the file each names. */
function fsyncsOf(t: Test, rig: Rig, subcommand: string, state: OciState): string[] {
  const out = join(rig.sb.tempDir('strace'), 'trace');
  const r = sh(...inSimHost(rig.simhost, ['strace', '-f', '-qq', '-y', '-e', 'trace=fsync', '-o', out, OCI_NETDEV, subcommand, '--state-dir', rig.stateDir]), {
    input: JSON.stringify(state),
  });
  t.equal(r.status, 0, `${subcommand} exits 0`, { stderr: r.stderr });
  return readFileSync(out, 'utf8').split('\n').flatMap((l) => {
    const file = /fsync\(\d+<([^>]*)>\) = 0/.exec(l)?.[1];
    return file === undefined ? [] : [file.slice(rig.stateDir.length + 1).replace(/^[^/]+/, 'ID')];
  });
}

t.test('one moved device: create-runtime makes 5 fsyncs, poststop 1', async (t) => {
  const rig = makeRig(t);
  const nic = hostNic(rig);
  const before = await steady(rig.simhost);
  const id = uniqueId('fs');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'eth1' } } });
  t.same(fsyncsOf(t, rig, 'create-runtime', creating(id, bundle)), ['ID/journal.first', 'ID', 'ID/journal.next', 'ID', 'ID/journal.next'],
    'the first journal and its folder, the write before the move and its folder, the write of phase attached');
  t.same(nonLoopback(rig.ctr), ['eth1'], 'the device is in the container');
  t.same(fsyncsOf(t, rig, 'poststop', stopped(id, bundle)), ['ID/journal.next'], 'the write of phase detaching, without its folder');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.same(await settledTo(rig.simhost, before), before, 'the host is as before');
});
