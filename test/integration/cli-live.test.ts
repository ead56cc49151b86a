// The CLI against the kernel: validate --live refuses what createRuntime would refuse, with the
// same line, and changes nothing; gc's summary and --json; a hook entry written by inject starts
// with no environment but its own, wherever node is.
import t from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { NODE_LAUNCHER, OCI_NETDEV, runHook } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { addAddress, inSimHost, netnsPath, nsSnapshot, sh, shOk } from '../helpers/sandbox';
import { cli, configBundle, makeRig, nonLoopback, ociState, Rig, stateEntries } from '../helpers/netdevices';
import { listLinks } from '../../src/netlink/link';
import { Netns } from '../../src/netns/netns';

/** `oci-netdev validate --live TARGET` in the simulated host, with the rig's state dir. */
const live = (rig: Rig, target: string, extra: string[] = []) => cli(rig, ['validate', '--live', ...extra, target]);

/** Both namespaces as iproute2 shows them, and the state dir's entries. */
const world = (rig: Rig) => ({ host: nsSnapshot(rig.simhost), ctr: nsSnapshot(rig.ctr), state: stateEntries(rig.stateDir) });

t.test('validate --live refuses what createRuntime would, with the same one line, and changes nothing', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  const routed = uniqueName('rt');
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  rig.sb.createVethPair(rig.simhost, routed, uniqueName('peer'));
  rig.sb.createVethPair(rig.simhost, master, uniqueName('peer'));
  shOk('ip', ['-n', rig.simhost, 'link', 'set', master, 'mtu', '1400']);
  addAddress(rig.simhost, routed, '192.0.2.1/24');
  shOk('ip', ['-n', rig.simhost, 'route', 'add', 'default', 'via', '192.0.2.254', 'dev', routed]);
  const taken = uniqueName('in');
  shOk('ip', ['-n', rig.ctr, 'link', 'add', taken, 'type', 'veth', 'peer', 'name', uniqueName('inp')]);
  const policy = join(rig.sb.tempDir('policy'), 'policy.json');
  writeFileSync(policy, JSON.stringify({ config: { allowDevices: ['nothing-matches*'] } }), { mode: 0o644 });

  /** A bundle whose config.json has the network namespace `ns` (a path, none, or no entry at all). */
  const bundle = (netDevices: Record<string, object>, ns: 'ctr' | 'new' | 'none' = 'ctr') => {
    const dir = configBundle(rig.sb, rig.ctr, { netDevices });
    if (ns !== 'ctr') {
      const file = join(dir, 'config.json');
      const config = JSON.parse(readFileSync(file, 'utf8'));
      config.linux.namespaces = ns === 'new' ? [{ type: 'network' }] : [{ type: 'mount' }];
      writeFileSync(file, JSON.stringify(config));
    }
    return dir;
  };
  const missing = uniqueName('gone');
  const cases: { what: string; dir: string; message: RegExp; policy?: boolean; newNamespace?: boolean }[] = [
    { what: 'no network namespace', dir: bundle({ [nic]: {} }, 'none'), message: /^config\.json has no network namespace \(linux\.namespaces type "network"\); devices cannot be moved$/ },
    { what: 'a veth named lo (the namespace is not made yet)', dir: bundle({ [uniqueName('vh')]: { type: 'veth', name: 'lo' } }, 'new'), message: /: name lo is taken by the loopback device every network namespace has$/, newNamespace: true },
    { what: 'a veth named lo', dir: bundle({ [uniqueName('vh')]: { type: 'veth', name: 'lo' } }), message: /: name lo is taken by the loopback device/ },
    { what: 'a missing device', dir: bundle({ [missing]: {} }), message: new RegExp(`^device ${missing}: no such device in the host network namespace$`) },
    { what: 'an MTU above what the device takes (a macvlan above its master\'s)', dir: bundle({ [uniqueName('mv')]: { type: 'macvlan', master, mtu: 1500 } }), message: new RegExp(`: mtu 1500 is above the MTU 1400 of macvlan master ${master}$`) },
    { what: 'a name taken in the namespace config.json names', dir: bundle({ [nic]: { name: taken } }), message: new RegExp(`^device ${nic}: name ${taken} already exists in the container$`) },
    { what: 'an always-refused device', dir: bundle({ [routed]: {} }), message: /always-refused: default-route/ },
    { what: 'a policy refusal', dir: bundle({ [nic]: {} }), message: new RegExp(`${nic}`), policy: true },
  ];
  const before = world(rig);
  for (const c of cases) {
    const extra = c.policy ? ['--policy', policy] : [];
    const r = live(rig, c.dir, extra);
    t.equal(r.status, 1, `${c.what}: exit 1`);
    const lines = r.stderr.split('\n').filter(Boolean);
    t.equal(lines.length, 1, `${c.what}: one line (${r.stderr.trim()})`);
    t.match(lines[0].replace(/^oci-netdev: /, ''), c.message, `${c.what}: says why`);
    t.same(world(rig), before, `${c.what}: nothing changed`);
    // createRuntime on the same bundle says the same (a namespace not made yet is the runtime's to make).
    if (c.newNamespace) continue;
    const hook = sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', rig.stateDir, ...extra, 'create-runtime']), {
      input: JSON.stringify(ociState(uniqueId('c'), c.dir, 'creating')),
    });
    t.equal(hook.stderr, r.stderr, `${c.what}: createRuntime says the same`);
    t.same(world(rig), before, `${c.what}: and changes nothing either`);
  }
  t.match(sh(...inSimHost(rig.simhost, [OCI_NETDEV, 'validate', '--policy', policy, bundle({ [nic]: {} })])).stderr,
    /allowDevices/, 'the policy refusal names the policy\'s list');

  const good = bundle({ [nic]: { name: 'eth1', mtu: 1400 }, [uniqueName('vh')]: { type: 'veth', name: 'eth2', addresses: ['10.9.0.2/24'] } });
  for (const target of [good, join(good, 'config.json')]) {
    const r = live(rig, target);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, `${join(good, 'config.json')}: ok, 2 device(s), attachable on this host now\n`, `accepted from ${target}`);
  }
  t.same(world(rig), before, 'the host, the container namespace and the state dir are as before');
  t.notOk(existsSync(join(rig.stateDir, 'x')), 'no state written');
});

