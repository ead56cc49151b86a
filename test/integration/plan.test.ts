// A plan before the act: `oci-netdev plan BUNDLE` lists each step createRuntime would take on
// this host now and what poststop will put back, touching nothing, and createRuntime then takes
// exactly those steps. `validate` warns about netDevices without the oci-netdev hooks.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allCalls, cniDirs, writeConflist, writeRecorders } from '../helpers/cni-networks';
import { OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { annotationPolicy, cli, configBundle, makeRig, ociState, Rig, stateEntries, traced } from '../helpers/netdevices';
import { addAddress, inSimHost, nsSnapshot, sh, shOk } from '../helpers/sandbox';
import { StateDir } from '../../src/state/statedir';

const world = (rig: Rig) => ({ host: nsSnapshot(rig.simhost), ctr: nsSnapshot(rig.ctr), state: stateEntries(rig.stateDir) });

t.test('plan lists the steps and the restore, changes nothing, and createRuntime then takes those steps', async (t) => {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  writeRecorders(dirs, ['rec-a', 'rec-b']);
  const net = uniqueId('net');
  writeConflist(dirs, net, [{ type: 'rec-a' }, { type: 'rec-b' }]);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  shOk('ip', ['-n', rig.simhost, 'link', 'set', nic, 'mtu', '1450', 'address', '02:00:5e:00:53:10']);
  addAddress(rig.simhost, nic, '192.0.2.10/24');
  const vh = uniqueName('vh');
  const bundle = configBundle(rig.sb, rig.ctr, {
    netDevices: {
      [nic]: { name: 'eth1', mtu: 1400 },
      [vh]: { type: 'veth', name: 'eth2', addresses: ['10.91.0.2/24'], gateway: '10.91.0.1' },
      [net]: { type: 'cni', name: 'eth3' },
    },
  });
  const before = world(rig);
  const plan = sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', rig.stateDir, 'plan', '--json', bundle]), { env: dirs.env });
  t.equal(plan.status, 0, 'plan exits 0', { stderr: plan.stderr });
  const p = JSON.parse(plan.stdout) as { config: string; createRuntime: { device?: string; network?: string; op: string; text: string }[]; poststop: typeof p.createRuntime };
  t.equal(p.config, join(bundle, 'config.json'));
  t.same(p.createRuntime.map((s) => `${s.device ?? s.network} ${s.op}`), [
    `${nic} moveIn`, `${nic} copyAddresses`, `${nic} configure`,
    `${vh} createVeth`, `${vh} renameInContainer`, `${vh} copyAddresses`, `${vh} configure`, `${vh} addRoutes`,
    `${net} ADD`,
  ], 'createRuntime: each device step in order, then the network');
  const index = Number(JSON.parse(shOk('ip', ['-j', '-n', rig.simhost, 'link', 'show', nic]))[0].ifindex);
  t.same(p.createRuntime.map((s) => s.text), [
    `${nic}: move host device ${nic} (ifindex ${index}) into the container as eth1`,
    `${nic}: add addresses 192.0.2.10/24`,
    `${nic}: set MTU 1400, up`,
    `${vh}: create veth in the container with its host end ${vh}`,
    `${vh}: rename it to eth2`,
    `${vh}: add addresses 10.91.0.2/24`,
    `${vh}: set up`,
    `${vh}: add routes default via 10.91.0.1`,
    `network ${net}: ADD as eth3, CNI 1.0.0: rec-a, rec-b`,
  ], 'in words');
  t.equal(p.poststop.length, 3, 'poststop: each device home as it was, or deleted, then the network');
  t.equal(p.poststop[0]?.text, `${vh}: delete veth eth2 and its host end ${vh}`);
  // The device's own sysctls, routes and neighbours, as recorded: counted, whatever this host's defaults.
  t.match(p.poststop[1]?.text, new RegExp(`^${nic}: move ${nic} back to the host as ${nic} \\(ifindex ${index}\\): MTU 1450, MAC 02:00:5e:00:53:10, up, ` +
    'addresses 192\\.0\\.2\\.10/24(, \\d+ (route|neighbour|sysctl|tc object)\\(s\\))*$'));
  t.equal(p.poststop[2]?.text, `network ${net}: DEL of eth3: rec-b, rec-a`);
  t.same(world(rig), before, 'nothing changed on the host, in the container or in the state dir');
  t.same(allCalls(dirs), [], 'no plugin ran');

  const human = sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', rig.stateDir, 'plan', bundle]), { env: dirs.env });
  t.equal(human.status, 0);
  t.same(human.stdout.split('\n'), [
    `${join(bundle, 'config.json')}: the plan on this host now (nothing was changed)`,
    'createRuntime:', ...p.createRuntime.map((s, i) => `  ${i + 1}. ${s.text}`),
    'poststop:', ...p.poststop.map((s, i) => `  ${i + 1}. ${s.text}`), '',
  ], 'the human form lists the same steps, numbered');

  const id = uniqueId('ctr');
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.equal(r.status, 0, 'createRuntime', { stderr: r.stderr });
  const j = new StateDir(rig.stateDir).readJournal(id)!;
  t.same(j.plan.steps.map((s) => `${s.device} ${s.do}`), p.createRuntime.filter((s) => s.device).map((s) => `${s.device} ${s.op}`),
    'createRuntime planned exactly the listed device steps');
  t.equal(j.started, j.plan.steps.length, 'and ran them all');
  t.same([...j.plan.steps].reverse().flatMap((s) => (s.undo ? [`${s.device} ${s.undo}`] : [])), p.poststop.filter((s) => s.device).map((s) => `${s.device} ${s.op}`),
    'its undos are the listed restore');
  t.same(allCalls(dirs).map((c) => `${c.command} ${c.type}`), ['ADD rec-a', 'ADD rec-b'], 'then the network ADD');
  const stop = traced(rig, 'poststop', ociState(id, bundle, 'stopped'), dirs.env);
  t.equal(stop.status, 0, 'poststop', { stderr: stop.stderr });
  t.same(world(rig), before, 'everything is back');
});

t.test('plan refuses what createRuntime would, in one line, and changes nothing', async (t) => {
  const rig = makeRig(t);
  const missing = uniqueName('gone');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [missing]: {} } });
  const before = world(rig);
  const r = cli(rig, ['plan', bundle]);
  t.equal(r.status, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, new RegExp(`^oci-netdev: device ${missing}: no such device in the host network namespace\\n$`));
  t.same(world(rig), before);
});

