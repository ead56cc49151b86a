// A mixed config (moved host devices + veth pairs + macvlans, with MAC, MTU and addresses) set up
// and torn down in a simulated host (issue 3): the host ends identical, every created device gone
// (the veths' host ends in one RTM_DELLINK by group, each macvlan by its ifindex), after poststop,
// after gc, after a failed createRuntime and after a kill -9 in the middle; `status` shows what
// each container holds; the annotation is a source.
import t, { Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { ANNOTATION } from '../../src/config/load';
import { OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { netnsPath, nsSnapshot, shOk } from '../helpers/sandbox';
import {
  annotationPolicy, cli, configBundle, groupedDevices, ipDetails, makeRig, nonLoopback, ociState, requests, Rig, RTM, stateEntries, traced, userStderr,
} from '../helpers/netdevices';

interface Mixed {
  nic1: string;
  nic2: string;
  vh1: string;
  vh2: string;
  master: string;
  netDevices: Record<string, object>;
}

/** Two stand-in NICs (one with addresses), a macvlan master, and a config using all three kinds. */
function mixedHost(rig: Rig): Mixed {
  const [nic1, nic2, vh1, vh2, master] = ['nic', 'nic', 'vh', 'vh', 'mst'].map(uniqueName);
  rig.sb.createVethPair(rig.simhost, nic1, uniqueName('peer'));
  rig.sb.createVethPair(rig.simhost, nic2, uniqueName('peer'));
  rig.sb.createVethPair(rig.simhost, master, uniqueName('mpeer'));
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.10/24', 'dev', nic1, 'broadcast', '+']);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '2001:db8:1::10/64', 'dev', nic1, 'nodad']);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', nic2, 'down']);
  return {
    nic1, nic2, vh1, vh2, master,
    netDevices: {
      [nic1]: { name: 'eth1', mtu: 1400, mac: '02:01:00:00:00:01' },
      [vh1]: { type: 'veth', name: 'eth2', mtu: 1450, mac: '02:02:00:00:00:02', addresses: ['10.2.0.2/24', 'fd02::2/64'] },
      mv1: { type: 'macvlan', master, name: 'eth3', mac: '02:03:00:00:00:03', mtu: 1300, addresses: ['10.3.0.2/24'] },
      [nic2]: { name: 'net%d' },
      [vh2]: { type: 'veth', name: 'eth4' },
      mv2: { type: 'macvlan', master, mode: 'private', name: 'eth5', addresses: ['fd05::2/64'] },
    },
  };
}

const CREATED_IN_CONTAINER = ['eth2', 'eth3', 'eth4', 'eth5'];

