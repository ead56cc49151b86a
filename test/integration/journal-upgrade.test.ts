// Every journal any release wrote is read (issue 18, item 4). Containers attached by the release
// before journal version 2, built here from git, are restored exactly by this build's poststop and
// gc; a journal from a newer release is reported with what to do, and gc restores the others. A
// throwaway namespace plays the host; veth ends stand in for NICs.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeId } from '../../src/state/statedir';
import { sha256Hex } from '../../src/state/sha256';
import { runHook } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, ipDetails, makeRig, nonLoopback, ociState, Rig, stateEntries } from '../helpers/netdevices';
import { addAddress, inSimHost, REPO_ROOT, Sandbox, settledTo, sh, ShResult, shOk, steady } from '../helpers/sandbox';
import { ok } from '../helpers/assert';

/**
 * The last commit whose release wrote version 1 journals: the parent of 899838e ("journal v2 in a
 * checksummed envelope"). A fresh clone has it (CI clones with full history).
 */
const V1_RELEASE = 'a3e6bd81a344a8f54e847269e0020bf5f224cbe7';

const files = new Sandbox(t);
let v1Binary: string | undefined;

/**
 * bin/oci-netdev of the V1_RELEASE, built once per test run from `git archive` into the run's
 * folder with this checkout's node_modules (its dependencies are a subset of ours).
 */
function v1Release(): string {
  if (v1Binary) return v1Binary;
  const dir = files.tempDir('release-v1');
  execFileSync('sh', ['-c', `git -C '${REPO_ROOT}' archive ${V1_RELEASE} | tar -x -C '${dir}'`]);
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  // Its CLI only: the modules the bundle is made of, not its tests.
  writeFileSync(join(dir, 'tsconfig.cli.json'), JSON.stringify({ extends: './tsconfig.json', include: ['src/**/*.ts', 'native/**/*.ts'] }));
  execFileSync('sh', ['-c', 'node scripts/gen-validators.mjs && node_modules/.bin/tsc -p tsconfig.cli.json && node scripts/bundle.mjs'], { cwd: dir, stdio: 'pipe' });
  v1Binary = join(dir, 'bin/oci-netdev');
  return v1Binary;
}

function v1Hook(rig: Rig, command: string, state: object): ShResult {
  return sh(...inSimHost(rig.simhost, [v1Release(), '--state-dir', rig.stateDir, command]), { input: JSON.stringify(state) });
}

const journalFile = (rig: Rig, id: string): string => join(rig.stateDir, encodeId(id), 'journal.json');

/** A stand-in NIC with a non-default MTU, MAC and alias, and IPv4 and IPv6 addresses. */
function configuredNic(rig: Rig, n: number): string {
  const dev = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, dev, uniqueName('peer'));
  shOk('ip', ['-n', rig.simhost, 'link', 'set', dev, 'mtu', String(1400 + n), 'address', `02:00:5e:00:71:${(16 + n).toString(16)}`, 'alias', `uplink ${n}`]);
  addAddress(rig.simhost, dev, `10.71.${n}.1/24`, ['broadcast', '+']);
  addAddress(rig.simhost, dev, `2001:db8:71:${n}::1/64`, ['nodad']);
  return dev;
}