t.test('IFLA_MIN_MTU and IFLA_MAX_MTU are read from the kernel', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const ns = Netns.open(netnsPath(rig.simhost));
  const sock = ns.socket();
  try {
    const links = listLinks(sock);
    const veth = links.find((l) => l.name === nic);
    const detail = JSON.parse(shOk('ip', ['-d', '-j', '-n', rig.simhost, 'link', 'show', nic]))[0];
    t.same([veth?.minMtu, veth?.maxMtu], [detail.min_mtu, detail.max_mtu], 'a veth: what iproute2 shows');
    t.same([links.find((l) => l.name === 'lo')?.minMtu, links.find((l) => l.name === 'lo')?.maxMtu], [null, null], 'lo: no bounds (0)');
  } finally {
    sock.close();
    ns.close();
  }
});

t.test('gc prints a summary line, and JSON with --json', async (t) => {
  const rig = makeRig(t);
  const gcOut = (json = false) => cli(rig, ['gc', ...(json ? ['--json'] : [])]);
  t.equal(gcOut().stdout, 'gc: nothing to do\n', 'nothing: says so');
  t.same(JSON.parse(gcOut(true).stdout), { summary: { restored: 0, kept: 0, failed: 0, busy: 0, removed: 0 }, containers: [] });

  // Two containers: one whose process is gone (no pid), one whose process runs.
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(() => sleeper.kill('SIGKILL'));
  const ids = [uniqueId('gone'), uniqueId('alive')];
  for (const [i, id] of ids.entries()) {
    const nic = uniqueName('nic');
    rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
    const dir = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: {} } });
    const r = runHook(rig.simhost, 'create-runtime', ociState(id, dir, 'creating', i ? { pid: sleeper.pid } : {}), { stateDir: rig.stateDir });
    t.equal(r.status, 0, r.stderr);
  }
  const before = nonLoopback(rig.ctr).length;
  t.equal(before, 2, 'both devices are in the container');
  const r = gcOut();
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.same(lines.slice(0, 2).sort(), [`${ids[0]}: restored (container is gone)`, `${ids[1]}: kept (container process ${sleeper.pid} is running)`].sort(), 'one line per container');
  t.same(lines.slice(2), ['gc: 1 restored, 1 kept, 0 failed', ''], 'then the summary');
  t.equal(nonLoopback(rig.ctr).length, 1, 'the gone one\'s device is back on the host');

  sleeper.kill('SIGKILL');
  await new Promise((done) => sleeper.once('exit', done));
  const j = gcOut(true);
  t.equal(j.status, 0, j.stderr);
  t.same(JSON.parse(j.stdout), {
    summary: { restored: 1, kept: 0, failed: 0, busy: 0, removed: 0 },
    containers: [{ containerId: ids[1], action: 'restored', reason: 'container is gone' }],
  }, '--json prints the summary and each container');
  t.same(nonLoopback(rig.ctr), [], 'everything is back');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test("a hook entry written by the Node launcher's inject starts with an empty environment when node is only where inject ran it from", async (t) => {
  const rig = makeRig(t);
  // node where no PATH of a runtime would look: a copy (not a link: node reports a link's
  // target as its own path) in a temporary folder.
  const nodeDir = mkdtempSync(join(tmpdir(), 'ondt-node-'));
  t.teardown(() => rmSync(nodeDir, { recursive: true, force: true }));
  copyFileSync(process.execPath, join(nodeDir, 'node'));
  shOk('chmod', ['0755', join(nodeDir, 'node')]);

  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const dir = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'eth1' } } });
  shOk(join(nodeDir, 'node'), [NODE_LAUNCHER, '--state-dir', rig.stateDir, 'inject', dir], { env: { OCI_NETDEV_TIMEOUT: '' } });
  const hooks = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).hooks;
  const entry = (stage: string) => hooks[stage][0] as { path: string; args: string[]; env: string[]; timeout: number };
  const path = entry('createRuntime').env.find((e) => e.startsWith('PATH='))!.slice('PATH='.length).split(delimiter);
  t.equal(path[0], nodeDir, 'the written PATH starts with the folder of the node inject ran under');

  // This machine has node in /usr/bin (and /bin): a host where node is only in nodeDir is
  // simulated by leaving out of the written PATH every folder that holds a node, but nodeDir.
  // /usr/bin/env, the launcher's interpreter, is named by its absolute path and needs no PATH.
  const withoutNode = path.filter((d) => d === nodeDir || !existsSync(join(d, 'node')));
  t.ok(withoutNode.length < path.length, `the system's node is left out (${path.filter((d) => !withoutNode.includes(d)).join(', ')})`);
  /** The entry as a runtime runs it: its path, its args, its env and nothing else. */
  const id = uniqueId('c');
  const runEntry = (stage: string, status: 'creating' | 'stopped', pathDirs: string[]) => {
    const e = entry(stage);
    const env = e.env.map((v) => (v.startsWith('PATH=') ? `PATH=${pathDirs.join(delimiter)}` : v));
    return sh(...inSimHost(rig.simhost, ['/usr/bin/env', '-i', ...env, e.path, ...e.args.slice(1)]), {
      input: JSON.stringify(ociState(id, dir, status)),
    });
  };
  const control = runEntry('createRuntime', 'creating', withoutNode.filter((d) => d !== nodeDir));
  t.equal(control.status, 127, 'control: without the written folder, no node is found (exit 127)');

  const before = nsSnapshot(rig.simhost);
  const created = runEntry('createRuntime', 'creating', withoutNode);
  t.equal(created.status, 0, `createRuntime runs: ${created.stderr}`);
  t.same(nonLoopback(rig.ctr), ['eth1'], 'and the device is in the container');
  const stopped = runEntry('poststop', 'stopped', withoutNode);
  t.equal(stopped.status, 0, `poststop runs: ${stopped.stderr}`);
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
});