/** What the container must hold after createRuntime of the mixed config. */
function checkInside(t: Test, rig: Rig, m: Mixed): void {
  const d = ipDetails(rig.ctr);
  t.same(Object.keys(d).sort(), ['eth1', 'eth2', 'eth3', 'eth4', 'eth5', 'lo', 'net0'], 'every device under its container name (net%d is net0)');
  const want: Record<string, { kind: string; mtu?: number; mac?: string; addrs: string[] }> = {
    eth1: { kind: 'veth', mtu: 1400, mac: '02:01:00:00:00:01', addrs: ['192.0.2.10/24', '2001:db8:1::10/64'] },
    eth2: { kind: 'veth', mtu: 1450, mac: '02:02:00:00:00:02', addrs: ['10.2.0.2/24', 'fd02::2/64'] },
    eth3: { kind: 'macvlan', mtu: 1300, mac: '02:03:00:00:00:03', addrs: ['10.3.0.2/24'] },
    net0: { kind: 'veth', addrs: [] },
    eth4: { kind: 'veth', addrs: [] },
    eth5: { kind: 'macvlan', addrs: ['fd05::2/64'] },
  };
  for (const [name, w] of Object.entries(want)) {
    const l = d[name];
    if (!l) continue;
    t.equal(l.linkinfo?.info_kind, w.kind, `${name} is a ${w.kind}`);
    if (w.mtu !== undefined) t.equal(l.mtu, w.mtu, `${name} MTU`);
    if (w.mac !== undefined) t.equal(l.address, w.mac, `${name} MAC`);
    t.ok(l.flags.includes('UP'), `${name} is up`);
    const global = l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort();
    t.same(global, w.addrs.sort(), `${name} addresses`);
    for (const a of l.addr_info.filter((x) => x.family === 'inet6' && x.scope === 'global')) {
      t.ok(a.nodad, `${name} ${a.local} has nodad`);
    }
  }
  t.equal(d.eth5?.linkinfo?.info_data?.mode, 'private', 'eth5 is a private macvlan');
  t.equal(d.eth3?.linkinfo?.info_data?.mode, 'bridge', 'eth3 is a bridge macvlan');
  const groups = new Set(CREATED_IN_CONTAINER.map((n) => d[n]?.group));
  t.equal(groups.size, 1, 'every created device is in one link group');
  t.notOk(groups.has('default'), 'which is not the default group');
  t.equal(d.eth1?.group, 'default', 'a moved device keeps its group');
  const host = ipDetails(rig.simhost);
  t.ok(host[m.vh1] && host[m.vh2], 'the veth host ends are on the host');
  t.equal(host[m.vh1]?.mtu, 1450, 'the veth MTU applies to the host end too');
  t.ok(host[m.vh1]?.flags.includes('UP') && host[m.vh2]?.flags.includes('UP'), 'the host ends are up');
  t.ok(groups.has(host[m.vh1]?.group), 'the host ends are in the group');
  t.notOk(m.nic1 in host || m.nic2 in host, 'the moved devices left the host');
}

/** Teardown of mixedHost's config: one group delete for both veths, one delete per macvlan. */
const TEARDOWN_DELETES = 3;

function checkRestored(t: Test, rig: Rig, before: object, what: string): void {
  t.same(nsSnapshot(rig.simhost), before, `${what}: the simulated host is identical to before`);
  t.same(groupedDevices(rig.simhost), [], `${what}: no created device remains on the host`);
  t.same(nonLoopback(rig.ctr), [], `${what}: nothing remains in the container netns`);
  t.same(stateEntries(rig.stateDir), [], `${what}: no state remains`);
}

t.test('mixed config: set up, then torn down with one RTM_DELLINK for the veths, host identical', async (t) => {
  const rig = makeRig(t);
  const m = mixedHost(rig);
  const before = nsSnapshot(rig.simhost);
  const id = uniqueId('mixed');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: m.netDevices });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'));
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.equal(userStderr(r.stderr), '', 'and prints nothing');
  t.same(requests(r.stderr, RTM.DELLINK), [], 'nothing deleted while attaching');
  checkInside(t, rig, m);

  const r2 = traced(rig, 'poststop', ociState(id, bundle, 'stopped'));
  t.equal(r2.status, 0, 'poststop exits 0', { stderr: r2.stderr });
  t.equal(userStderr(r2.stderr), '', 'and prints nothing');
  const dels = requests(r2.stderr, RTM.DELLINK);
  t.equal(dels.length, TEARDOWN_DELETES, 'two veth pairs in one RTM_DELLINK, and one per macvlan', { trace: r2.stderr });
  t.equal(dels.filter((d) => /^trace: delete created veths group \d+ /.test(d)).length, 1, 'the veths by group');
  checkRestored(t, rig, before, 'after poststop');

  const again = traced(rig, 'poststop', ociState(id, bundle, 'stopped'));
  t.equal(again.status, 0, 'a second poststop exits 0');
  t.same(requests(again.stderr, RTM.DELLINK), [], 'and deletes nothing');
});