t.test('containers attached by the release before journal version 2: poststop and gc of this build restore everything', async (t) => {
  const rig = makeRig(t);
  const ctr2 = rig.sb.createNetns('ctr');
  const nic = configuredNic(rig, 1);
  const nic2 = configuredNic(rig, 2);
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, master, uniqueName('peer'));
  const veth = uniqueName('vh');
  const before = await steady(rig.simhost);

  // One container with a moved NIC, a veth and a macvlan; another with a NIC, whose poststop never comes.
  const [id, id2] = [uniqueId('ctr'), uniqueId('ctr')];
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: {
    [nic]: { name: 'eth1', mtu: 1300 },
    [veth]: { type: 'veth', name: 'eth2', addresses: ['10.72.0.2/24'] },
    mv0: { type: 'macvlan', master, name: 'eth3', addresses: ['10.73.0.2/24'] },
  } });
  const bundle2 = configBundle(rig.sb, ctr2, { netDevices: { [nic2]: {} } });
  ok(t, v1Hook(rig, 'create-runtime', ociState(id, bundle, 'creating')), 'create-runtime of the old release');
  ok(t, v1Hook(rig, 'create-runtime', ociState(id2, bundle2, 'creating')), 'create-runtime of the old release, second container');
  const written = JSON.parse(readFileSync(journalFile(rig, id), 'utf8')) as { version: number };
  t.equal(written.version, 1, 'the old release wrote version 1 journals');
  t.same(nonLoopback(rig.ctr), ['eth1', 'eth2', 'eth3'], 'its devices are in the container');
  t.notOk(nic in ipDetails(rig.simhost), 'the NIC left the host');

  // This build sees what the old journals hold.
  const id3 = uniqueId('ctr');
  const ctr3 = rig.sb.createNetns('ctr');
  const refused = runHook(rig.simhost, 'create-runtime', ociState(id3, configBundle(rig.sb, ctr3, { netDevices: { [nic2]: {} } }), 'creating'), { stateDir: rig.stateDir });
  t.equal(refused.status, 1, 'a device an old journal holds is refused to another container');
  t.match(refused.stderr, new RegExp(`${nic2}.*held by container ${id2}`), 'naming the container holding it', { stderr: refused.stderr });
  // status lists containers in the state dir's order, which is no order: pick this one by id.
  const st = JSON.parse(cli(rig, ['status', '--json']).stdout) as { containerId: string }[];
  t.match(st.find((c) => c.containerId === id), { devices: [{ key: nic, state: 'in', containerName: 'eth1' }, { key: veth, state: 'in' }, { key: 'mv0', state: 'in' }] },
    'status reads the old journal and finds its devices', { st });

  const r = runHook(rig.simhost, 'poststop', ociState(id, bundle, 'stopped'), { stateDir: rig.stateDir });
  ok(t, r, 'poststop of this build');
  t.equal(r.stderr, '', 'without a warning');
  t.same(nonLoopback(rig.ctr), [], 'nothing is left in the container');
  t.notOk(existsSync(join(rig.stateDir, encodeId(id))), 'its state is gone');

  // The second container is gone without its poststop.
  shOk('ip', ['netns', 'del', ctr2]);
  rig.sb.defer(() => shOk('ip', ['netns', 'add', ctr2]));
  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc of this build');
  t.match(gc.stdout, new RegExp(`^${id2}: restored`, 'm'), 'it restores the old journal\'s container', { stdout: gc.stdout });
  t.same(await settledTo(rig.simhost, before), before, 'the host is exactly as before: names, MTUs, MACs, aliases, flags and addresses');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.equal(cli(rig, ['gc']).stdout, 'gc: nothing to do\n', 'gc then has nothing to do');
});

t.test('a journal from a newer release: gc says which and what to do, restores the others, and exits 1', async (t) => {
  const rig = makeRig(t);
  const cases = ['newer version', 'unknown field', 'ours'] as const;
  const setups = cases.map((c) => {
    const ctr = c === 'ours' ? rig.ctr : rig.sb.createNetns('ctr');
    const nic = configuredNic(rig, 5 + cases.indexOf(c));
    return { c, ctr, nic, id: uniqueId('ctr'), bundle: configBundle(rig.sb, ctr, { netDevices: { [nic]: { name: 'eth1' } } }) };
  });
  for (const s of setups) ok(t, runHook(rig.simhost, 'create-runtime', ociState(s.id, s.bundle, 'creating'), { stateDir: rig.stateDir }), `create-runtime (${s.c})`);
  const ours = await steady(rig.simhost);

  // What a later release could write: a higher version, or an optional field this one does not know.
  for (const s of setups.filter((s) => s.c !== 'ours')) {
    const file = journalFile(rig, s.id);
    const envelope = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]) as { version: number; sha256: string; journal: Record<string, unknown> };
    if (s.c === 'newer version') envelope.version = 3;
    else envelope.journal.laterField = { added: 'by a newer release' };
    envelope.sha256 = sha256Hex(JSON.stringify(envelope.journal));
    writeFileSync(file, `${JSON.stringify(envelope)}\n`);
  }

  const gc = cli(rig, ['gc']);
  t.equal(gc.status, 1, 'gc exits 1: not everything is restored', { stdout: gc.stdout, stderr: gc.stderr });
  const [newer, unknown, own] = setups;
  const line = (id: string) => gc.stdout.split('\n').find((l) => l.startsWith(`${id}: `)) ?? '';
  t.match(line(newer.id), new RegExp(`^${newer.id}: failed \\(.*written by a newer oci-netdev \\(journal version 3; this one reads versions 1 to 2\\)`), 'the newer version is named', { stdout: gc.stdout });
  t.match(line(unknown.id), new RegExp(`^${unknown.id}: failed \\(.*written by a newer oci-netdev \\(its field journal.laterField is unknown here\\)`), 'so is the unknown field', { stdout: gc.stdout });
  for (const id of [newer.id, unknown.id]) t.match(line(id), /run that release's oci-netdev gc, or upgrade to it/, 'with what to do');
  t.match(line(own.id), new RegExp(`^${own.id}: restored`), 'the others are restored');
  t.match(gc.stdout, /gc: 1 restored, 0 kept, 2 failed/, 'the summary counts them');
  t.ok(own.nic in ipDetails(rig.simhost), 'our container\'s NIC is home');
  for (const s of [newer, unknown]) {
    t.notOk(s.nic in ipDetails(rig.simhost), `the newer journal's NIC (${s.c}) is left where it is`);
    t.ok(existsSync(journalFile(rig, s.id)), 'and its journal too');
  }
  t.ok(Object.keys(ours).every((n) => n in ipDetails(rig.simhost)), 'nothing else on the host changed');
});