t.test('validate warns when config.json declares netDevices without the oci-netdev hooks, and not once inject added them', async (t) => {
  const rig = makeRig(t);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: {} } });
  const file = join(bundle, 'config.json');
  const bare = cli(rig, ['validate', bundle]);
  t.equal(bare.status, 0, 'still valid');
  t.equal(bare.stderr, `oci-netdev: WARNING: ${file}: linux.netDevices is declared but there is no oci-netdev createRuntime or poststop hook: ` +
    'a runtime that does not implement netDevices (runc before 1.4, crun before 1.22) ignores them without a word; add the hooks with oci-netdev inject BUNDLE\n');
  t.equal(cli(rig, ['inject', bundle]).status, 0);
  const config = JSON.parse(readFileSync(file, 'utf8'));
  const poststop = config.hooks.poststop;
  delete config.hooks.poststop;
  writeFileSync(file, JSON.stringify(config));
  t.match(cli(rig, ['validate', bundle]).stderr, /there is no oci-netdev poststop hook:/, 'a missing poststop hook alone is named');
  writeFileSync(file, JSON.stringify({ ...config, hooks: { ...config.hooks, poststop } }));
  const hooked = cli(rig, ['validate', bundle]);
  t.equal(hooked.status, 0);
  t.equal(hooked.stderr, '', 'no warning with both hooks');
  const annotationOnly = configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [nic]: {} }) } });
  const annotated = cli(rig, ['validate', '--policy', annotationPolicy(rig.sb), annotationOnly]);
  t.equal(annotated.status, 0, 'an annotation the policy allows', { stderr: annotated.stderr });
  t.equal(annotated.stderr, '', 'gets no warning: hooks.d files serve the annotation');
});