t.test('mixed config: a failure on the last entry rolls everything back', async (t) => {
  const rig = makeRig(t);
  const m = mixedHost(rig);
  const before = nsSnapshot(rig.simhost);
  const bundle = configBundle(rig.sb, rig.ctr, {
    // The kernel refuses passthru on a master that already carries mv1 and mv2, after every other step ran.
    netDevices: { ...m.netDevices, mvlast: { type: 'macvlan', master: m.master, mode: 'passthru', name: 'eth9' } },
  });
  const r = traced(rig, 'create-runtime', ociState(uniqueId('fail'), bundle, 'creating'));
  t.not(r.status, 0, 'createRuntime fails');
  const err = userStderr(r.stderr);
  t.equal(err.split('\n').length, 1, 'one line on stderr', { err });
  t.match(err, /^oci-netdev: create macvlan device mvlast: EINVAL/, 'naming the device and the cause');
  const creates = requests(r.stderr, RTM.NEWLINK).filter((l) => / flags=0x605 /.test(l));
  t.equal(creates.length, 5, 'the four created devices were made before the last one failed');
  t.equal(requests(r.stderr, RTM.DELLINK).length, TEARDOWN_DELETES, 'the rollback deletes them: the veths in one request');
  checkRestored(t, rig, before, 'after the failed createRuntime');
});

t.test('mixed config: gc restores a container that is gone, and keeps one that runs', async (t) => {
  const rig = makeRig(t);
  const m = mixedHost(rig);
  const before = nsSnapshot(rig.simhost);
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(() => void sleeper.kill('SIGKILL'));
  const id = uniqueId('gc');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: m.netDevices });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating', { pid: sleeper.pid }));
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });

  const kept = cli(rig, ['gc']);
  t.equal(kept.status, 0, 'gc exits 0');
  t.match(kept.stdout, `${id}: kept (container process ${sleeper.pid} is running)`);
  t.same(nonLoopback(rig.ctr), ['eth1', 'eth2', 'eth3', 'eth4', 'eth5', 'net0'], 'the devices stay while it runs');

  sleeper.kill('SIGKILL');
  await new Promise((resolve) => sleeper.once('exit', resolve));
  const gc = traced(rig, 'gc', {});
  t.equal(gc.status, 0, 'gc exits 0', { stderr: gc.stderr });
  t.match(gc.stdout, `${id}: restored (container is gone)`);
  t.equal(requests(gc.stderr, RTM.DELLINK).length, TEARDOWN_DELETES, 'gc deletes the created devices: the veths in one request');
  checkRestored(t, rig, before, 'after gc');
});

t.test('mixed config: after a kill -9 in the middle of createRuntime, gc brings everything back', async (t) => {
  const rig = makeRig(t);
  const m = mixedHost(rig);
  const before = nsSnapshot(rig.simhost);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: m.netDevices });
  const id = uniqueId('kill');
  const child = spawn('nsenter', [`--net=${netnsPath(rig.simhost)}`, '--', OCI_NETDEV, '--state-dir', rig.stateDir, 'create-runtime'], {
    env: { ...process.env, OCI_NETDEV_TRACE: '1' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  child.stdin.end(JSON.stringify(ociState(id, bundle, 'creating')));
  let trace = '';
  const killed = await new Promise<boolean>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      trace += chunk.toString();
      // nsenter execs the hook: the child is the hook itself.
      if (/trace: create macvlan mv1 /.test(trace) && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) => resolve(signal === 'SIGKILL'));
  });
  t.ok(killed, 'the hook was killed mid-way', { trace });
  t.ok(requests(trace, RTM.NEWLINK).length > 0, 'after it had changed things');
  t.same(stateEntries(rig.stateDir).length, 1, 'its journal is left for gc');

  const gc = traced(rig, 'gc', {});
  t.equal(gc.status, 0, 'gc exits 0', { stderr: gc.stderr });
  t.match(gc.stdout, `${id}: restored (hook died while attaching)`);
  t.ok(requests(gc.stderr, RTM.DELLINK).length <= TEARDOWN_DELETES, 'at most one RTM_DELLINK per created device, the veths together');
  checkRestored(t, rig, before, 'after gc');
});

t.test('status: a created macvlan the container deleted is missing, not "restored" as a host macvlan on its master', async (t) => {
  const rig = makeRig(t);
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, master, uniqueName('mpeer'));
  // The host's own macvlan on the same master: it must never pass for the container's.
  shOk('ip', ['-n', rig.simhost, 'link', 'add', uniqueName('hmv'), 'link', master, 'type', 'macvlan', 'mode', 'bridge']);
  const before = nsSnapshot(rig.simhost);
  const id = uniqueId('gone');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { mv1: { type: 'macvlan', master, name: 'eth3' } } });
  t.equal(traced(rig, 'create-runtime', ociState(id, bundle, 'creating')).status, 0, 'attached');
  shOk('ip', ['-n', rig.ctr, 'link', 'del', 'eth3']);
  const st = cli(rig, ['status', '--json']);
  t.equal(st.status, 0, 'status exits 0', { stderr: st.stderr });
  const entries = JSON.parse(st.stdout) as { devices: { key: string; state: string }[] }[];
  t.same(entries[0].devices.map((d) => [d.key, d.state]), [['mv1', 'missing']], 'missing');
  t.equal(traced(rig, 'poststop', ociState(id, bundle, 'stopped')).status, 0, 'poststop exits 0');
  t.same(nsSnapshot(rig.simhost), before, 'the host, its own macvlan included, is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test('status lists the container (bundle, pid, age) and host name <-> container name, kind, state, MAC and MTU', async (t) => {
  const rig = makeRig(t);
  const m = mixedHost(rig);
  const before = nsSnapshot(rig.simhost);
  const id = uniqueId('status');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: m.netDevices });
  t.equal(traced(rig, 'create-runtime', ociState(id, bundle, 'creating')).status, 0, 'attached');
  const inside = ipDetails(rig.ctr);

  const json = cli(rig, ['status', '--json']);
  t.equal(json.status, 0, 'status --json exits 0', { stderr: json.stderr });
  const entries = JSON.parse(json.stdout) as { containerId: string; phase: string; devices: Record<string, unknown>[] }[];
  t.equal(entries.length, 1, 'one container');
  t.match(entries[0], { containerId: id, bundle, phase: 'attached', pinned: true, pid: null, alive: false });
  t.same(entries[0].devices, [
    { key: m.nic1, containerName: 'eth1', kind: 'moved', state: 'in', mac: '02:01:00:00:00:01', mtu: 1400 },
    { key: m.vh1, containerName: 'eth2', kind: 'veth', state: 'in', mac: '02:02:00:00:00:02', mtu: 1450 },
    { key: 'mv1', containerName: 'eth3', kind: 'macvlan', master: m.master, state: 'in', mac: '02:03:00:00:00:03', mtu: 1300 },
    { key: m.nic2, containerName: 'net0', kind: 'moved', state: 'in', mac: inside.net0?.address, mtu: 1500 },
    { key: m.vh2, containerName: 'eth4', kind: 'veth', state: 'in', mac: inside.eth4?.address, mtu: 1500 },
    { key: 'mv2', containerName: 'eth5', kind: 'macvlan', master: m.master, state: 'in', mac: inside.eth5?.address, mtu: 1500 },
  ], 'every device with its live MAC and MTU');

  const text = cli(rig, ['status']);
  t.equal(text.status, 0, 'status exits 0');
  const lines = text.stdout.split('\n');
  t.match(lines[0], new RegExp(`^${id} \\(attached; no pid; \\d+s old; bundle ${bundle}\\)$`), 'phase, process, age and bundle');
  t.match(lines[1], /^ {2}HOST +CONTAINER +KIND +STATE +MAC +MTU$/, 'a header');
  const row = (host: string, ctr: string, kind: string, mac: string, mtu: number) =>
    new RegExp(`^  ${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +<-> +${ctr} +${kind} +in +${mac} +${mtu}$`, 'm');
  t.match(text.stdout, row(m.nic1, 'eth1', 'moved', '02:01:00:00:00:01', 1400));
  t.match(text.stdout, row(m.vh1, 'eth2', 'veth', '02:02:00:00:00:02', 1450));
  t.match(text.stdout, row(`mv1 on ${m.master}`, 'eth3', 'macvlan', '02:03:00:00:00:03', 1300));
  t.match(text.stdout, row(m.nic2, 'net0', 'moved', inside.net0?.address ?? '?', 1500));

  t.equal(traced(rig, 'poststop', ociState(id, bundle, 'stopped')).status, 0, 'detached');
  t.equal(cli(rig, ['status']).stdout, 'no containers hold devices\n', 'status is empty afterwards');
  checkRestored(t, rig, before, 'after poststop');
});

t.test('the annotation: merged with linux.netDevices by the hook; a key in both or bad JSON changes nothing', async (t) => {
  const rig = makeRig(t);
  const m = mixedHost(rig);
  const before = nsSnapshot(rig.simhost);
  const fromConfig = { [m.nic1]: m.netDevices[m.nic1] };
  const fromAnnotation = { [m.vh1]: m.netDevices[m.vh1], mv1: m.netDevices.mv1 };
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: fromConfig });
  const id = uniqueId('ann');
  const annotations = { [ANNOTATION]: JSON.stringify(fromAnnotation) };
  const env = { OCI_NETDEV_POLICY: annotationPolicy(rig.sb) };
  const refused = traced(rig, 'create-runtime', ociState(id, bundle, 'creating', { annotations }));
  t.not(refused.status, 0, 'without a policy the annotation is refused');
  t.match(userStderr(refused.stderr), new RegExp(`^oci-netdev: device ${m.vh1}: .*annotation oci-netdev.netDevices.*default policy`));
  t.same(nsSnapshot(rig.simhost), before, 'and nothing changed');

  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating', { annotations }), env);
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.same(nonLoopback(rig.ctr), ['eth1', 'eth2', 'eth3'], 'devices from both sources');
  t.equal(ipDetails(rig.ctr).eth3?.address, '02:03:00:00:00:03', 'the annotation entry got its MAC');
  const r2 = traced(rig, 'poststop', ociState(id, bundle, 'stopped', { annotations }));
  t.equal(r2.status, 0, 'poststop exits 0');
  t.equal(requests(r2.stderr, RTM.DELLINK).length, 2, 'one RTM_DELLINK for the veth, one for the macvlan');
  checkRestored(t, rig, before, 'after poststop');

  const bad = (ann: string, message: string | RegExp) => {
    const res = traced(rig, 'create-runtime', ociState(uniqueId('ann'), bundle, 'creating', { annotations: { [ANNOTATION]: ann } }), env);
    t.not(res.status, 0, 'createRuntime fails');
    t.match(userStderr(res.stderr), message);
    t.same([RTM.NEWLINK, RTM.DELLINK, RTM.NEWADDR].map((ty) => requests(res.stderr, ty).length), [0, 0, 0], 'no change was requested');
    t.same(nsSnapshot(rig.simhost), before, 'host unchanged');
    t.same(stateEntries(rig.stateDir), [], 'no state');
  };
  bad(JSON.stringify({ [m.nic1]: {} }), `oci-netdev: device ${m.nic1}: key: given in both linux.netDevices and annotation oci-netdev.netDevices`);
  bad('{"x": {', /^oci-netdev: annotation oci-netdev.netDevices: invalid JSON: /);
  bad(JSON.stringify({ mv9: { type: 'macvlan', master: m.master, mode: 'bridged' } }), /^oci-netdev: device mv9: mode: must be one of bridge, private, vepa, passthru/);
});

t.test('validate CONFIG checks the annotation too', async (t) => {
  const rig = makeRig(t);
  const bundle = configBundle(rig.sb, rig.ctr, {
    netDevices: { eth1: {} },
    annotations: { [ANNOTATION]: JSON.stringify({ vh0: { type: 'veth', mtu: 70000 } }) },
  });
  const r = spawnSync(OCI_NETDEV, ['validate', `${bundle}/config.json`], { encoding: 'utf8' });
  t.equal(r.status, 1, 'exits 1');
  t.equal(r.stderr, 'oci-netdev: device vh0: mtu: must be an integer from 68 to 65535 (got 70000)\n');
});
