// Hostile input and least privilege, end to end: the device policy and its defaults, the devices
// no policy can release, container ids and state paths an attacker might shape, the size limits,
// and the time bounds. Hooks run under nsenter in a throwaway netns with veth stand-in NICs.
import t, { Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { OCI_NETDEV, runHook } from '../helpers/hook';
import { uniqueName } from '../helpers/names';
import { inSimHost, netnsPath, nsSnapshot, Sandbox, sh, ShResult, shOk } from '../helpers/sandbox';
import { Rig, configBundle, ipDetails, makeRig, nonLoopback, ociState, stateEntries } from '../helpers/netdevices';
import { Journal, StateDir, encodeId } from '../../src/state/statedir';
import { NetlinkSocket } from '../../src/netlink/client';
import { NetlinkError, StateError } from '../../src/errors';
import { DEFAULT_POLICY_FILE } from '../../src/config/policy';
import { MAX_ANNOTATION_BYTES, MAX_CONFIG_BYTES, MAX_DEVICES, MAX_STATE_BYTES } from '../../src/config';
import { ok, refused } from '../helpers/assert';

/** A stand-in NIC in the simulated host; returns its name. */
function nic(rig: Rig, role = 'nic'): string {
  const name = uniqueName(role);
  rig.sb.createVethPair(rig.simhost, name, uniqueName('peer'));
  return name;
}

/** A root-owned 0644 policy file. */
function policy(rig: Rig, doc: object): string {
  const file = join(rig.sb.tempDir('policy'), 'policy.json');
  fs.writeFileSync(file, JSON.stringify(doc), { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  return file;
}

function hook(rig: Rig, command: string, state: object, opts: { env?: Record<string, string>; stateDir?: string; args?: string[] } = {}): ShResult {
  const stateDir = opts.stateDir ?? rig.stateDir;
  if (!opts.args) return runHook(rig.simhost, command, state, { stateDir, env: opts.env });
  return sh(...inSimHost(rig.simhost, [OCI_NETDEV, ...opts.args, command, '--state-dir', stateDir]), { input: JSON.stringify(state), env: opts.env });
}

/** Runs create-runtime, checks the refusal, and that nothing changed anywhere. */
function refusedUnchanged(t: Test, rig: Rig, state: object, message: RegExp | string, what: string, opts: Parameters<typeof hook>[3] = {}): void {
  const before = nsSnapshot(rig.simhost);
  refused(t, hook(rig, 'create-runtime', state, opts), message, what);
  t.same(nsSnapshot(rig.simhost), before, `${what}: the host is unchanged`);
  t.same(nonLoopback(rig.ctr), [], `${what}: nothing in the container`);
  t.same(stateEntries(opts.stateDir ?? rig.stateDir), [], `${what}: no state left`);
}

/** The one line of an always-refused rule, as the hook prints it. */
function alwaysRefusedLine(device: string, rule: string, policyFile: string, reason: string, subject = `host device ${device}`): string {
  return `oci-netdev: device ${device}: ${subject} is refused by always-refused: ${rule}, whatever policy ${policyFile} says: ${reason}`;
}

let ids = 0;
const cid = (role: string) => `ondt-sec-${role}-${++ids}`;

// ---------------------------------------------------------------------------------------------
// The policy.

const ownPolicy = fs.existsSync(DEFAULT_POLICY_FILE) && `${DEFAULT_POLICY_FILE} exists on this machine`;
t.test('without a policy file the annotation may use no device, config.json any', { skip: ownPolicy }, async (t) => {
  const rig = makeRig(t);
  const a = nic(rig);
  const b = nic(rig);
  const bundle = configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [a]: {} }) } });
  refusedUnchanged(t, rig, ociState(cid('ann'), bundle, 'creating'),
    `oci-netdev: device ${a}: host device ${a} is refused for annotation oci-netdev.netDevices by the default policy ` +
      `(${DEFAULT_POLICY_FILE} does not exist): it matches no pattern of annotation.allowDevices, which allows no device by default`,
    'annotation without a policy');

  const fromState = configBundle(rig.sb, rig.ctr, {});
  refusedUnchanged(t, rig, ociState(cid('ann'), fromState, 'creating', { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [a]: {} }) } }),
    /^oci-netdev: device \S+: host device \S+ is refused for annotation oci-netdev.netDevices by the default policy/,
    'the annotation from the state, too');

  const macvlan = configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ m0: { type: 'macvlan', master: b } }) } });
  refusedUnchanged(t, rig, ociState(cid('ann'), macvlan, 'creating'), /^oci-netdev: device m0: macvlan master \S+ is refused .*annotation\.allowMasters/,
    'a macvlan from the annotation');

  const id = cid('cfg');
  const plain = configBundle(rig.sb, rig.ctr, { netDevices: { [b]: { name: 'eth1' } } });
  ok(t, hook(rig, 'create-runtime', ociState(id, plain, 'creating')), 'config.json without a policy, as before policies existed');
  t.same(nonLoopback(rig.ctr), ['eth1']);
  ok(t, hook(rig, 'poststop', ociState(id, plain, 'stopped')), 'poststop');
  t.ok(nsSnapshot(rig.simhost)[b], 'back on the host');
});

t.test('a policy file lets the annotation use what it lists, by --policy or OCI_NETDEV_POLICY', async (t) => {
  const rig = makeRig(t);
  const a = nic(rig, 'pod');
  const other = nic(rig, 'nic');
  const file = policy(rig, { annotation: { allowDevices: [`${a.slice(0, -1)}?`], maxDevices: 1 } });
  const annotated = (devices: object) => configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify(devices) } });
  const before = nsSnapshot(rig.simhost);

  const ways: [string, Parameters<typeof hook>[3]][] = [['--policy', { args: ['--policy', file] }], ['OCI_NETDEV_POLICY', { env: { OCI_NETDEV_POLICY: file } }]];
  for (const [how, opts] of ways) {
    const id = cid('pol');
    const bundle = annotated({ [a]: { name: 'net0' } });
    ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating'), opts), `allowed by ${how}`);
    t.same(nonLoopback(rig.ctr), ['net0'], `${how}: moved`);
    ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped'), opts), `${how}: poststop`);
    t.same(nsSnapshot(rig.simhost), before, `${how}: host as before`);
  }

  refusedUnchanged(t, rig, ociState(cid('pol'), annotated({ [other]: {} }), 'creating'),
    `oci-netdev: device ${other}: host device ${other} is refused for annotation oci-netdev.netDevices by policy ${file}: ` +
      `it matches no pattern of annotation.allowDevices ${JSON.stringify([`${a.slice(0, -1)}?`])}`,
    'a device the policy does not list', { args: ['--policy', file] });

  refusedUnchanged(t, rig, ociState(cid('pol'), annotated({ [a]: {}, [`${a.slice(0, -1)}x`]: { type: 'veth', name: 'c1' } }), 'creating'),
    new RegExp(`^oci-netdev: device \\S+: annotation oci-netdev.netDevices asks for 2 devices, more than annotation.maxDevices \\(1\\) of policy ${file} allows$`),
    'more devices than maxDevices', { args: ['--policy', file] });

  const missing = join(rig.sb.tempDir('nopolicy'), 'policy.json');
  refusedUnchanged(t, rig, ociState(cid('pol'), annotated({ [a]: {} }), 'creating'), `oci-netdev: policy ${missing}: does not exist`,
    'a named policy file that does not exist', { env: { OCI_NETDEV_POLICY: missing } });

  const loose = policy(rig, { annotation: { allowDevices: ['*'] } });
  fs.chmodSync(loose, 0o666);
  refusedUnchanged(t, rig, ociState(cid('pol'), annotated({ [a]: {} }), 'creating'),
    `oci-netdev: policy ${loose}: is writable by group or others (mode 0666); only its owner may write it`,
    'a policy anyone may write', { args: ['--policy', loose] });

  const r = sh(OCI_NETDEV, ['--policy', 'relative.json', 'hooks-d']);
  t.equal(r.status, 2, 'a relative --policy is a usage error');
  t.match(r.stderr, /policy file must be an absolute path/);
});

t.test('a policy restricts config.json too', async (t) => {
  const rig = makeRig(t);
  const a = nic(rig);
  const b = nic(rig);
  const file = policy(rig, { config: { allowDevices: [a], maxDevices: 1 } });
  refusedUnchanged(t, rig, ociState(cid('cfg'), configBundle(rig.sb, rig.ctr, { netDevices: { [b]: {} } }), 'creating'),
    `oci-netdev: device ${b}: host device ${b} is refused for linux.netDevices by policy ${file}: it matches no pattern of config.allowDevices ${JSON.stringify([a])}`,
    'config.allowDevices', { args: ['--policy', file] });
  refusedUnchanged(t, rig, ociState(cid('cfg'), configBundle(rig.sb, rig.ctr, { netDevices: { [a]: {}, v0: { type: 'veth', name: 'x' } } }), 'creating'),
    /^oci-netdev: device v0: veth host end v0 is refused for linux.netDevices/, 'a veth host end is a host device name', { args: ['--policy', file] });
});

t.test('validate, inject and hooks-d honour and pass on --policy', async (t) => {
  const rig = makeRig(t);
  const file = policy(rig, { annotation: { allowDevices: ['ok*'] } });
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { eth9: {} }, annotations: { 'oci-netdev.netDevices': JSON.stringify({ ok1: {} }) } });
  const config = join(bundle, 'config.json');
  const v = sh(OCI_NETDEV, ['--policy', file, 'validate', config]);
  t.equal(v.status, 0, 'validate with a policy that allows the annotation', { stderr: v.stderr });
  t.match(v.stdout, /ok, 2 device\(s\)/);
  const strict = policy(rig, {});
  const v2 = sh(OCI_NETDEV, ['validate', config], { env: { OCI_NETDEV_POLICY: strict } });
  t.equal(v2.status, 1, 'validate refuses what the policy refuses');
  t.match(v2.stderr, /device ok1: host device ok1 is refused for annotation oci-netdev.netDevices by policy/);

  const hooksD = JSON.parse(shOk(OCI_NETDEV, ['--state-dir', rig.stateDir, '--policy', file, 'hooks-d']));
  t.same(hooksD.hook.args, ['oci-netdev', '--state-dir', rig.stateDir, '--policy', file, 'hook'], 'hooks-d passes --policy on');
  const fromEnv = JSON.parse(shOk(OCI_NETDEV, ['hooks-d'], { env: { OCI_NETDEV_POLICY: file } }));
  t.same(fromEnv.hook.args, ['oci-netdev', '--policy', file, 'hook'], 'and OCI_NETDEV_POLICY as --policy');
  // A link planted at inject's temp name is replaced, not written through.
  const victim = join(rig.sb.tempDir('victim'), 'victim');
  fs.writeFileSync(victim, 'precious');
  fs.symlinkSync(victim, `${config}.oci-netdev.tmp`);
  shOk(OCI_NETDEV, ['--policy', file, 'inject', bundle]);
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious', 'inject does not write through a planted link');
  t.notOk(fs.existsSync(`${config}.oci-netdev.tmp`), 'and leaves no temp file');
  const injected = JSON.parse(fs.readFileSync(config, 'utf8'));
  t.same(injected.hooks.createRuntime[0].args, ['oci-netdev', '--policy', file, 'create-runtime'], 'inject passes --policy on');
  t.same(injected.hooks.poststop[0].args, ['oci-netdev', '--policy', file, 'poststop']);
});

// ---------------------------------------------------------------------------------------------
// What no policy releases.

t.test('always refused, even with a policy that allows everything', async (t) => {
  const rig = makeRig(t);
  const all = policy(rig, { config: { allowDevices: ['*'] }, annotation: { allowDevices: ['*'], allowMasters: ['*'] } });
  const opts = { args: ['--policy', all] };
  const attempt = (devices: object, message: RegExp | string, what: string) =>
    refusedUnchanged(t, rig, ociState(cid('always'), configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify(devices) } }), 'creating'),
      message, what, opts);

  attempt({ lo: { name: 'lo2' } }, alwaysRefusedLine('lo', 'loopback', all, 'it is the loopback device'), 'loopback');

  const v4 = nic(rig, 'up4');
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.1/24', 'dev', v4]);
  shOk('ip', ['-n', rig.simhost, 'route', 'add', 'default', 'via', '192.0.2.254', 'dev', v4]);
  attempt({ [v4]: {} }, alwaysRefusedLine(v4, 'default-route', all, 'it carries a default route (IPv4) in the host network namespace'), 'IPv4 default route');

  const v6 = nic(rig, 'up6');
  shOk('ip', ['-n', rig.simhost, '-6', 'addr', 'add', '2001:db8:1::1/64', 'dev', v6, 'nodad']);
  shOk('ip', ['-n', rig.simhost, '-6', 'route', 'add', 'default', 'via', '2001:db8:1::fe', 'dev', v6]);
  attempt({ [v6]: {} }, new RegExp(`^oci-netdev: device ${v6}: host device ${v6} is refused by always-refused: default-route, .*: it carries a default route \\(IPv6\\)`), 'IPv6 default route');

  // A second IPv4 default (higher metric) through two ECMP nexthops, and one through a nexthop
  // group that the kernel shows only by id (nexthop_compat_mode=0).
  const [m1, m2, g1] = [nic(rig, 'mp'), nic(rig, 'mp'), nic(rig, 'nh')];
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '198.51.100.1/24', 'dev', m1]);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '198.51.101.1/24', 'dev', m2]);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '203.0.113.1/24', 'dev', g1]);
  shOk('ip', ['-n', rig.simhost, 'route', 'add', 'default', 'metric', '50', 'nexthop', 'via', '198.51.100.254', 'dev', m1, 'nexthop', 'via', '198.51.101.254', 'dev', m2]);
  shOk(...inSimHost(rig.simhost, ['sysctl', '-q', '-w', 'net.ipv4.nexthop_compat_mode=0']));
  shOk('ip', ['-n', rig.simhost, 'nexthop', 'add', 'id', '71', 'via', '203.0.113.254', 'dev', g1]);
  shOk('ip', ['-n', rig.simhost, 'nexthop', 'add', 'id', '72', 'group', '71']);
  shOk('ip', ['-n', rig.simhost, 'route', 'add', 'default', 'nhid', '72', 'metric', '60']);
  t.match(shOk('ip', ['-n', rig.simhost, 'route', 'show']), /^default nhid 72 metric 60 *$/m, 'the nexthop route shows no device');
  attempt({ [m2]: {} }, new RegExp(`^oci-netdev: device ${m2}: .* always-refused: default-route, .*: it carries a default route \\(IPv4\\)`), 'a multipath nexthop');
  attempt({ [g1]: {} }, new RegExp(`^oci-netdev: device ${g1}: .* always-refused: default-route, .*: it carries a default route \\(IPv4\\)`), 'a nexthop group member');

  const br = uniqueName('br');
  const port = nic(rig, 'port');
  shOk('ip', ['-n', rig.simhost, 'link', 'add', br, 'type', 'bridge']);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', port, 'master', br]);
  attempt({ [port]: {} }, alwaysRefusedLine(port, 'port', all, `it is a bridge port of ${br}`), 'bridge port');

  // A route to a prefix is no default route: such a device moves.
  const free = nic(rig, 'free');
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '10.9.0.1/24', 'dev', free]);
  shOk('ip', ['-n', rig.simhost, 'route', 'add', '10.10.0.0/16', 'via', '10.9.0.254', 'dev', free]);
  shOk('ip', ['-n', rig.simhost, 'route', 'add', 'default', 'via', '10.9.0.254', 'dev', free, 'table', '100']);
  const id = cid('free');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [free]: {} } });
  ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating'), opts), 'a device with prefix routes and a default in another table moves');
  ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped'), opts), 'poststop');
});

t.test('always refused: what the host stands on, what the kernel cannot move, passthru on a master the host uses', async (t) => {
  const rig = makeRig(t);
  // config.json may use every device, master and mode.
  const all = policy(rig, { config: { allowDevices: ['*'], allowMasters: ['*'] } });
  const opts = { args: ['--policy', all] };
  const bundleOf = (devices: Record<string, object>) => configBundle(rig.sb, rig.ctr, { netDevices: devices });
  const attempt = (devices: Record<string, object>, message: RegExp | string, what: string) =>
    refusedUnchanged(t, rig, ociState(cid('always'), bundleOf(devices), 'creating'), message, what, opts);
  const ip = (...args: string[]) => shOk('ip', ['-n', rig.simhost, ...args]);

  // The host's default route goes out of a macvlan on a stand-in NIC: the NIC, and its veth peer
  // behind it, carry the host's traffic.
  const low = uniqueName('low');
  const lowPeer = uniqueName('peer');
  rig.sb.createVethPair(rig.simhost, low, lowPeer);
  const mvUp = uniqueName('mvup');
  ip('link', 'add', mvUp, 'link', low, 'type', 'macvlan', 'mode', 'bridge');
  ip('link', 'set', mvUp, 'up');
  ip('addr', 'add', '192.0.2.1/24', 'dev', mvUp);
  ip('route', 'add', 'default', 'via', '192.0.2.254', 'dev', mvUp, 'metric', '10');
  const viaMacvlan = `macvlan ${mvUp}, which carries a default route (IPv4) in the host network namespace`;
  attempt({ [low]: {} }, alwaysRefusedLine(low, 'default-route-lower', all, `it is the lower device of ${viaMacvlan}`), 'the lower device of the default-route macvlan');
  attempt({ [lowPeer]: {} }, alwaysRefusedLine(lowPeer, 'default-route-lower', all, `it is the veth peer of ${low}, which is the lower device of ${viaMacvlan}`),
    'transitively: the veth peer of that lower device');

  // A NIC with a macvlan on it that the host uses for nothing in particular.
  const upper = nic(rig, 'upr');
  const mvPlain = uniqueName('mvpl');
  ip('link', 'add', mvPlain, 'link', upper, 'type', 'macvlan', 'mode', 'bridge');
  attempt({ [upper]: {} }, alwaysRefusedLine(upper, 'upper-devices', all, `it has upper devices in the host network namespace: macvlan ${mvPlain}`),
    'a device with a macvlan upper on the host');

  // A bridge, up, with an address and a route: refused before it is touched, so it stays up and keeps its routes.
  const br = uniqueName('br');
  ip('link', 'add', br, 'type', 'bridge');
  ip('link', 'set', br, 'up');
  ip('addr', 'add', '10.99.0.1/24', 'dev', br);
  ip('route', 'add', '10.98.0.0/16', 'via', '10.99.0.254', 'dev', br);
  const routes = ip('route', 'show', 'dev', br);
  t.match(routes, /^10\.98\.0\.0\/16 via 10\.99\.0\.254/m, 'the bridge carries a route');
  attempt({ [br]: {} },
    new RegExp(`^oci-netdev: device ${br}: host device ${br} is refused by always-refused: netns-immutable, whatever policy ${all} says: ` +
      '(the kernel keeps it in its network namespace \\(netns-immutable\\)|it is a bridge, which the kernel keeps in its network namespace)$'),
    'a bridge');
  t.equal(ip('route', 'show', 'dev', br), routes, 'the bridge keeps its routes');

  // passthru hands the whole master to the container: not a master the host uses.
  const passthru = (master: string, reason: string, what: string) =>
    refusedUnchanged(t, rig, ociState(cid('pt'), bundleOf({ mvp: { type: 'macvlan', master, mode: 'passthru' } }), 'creating'),
      alwaysRefusedLine('mvp', 'passthru-host-master', all, `${master} ${reason}`, `macvlan mode passthru on master ${master}`), what, opts);
  const routed = nic(rig, 'rtd');
  ip('addr', 'add', '198.51.100.1/24', 'dev', routed);
  ip('route', 'add', 'default', 'via', '198.51.100.254', 'dev', routed, 'metric', '20');
  passthru(routed, 'carries a default route (IPv4) in the host network namespace', 'passthru on a master with a default route');
  const addressed = nic(rig, 'adr');
  ip('addr', 'add', '203.0.113.7/24', 'dev', addressed);
  passthru(addressed, 'has addresses in the host network namespace (203.0.113.7/24)', 'passthru on a master with an address');
  passthru(low, `is the lower device of ${viaMacvlan}`, 'passthru on the lower device of the default-route macvlan');

  // passthru on a master the host does not use is the policy's to allow.
  const spare = nic(rig, 'spr');
  const id = cid('pt');
  const bundle = bundleOf({ mvp: { type: 'macvlan', master: spare, mode: 'passthru', name: 'eth1' } });
  const before = nsSnapshot(rig.simhost);
  ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating'), opts), 'passthru on an unused master');
  t.equal(ipDetails(rig.ctr).eth1?.linkinfo?.info_data?.mode, 'passthru');
  ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped'), opts), 'poststop');
  t.same(nsSnapshot(rig.simhost), before, 'host as before');
});

t.test('always refused: the master of another container\'s macvlan', async (t) => {
  const rig = makeRig(t);
  const ctr2 = rig.sb.createNetns('ctr');
  const master = nic(rig, 'mst');
  const first = cid('mvowner');
  // config.json may use every device and mode: the policy's defaults, from a file of its own.
  const defaults = policy(rig, {});
  const opts = { args: ['--policy', defaults] };
  const b1 = configBundle(rig.sb, rig.ctr, { netDevices: { mv0: { type: 'macvlan', master, name: 'eth1' } } });
  ok(t, hook(rig, 'create-runtime', ociState(first, b1, 'creating'), opts), 'the first container makes a macvlan on it');
  const before = nsSnapshot(rig.simhost);
  const b2 = configBundle(rig.sb, ctr2, { netDevices: { [master]: {} } });
  refused(t, hook(rig, 'create-runtime', ociState(cid('mvthief'), b2, 'creating'), opts),
    alwaysRefusedLine(master, 'macvlan-master', defaults, `it is the master of a macvlan of container ${first}`),
    'a second container asking for the master');
  t.same(nsSnapshot(rig.simhost), before, 'the host is unchanged');
  t.same(nonLoopback(ctr2), [], 'nothing in the second container');
  t.same(stateEntries(rig.stateDir), [encodeId(first)], 'only the first container has state');
  t.same(nonLoopback(rig.ctr), ['eth1'], 'the first container keeps its macvlan');
  ok(t, hook(rig, 'poststop', ociState(first, b1, 'stopped'), opts), 'poststop of the first');
  const b3 = configBundle(rig.sb, ctr2, { netDevices: { [master]: {} } });
  const next = cid('mvnext');
  ok(t, hook(rig, 'create-runtime', ociState(next, b3, 'creating'), opts), 'once that macvlan is gone, the master may move');
  ok(t, hook(rig, 'poststop', ociState(next, b3, 'stopped'), opts), 'poststop');
});

t.test('allowModes: the annotation may use macvlan mode bridge only unless the policy says more', async (t) => {
  const rig = makeRig(t);
  const master = nic(rig, 'mst');
  const annotated = (devices: object) => configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify(devices) } });
  const masters = policy(rig, { annotation: { allowMasters: [master] } });
  for (const mode of ['private', 'vepa', 'passthru']) {
    refusedUnchanged(t, rig, ociState(cid('mode'), annotated({ mv0: { type: 'macvlan', master, mode } }), 'creating'),
      `oci-netdev: device mv0: macvlan mode ${mode} is refused for annotation oci-netdev.netDevices by policy ${masters}: ` +
        'it matches no pattern of annotation.allowModes, which allows only bridge by default',
      `mode ${mode} by default`, { args: ['--policy', masters] });
  }
  const before = nsSnapshot(rig.simhost);
  const run = (file: string, mode: string) => {
    const id = cid('mode');
    const bundle = annotated({ mv0: { type: 'macvlan', master, mode, name: 'eth1' } });
    ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating'), { args: ['--policy', file] }), `mode ${mode} allowed`);
    t.equal(ipDetails(rig.ctr).eth1?.linkinfo?.info_data?.mode, mode, `a ${mode} macvlan in the container`);
    ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped'), { args: ['--policy', file] }), 'poststop');
    t.same(nsSnapshot(rig.simhost), before, 'host as before');
  };
  run(masters, 'bridge');
  const vepa = policy(rig, { annotation: { allowMasters: [master], allowModes: ['bridge', 'vepa'] } });
  run(vepa, 'vepa');
  refusedUnchanged(t, rig, ociState(cid('mode'), annotated({ mv0: { type: 'macvlan', master, mode: 'private' } }), 'creating'),
    `oci-netdev: device mv0: macvlan mode private is refused for annotation oci-netdev.netDevices by policy ${vepa}: ` +
      'it matches no pattern of annotation.allowModes ["bridge","vepa"]',
    'a mode the policy does not list', { args: ['--policy', vepa] });
  const strictConfig = policy(rig, { config: { allowModes: ['bridge'] } });
  refusedUnchanged(t, rig, ociState(cid('mode'), configBundle(rig.sb, rig.ctr, { netDevices: { mv0: { type: 'macvlan', master, mode: 'vepa' } } }), 'creating'),
    `oci-netdev: device mv0: macvlan mode vepa is refused for linux.netDevices by policy ${strictConfig}: it matches no pattern of config.allowModes ["bridge"]`,
    'config.allowModes restricts config.json', { args: ['--policy', strictConfig] });
});

t.test('a device another container holds is refused, naming that container', async (t) => {
  const rig = makeRig(t);
  const ctr2 = rig.sb.createNetns('ctr');
  const a = nic(rig);
  const first = cid('owner');
  const b1 = configBundle(rig.sb, rig.ctr, { netDevices: { [a]: {} } });
  ok(t, hook(rig, 'create-runtime', ociState(first, b1, 'creating')), 'the first container takes it');
  const b2 = configBundle(rig.sb, ctr2, { netDevices: { [a]: {} } });
  const r = hook(rig, 'create-runtime', ociState(cid('second'), b2, 'creating'));
  refused(t, r, `oci-netdev: device ${a} is held by container ${first}`, 'the second container');
  t.same(stateEntries(rig.stateDir), [encodeId(first)], 'only the owner has state');
  ok(t, hook(rig, 'poststop', ociState(first, b1, 'stopped')), 'poststop of the owner');
  t.ok(nsSnapshot(rig.simhost)[a], 'back on the host');
});

t.test("the annotation's host addresses under the README's example policy: refused, nothing changed on the host", async (t) => {
  const rig = makeRig(t);
  const key = uniqueName('pv');
  // The README's "pod-veth-*": the annotation may make veths whose host end matches.
  const file = policy(rig, { annotation: { allowDevices: [`${key.slice(0, -1)}*`] } });
  const opts = { args: ['--policy', file] };
  const annotated = (entry: object) => configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [key]: { type: 'veth', name: 'eth1', ...entry } }) } });
  // The host's gateway, half of IPv4, a third of IPv6, and the host's IPv6 gateway as a local address.
  for (const cidr of ['192.0.2.2/30', '128.0.0.1/1', '2000::1/3', '2001:db8:7::1/128']) {
    refusedUnchanged(t, rig, ociState(cid('hostaddr'), annotated({ hostAddresses: [cidr] }), 'creating'),
      `oci-netdev: device ${key}: hostAddresses[0] ${cidr} is refused for annotation oci-netdev.netDevices by policy ${file}: ` +
        'it lies within no prefix of annotation.allowHostAddresses, which allows no host address by default',
      `hostAddresses ${cidr}`, opts);
  }
  const some = policy(rig, { annotation: { allowDevices: [`${key.slice(0, -1)}*`], allowHostAddresses: ['10.98.0.0/16'] } });
  refusedUnchanged(t, rig, ociState(cid('hostaddr'), annotated({ hostAddresses: ['10.98.0.1/30', '10.98.0.5/8'] }), 'creating'),
    `oci-netdev: device ${key}: hostAddresses[1] 10.98.0.5/8 is refused for annotation oci-netdev.netDevices by policy ${some}: ` +
      'it lies within no prefix of annotation.allowHostAddresses ["10.98.0.0/16"]',
    'a prefix wider than the policy allows', { args: ['--policy', some] });
  const before = nsSnapshot(rig.simhost);
  const id = cid('hostaddr');
  const bundle = annotated({ hostAddresses: ['10.98.0.1/30'] });
  ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating'), { args: ['--policy', some] }), 'an address within the allowed prefix');
  t.match(nsSnapshot(rig.simhost)[key]?.addresses, [{ local: '10.98.0.1', prefixlen: 30 }], 'on the host end');
  ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped'), { args: ['--policy', some] }), 'poststop');
  t.same(nsSnapshot(rig.simhost), before, 'host as before');
});

t.test('an address or MAC in use on the host or held by another container: refused for the annotation, naming who uses it', async (t) => {
  const rig = makeRig(t);
  const ctr2 = rig.sb.createNetns('ctr');
  const a = nic(rig);
  const nicMac = ipDetails(rig.simhost)[a].address;
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.77/24', 'dev', a]);
  const key = uniqueName('pv');
  const file = policy(rig, { annotation: { allowDevices: [`${key.slice(0, -1)}*`] } });
  const opts = { args: ['--policy', file] };
  // Another container holds a veth with an address and a MAC of its choosing.
  const owner = cid('owner');
  const ownerBundle = configBundle(rig.sb, ctr2, { netDevices: { [uniqueName('vo')]: { type: 'veth', name: 'eth1', mac: '02:00:5e:10:00:01', addresses: ['10.97.0.2/24'] } } });
  ok(t, hook(rig, 'create-runtime', ociState(owner, ownerBundle, 'creating'), opts), 'the other container attaches');
  const annotated = (entry: object) => configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [key]: { type: 'veth', name: 'eth1', ...entry } }) } });
  const line = (subject: string, holder: string) => `oci-netdev: device ${key}: ${subject} is refused for annotation oci-netdev.netDevices by policy ${file}: ` +
    `it is in use by ${holder}, and annotation.allowAddressesInUse is false by default`;
  const cases: [string, object, string][] = [
    ['the MAC of a host NIC', { mac: nicMac }, line(`mac ${nicMac}`, `host device ${a}`)],
    ['the MAC of a host NIC on the host end', { hostMac: nicMac }, line(`hostMac ${nicMac}`, `host device ${a}`)],
    ['an address of the host', { addresses: ['192.0.2.77/24'] }, line('addresses[0] 192.0.2.77', `host device ${a}`)],
    ["another container's address", { addresses: ['10.97.0.2/24'] }, line('addresses[0] 10.97.0.2', `container ${owner}`)],
    ["another container's MAC", { mac: '02:00:5E:10:00:01' }, line('mac 02:00:5e:10:00:01', `container ${owner}`)],
  ];
  for (const [what, entry, message] of cases) {
    const before = nsSnapshot(rig.simhost);
    refused(t, hook(rig, 'create-runtime', ociState(cid('taker'), annotated(entry), 'creating'), opts), message, what);
    t.same(nsSnapshot(rig.simhost), before, `${what}: the host is unchanged`);
    t.same(nonLoopback(rig.ctr), [], `${what}: nothing in the container`);
    t.same(stateEntries(rig.stateDir), [encodeId(owner)], `${what}: only the other container has state`);
  }
  ok(t, hook(rig, 'poststop', ociState(owner, ownerBundle, 'stopped'), opts), 'poststop of the other container');
});

t.test("host addresses in use are judged by prefix: the annotation cannot take another container's /31, nor a host device's subnet", async (t) => {
  const rig = makeRig(t);
  const ctr2 = rig.sb.createNetns('ctr');
  const a = nic(rig);
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '192.0.2.77/24', 'dev', a]);
  const file = policy(rig, { annotation: { allowDevices: ['ont*'], allowHostAddresses: ['10.200.0.0/16', '192.0.2.0/24'] } });
  const opts = { args: ['--policy', file] };
  const annotated = (ctr: string, key: string, hostAddresses: string[]) =>
    configBundle(rig.sb, ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [key]: { type: 'veth', name: 'eth1', hostAddresses } }) } });
  const owner = cid('owner');
  const ownerKey = uniqueName('pa');
  const ownerBundle = annotated(ctr2, ownerKey, ['10.200.0.2/31']);
  ok(t, hook(rig, 'create-runtime', ociState(owner, ownerBundle, 'creating'), opts), 'the other container takes 10.200.0.2/31 on its host end');
  const key = uniqueName('pb');
  const line = (subject: string, why: string) => `oci-netdev: device ${key}: hostAddresses[0] ${subject} is refused for annotation oci-netdev.netDevices by policy ${file}: ` +
    `${why}, and annotation.allowAddressesInUse is false by default`;
  const cases: [string, string, string][] = [
    ['the other half of its /31 (its subnet route would move to this host end)', '10.200.0.3/31', line('10.200.0.3/31', `it overlaps 10.200.0.2/32, in use by container ${owner}`)],
    ['a prefix holding its address', '10.200.0.1/24', line('10.200.0.1/24', `it overlaps 10.200.0.2/32, in use by container ${owner}`)],
    ["an address within a host device's subnet", '192.0.2.200/32', line('192.0.2.200/32', `it overlaps 192.0.2.77/24, in use by host device ${a}`)],
    ['the same, IPv4-mapped', '::ffff:192.0.2.200/128', line('192.0.2.200/32', `it overlaps 192.0.2.77/24, in use by host device ${a}`)],
  ];
  for (const [what, cidr, message] of cases) {
    const before = nsSnapshot(rig.simhost);
    refused(t, hook(rig, 'create-runtime', ociState(cid('taker'), annotated(rig.ctr, key, [cidr]), 'creating'), opts), message, what);
    t.same(nsSnapshot(rig.simhost), before, `${what}: the host is unchanged`);
    t.same(nonLoopback(rig.ctr), [], `${what}: nothing in the container`);
    t.same(stateEntries(rig.stateDir), [encodeId(owner)], `${what}: only the other container has state`);
  }
  const id = cid('taker');
  const bundle = annotated(rig.ctr, key, ['10.200.0.4/31']);
  ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating'), opts), 'the next /31 is free');
  ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped'), opts), 'poststop');
  ok(t, hook(rig, 'poststop', ociState(owner, ownerBundle, 'stopped'), opts), 'poststop of the other container');
});

t.test("a MAC the kernel would have chosen for another container's created device is in use: refused for the annotation, naming that container", async (t) => {
  const rig = makeRig(t);
  const ctr2 = rig.sb.createNetns('ctr');
  const a = nic(rig);
  const file = policy(rig, { annotation: { allowDevices: ['ont*'], allowMasters: ['ont*'] } });
  const opts = { args: ['--policy', file] };
  const owner = cid('owner');
  const ownerBundle = configBundle(rig.sb, ctr2, { netDevices: { [uniqueName('vo')]: { type: 'veth', name: 'eth1' }, mv0: { type: 'macvlan', master: a, name: 'eth2' } } });
  ok(t, hook(rig, 'create-runtime', ociState(owner, ownerBundle, 'creating'), opts), 'the other container gets a veth and a macvlan, MACs not given');
  const macs = ipDetails(ctr2);
  const key = uniqueName('pv');
  for (const [what, mac] of [['its veth end', macs.eth1.address], ['its macvlan', macs.eth2.address]]) {
    const bundle = configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [key]: { type: 'veth', name: 'eth1', mac } }) } });
    const before = nsSnapshot(rig.simhost);
    refused(t, hook(rig, 'create-runtime', ociState(cid('taker'), bundle, 'creating'), opts),
      `oci-netdev: device ${key}: mac ${mac} is refused for annotation oci-netdev.netDevices by policy ${file}: it is in use by container ${owner}, and annotation.allowAddressesInUse is false by default`,
      `the MAC of ${what}`);
    t.same(nsSnapshot(rig.simhost), before, `the MAC of ${what}: the host is unchanged`);
    t.same(nonLoopback(rig.ctr), [], `the MAC of ${what}: nothing in the container`);
    t.same(stateEntries(rig.stateDir), [encodeId(owner)], `the MAC of ${what}: only the other container has state`);
  }
  ok(t, hook(rig, 'poststop', ociState(owner, ownerBundle, 'stopped'), opts), 'poststop of the other container');
});

// ---------------------------------------------------------------------------------------------
// Paths.

t.test('a container id is one encoded path component: ../../etc/x stays in the state dir', async (t) => {
  const rig = makeRig(t);
  const a = nic(rig);
  const id = '../../etc/x';
  const escaped = resolve(rig.stateDir, id);
  t.equal(encodeId(id), '%2e%2e%2f%2e%2e%2fetc%2fx');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [a]: {} } });
  const before = nsSnapshot(rig.simhost);
  ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating')), 'create-runtime');
  t.same(stateEntries(rig.stateDir), ['%2e%2e%2f%2e%2e%2fetc%2fx'], 'one folder, inside the state dir');
  t.notOk(fs.existsSync(escaped), `nothing at ${escaped}`);
  const status = JSON.parse(shOk(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', rig.stateDir, 'status', '--json'])));
  t.same(status.map((s: { containerId: string }) => s.containerId), [id], 'status decodes the id');
  ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped')), 'poststop');
  t.same(nsSnapshot(rig.simhost), before, 'restored');
  t.same(stateEntries(rig.stateDir), []);

  for (const [bad, message] of [
    ['', 'oci-netdev: container id must not be empty'],
    ['x'.repeat(65537), 'oci-netdev: container id is too long (65537 bytes, at most 65536)'],
  ]) {
    refusedUnchanged(t, rig, ociState(bad, bundle, 'creating'), message, `id ${JSON.stringify(bad.slice(0, 10))}`);
  }
  const store = new StateDir(rig.stateDir);
  for (const tricky of ['.', '..', '/', 'a/../../b', 'é\u0000\n', '%2e']) {
    const dir = store.containerDir(tricky);
    t.equal(resolve(dir, '..'), resolve(rig.stateDir), `${JSON.stringify(tricky)} is a child of the state dir`);
    t.notOk(dir.slice(rig.stateDir.length + 1).includes('/'), 'one component');
  }
  t.not(encodeId('%2e'), encodeId('.'), 'encoding is one-to-one');
});

t.test('a state dir that is a symlink, someone else\'s, or writable by others is refused', async (t) => {
  const rig = makeRig(t);
  const a = nic(rig);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [a]: {} } });
  const base = rig.sb.tempDir('paths');

  const target = join(base, 'real');
  fs.mkdirSync(target, { mode: 0o700 });
  const link = join(base, 'link');
  fs.symlinkSync(target, link);
  refusedUnchanged(t, rig, ociState(cid('p'), bundle, 'creating'), `oci-netdev: state dir ${link} is a symbolic link; refusing to use it`,
    'a symlinked state dir', { stateDir: link });
  t.same(fs.readdirSync(target), [], 'nothing written through the link');
  const gcRun = sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', link, 'gc']));
  t.equal(gcRun.status, 1, 'gc refuses it too');
  t.match(gcRun.stderr, /state dir \S+ is a symbolic link/);

  const foreign = join(base, 'foreign');
  fs.mkdirSync(foreign, { mode: 0o700 });
  fs.chownSync(foreign, 65534, 65534);
  refusedUnchanged(t, rig, ociState(cid('p'), bundle, 'creating'),
    `oci-netdev: state dir ${foreign} is owned by uid 65534, not by us (uid 0); refusing to use it`, 'a state dir of another user', { stateDir: foreign });

  const open = join(base, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  refusedUnchanged(t, rig, ociState(cid('p'), bundle, 'creating'),
    `oci-netdev: state dir ${open} is writable by group or others (mode 0777); refusing to use it`, 'a world-writable state dir', { stateDir: open });

  const fresh = join(base, 'fresh', 'state');
  const id = cid('p');
  ok(t, hook(rig, 'create-runtime', ociState(id, bundle, 'creating'), { stateDir: fresh }), 'a new state dir is created');
  const mode = (p: string) => fs.lstatSync(p).mode & 0o777;
  t.equal(mode(fresh), 0o700, 'state dir 0700');
  t.equal(fs.lstatSync(fresh).uid, 0, 'root-owned');
  const dir = join(fresh, encodeId(id));
  t.equal(mode(dir), 0o700, 'container folder 0700');
  t.equal(mode(join(dir, 'journal.json')), 0o600, 'journal 0600');
  t.equal(mode(join(dir, 'lock')), 0o600, 'lock 0600');
  ok(t, hook(rig, 'poststop', ociState(id, bundle, 'stopped'), { stateDir: fresh }), 'poststop');
});

t.test('links planted inside the state dir are refused, never followed', async (t) => {
  const sb = new Sandbox(t);
  const root = sb.tempDir('state');
  const elsewhere = sb.tempDir('elsewhere');
  const victim = join(elsewhere, 'victim');
  fs.writeFileSync(victim, 'precious');
  const store = new StateDir(root);
  store.ensure();

  // The container folder itself.
  fs.symlinkSync(elsewhere, store.containerDir('c-dir'));
  t.throws(() => store.lockContainer('c-dir'), { constructor: StateError, message: /state of container c-dir: \S+ is a symbolic link; refusing to use it/ });
  t.throws(() => store.tryLockContainer('c-dir'), StateError);
  t.notOk(fs.existsSync(join(elsewhere, 'lock')), 'no lock created through it');
  t.same(store.containerIds(), [], 'a link is not a container');

  // A folder someone else owns or may write.
  fs.mkdirSync(store.containerDir('c-foreign'), { mode: 0o700 });
  fs.chownSync(store.containerDir('c-foreign'), 65534, 65534);
  t.throws(() => store.lockContainer('c-foreign'), { message: /owned by uid 65534/ });
  fs.mkdirSync(store.containerDir('c-open'));
  fs.chmodSync(store.containerDir('c-open'), 0o757);
  t.throws(() => store.lockContainer('c-open'), { message: /writable by group or others \(mode 0757\)/ });

  // The files inside a good folder.
  const lock = store.lockContainer('c-files');
  const dir = store.containerDir('c-files');
  fs.symlinkSync(victim, join(dir, 'journal.json'));
  t.throws(() => store.readJournal('c-files'), { constructor: StateError, message: /^journal of container c-files \(\S+\): is a symbolic link$/ });
  fs.rmSync(join(dir, 'journal.json'));
  fs.writeFileSync(join(dir, 'journal.json'), '{}');
  fs.chownSync(join(dir, 'journal.json'), 65534, 65534);
  t.throws(() => store.readJournal('c-files'), { message: /^journal of container c-files \(\S+\): is owned by uid 65534, not by us/ });
  fs.rmSync(join(dir, 'journal.json'));

  fs.symlinkSync('/proc/1/ns/net', join(dir, 'netns'));
  t.throws(() => store.pinPath('c-files'), { constructor: StateError, message: /netns pin \S+ is a symbolic link; refusing to use it/ });
  fs.rmSync(join(dir, 'netns'));
  t.equal(store.pinPath('c-files'), join(dir, 'netns'), 'an absent pin is fine');

  // Links planted at the journal's other names are replaced, or refused, never written through.
  for (const name of ['journal.next', 'journal.first']) fs.symlinkSync(victim, join(dir, name));
  const journal: Journal = {
    containerId: 'c-files', phase: 'attaching', createdAt: '', netnsPath: '/x', netnsDev: 0, netnsIno: 0,
    plan: { group: 1, devices: [], steps: [] }, started: 0,
  };
  store.createJournal(journal);
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious', 'the link target is untouched');
  t.equal(fs.lstatSync(join(dir, 'journal.json')).mode & 0o777, 0o600, 'the journal is 0600');
  t.same(store.readJournal('c-files'), journal);
  fs.rmSync(join(dir, 'journal.next'));
  fs.symlinkSync(victim, join(dir, 'journal.next'));
  t.throws(() => store.writeJournal({ ...journal, started: 1 }), { constructor: StateError, message: /cannot write the journal of container c-files: .*ELOOP/ });
  t.same(store.readJournal('c-files'), journal, 'the journal is unchanged');
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious', 'and the link target too');
  lock.release();

  fs.mkdirSync(store.containerDir('c-lock'), { mode: 0o700 });
  fs.symlinkSync(victim, join(store.containerDir('c-lock'), 'lock'));
  t.throws(() => store.lockContainer('c-lock'), { constructor: StateError, message: /lock \S+ is a symbolic link/ });

  // gc reports an unsafe folder and goes on with the rest (in a throwaway netns: it restores).
  const gc = sh(...inSimHost(sb.createNetns('gc'), [OCI_NETDEV, '--state-dir', root, 'gc']));
  t.match(gc.stdout, /c-foreign: failed \(.*owned by uid 65534/);
  t.match(gc.stdout, /c-open: failed \(.*writable by group or others/);
  t.match(gc.stdout, /c-files: restored|c-files: removed|c-files: failed/, 'the others are still looked at');
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious', 'nothing written through any link');
});

// ---------------------------------------------------------------------------------------------
// Limits.

t.test('each input limit is enforced with a clear error', async (t) => {
  const rig = makeRig(t);
  const a = nic(rig);
  const base = configBundle(rig.sb, rig.ctr, { netDevices: { [a]: {} } });

  const bigState = { ...ociState(cid('lim'), base, 'creating'), pad: 'x'.repeat(MAX_STATE_BYTES) };
  refusedUnchanged(t, rig, bigState, 'oci-netdev: OCI state on stdin: larger than 1 MiB', 'state over 1 MiB');

  const bigConfig = rig.sb.tempDir('bundle');
  fs.writeFileSync(join(bigConfig, 'config.json'), JSON.stringify({
    ociVersion: '1.0.2', linux: { namespaces: [{ type: 'network', path: netnsPath(rig.ctr) }], netDevices: { [a]: {} } }, pad: 'x'.repeat(MAX_CONFIG_BYTES),
  }));
  refusedUnchanged(t, rig, ociState(cid('lim'), bigConfig, 'creating'),
    new RegExp(`^oci-netdev: config.json ${bigConfig}/config.json: larger than 16 MiB \\(\\d+ bytes\\)$`), 'config.json over 16 MiB');

  // config.json that is not a file: a FIFO nobody writes, an endless device.
  const fifo = rig.sb.tempDir('bundle');
  shOk('mkfifo', [join(fifo, 'config.json')]);
  const t0 = Date.now();
  refusedUnchanged(t, rig, ociState(cid('lim'), fifo, 'creating'), `oci-netdev: config.json ${fifo}/config.json: is not a regular file`, 'config.json as a FIFO');
  t.ok(Date.now() - t0 < 10_000, 'refused at once, not waited on');
  const zero = rig.sb.tempDir('bundle');
  fs.symlinkSync('/dev/zero', join(zero, 'config.json'));
  refusedUnchanged(t, rig, ociState(cid('lim'), zero, 'creating'), `oci-netdev: config.json ${zero}/config.json: is not a regular file`, 'config.json as /dev/zero');

  const file = policy(rig, { annotation: { allowDevices: ['*'] } });
  const huge = JSON.stringify({ [a]: { name: 'x'.repeat(MAX_ANNOTATION_BYTES) } });
  refusedUnchanged(t, rig, ociState(cid('lim'), configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': huge } }), 'creating'),
    /^oci-netdev: annotation oci-netdev.netDevices: larger than 64 KiB \(\d+ bytes\)$/, 'annotation over 64 KiB', { args: ['--policy', file] });

  const many = Object.fromEntries(Array.from({ length: MAX_DEVICES + 1 }, (_, i) => [`d${i}`, {}]));
  refusedUnchanged(t, rig, ociState(cid('lim'), configBundle(rig.sb, rig.ctr, { netDevices: many }), 'creating'),
    /^oci-netdev: linux.netDevices: must be an object of at most 256 devices/, '257 devices in config.json');
  const half = (from: number, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`d${from + i}`, {}]));
  refusedUnchanged(t, rig,
    ociState(cid('lim'), configBundle(rig.sb, rig.ctr, { netDevices: half(0, 200), annotations: { 'oci-netdev.netDevices': JSON.stringify(half(200, 57)) } }), 'creating'),
    'oci-netdev: linux.netDevices and annotation oci-netdev.netDevices together: at most 256 devices (got 257)', '257 devices from both sources',
    { args: ['--policy', file] });
});

/** The system call `pid` is blocked in (its number, from /proc/PID/syscall), or null while it runs. */
function blockedIn(pid: number): number | null {
  const text = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').trim();
  return /^\d+ /.test(text) ? Number(text.split(' ')[0]) : null;
}

t.test('the watchdog ends a process blocked in recv inside a C call', async (t) => {
  // recv(2) is recvfrom on both architectures: syscall 45 on x64, 207 on arm64.
  const RECVFROM: Record<string, number> = { x64: 45, arm64: 207 };
  const dist = resolve(__dirname, '../..');
  const script = `
    const libc = require(${JSON.stringify(join(dist, 'native/libc.js'))});
    require(${JSON.stringify(join(dist, 'src/engine/watchdog.js'))}).startWatchdog(1);
    const fd = libc.netlinkSocket(0);
    libc.setReceiveTimeout(fd, 600000);
    process.stdout.write('waiting\\n');
    libc.receive(fd, Buffer.alloc(64));
    process.stdout.write('returned\\n');`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<[number | null, string | null]>((res) => child.on('exit', (c, s) => res([c, s])));
  const seen = new Set<number | null>();
  while (!out.includes('waiting') && child.exitCode === null && child.signalCode === null) await new Promise((r) => setTimeout(r, 10));
  // Sample until the process dies: it must have been seen blocked in recvfrom.
  for (;;) {
    try {
      seen.add(blockedIn(child.pid!));
    } catch {
      break;
    }
    if (child.exitCode !== null || child.signalCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const [code, signal] = await exited;
  t.ok(seen.has(RECVFROM[process.arch]), `seen blocked in recvfrom (saw ${[...seen].join(', ')})`);
  t.equal(signal, 'SIGALRM', `ended by the alarm (exit ${code}, stderr ${JSON.stringify(err)})`);
  t.equal(out, 'waiting\n', 'recv never returned');
});

t.test('time bounds: netlink receive timeout, lock wait deadline, hook watchdog', async (t) => {
  // A netlink socket whose kernel never answers: nothing was sent, so nothing comes.
  const sock = NetlinkSocket.open(200);
  const started = Date.now();
  const err = t.throws(() => (sock as unknown as { receive(ctx: object): unknown }).receive({ op: 'wait for nothing' })) as NetlinkError;
  sock.close();
  t.ok(err instanceof NetlinkError, 'a NetlinkError');
  t.equal(err.errnoName, 'ETIMEDOUT');
  t.match(err.message, /wait for nothing: ETIMEDOUT \(no reply from the kernel in time\)/);
  t.ok(Date.now() - started < 2000, 'after the receive timeout');

  // Another process holds a container's lock and never lets go.
  const sb = new Sandbox(t);
  const root = sb.tempDir('state');
  const store = new StateDir(root, 300);
  store.lockContainer('busy').release();
  const holder = spawn('flock', ['-x', join(store.containerDir('busy'), 'lock'), 'sleep', '30'], { stdio: 'ignore' });
  sb.defer(() => holder.kill('SIGKILL'));
  for (let i = 0; i < 200; i++) {
    const probe = store.tryLockContainer('busy');
    if (!probe) break;
    // Not held yet: release the probe and give flock time to start.
    probe.release();
    spawnSync('sleep', ['0.02']);
  }
  const before = Date.now();
  t.throws(() => store.lockContainer('busy'), {
    constructor: StateError,
    message: /^state of container busy: still locked by another oci-netdev process after 0.3 s \(\S+\/lock\)$/,
  });
  const waited = Date.now() - before;
  t.ok(waited >= 250 && waited < 3000, `waited ${waited} ms, about the deadline`);
  t.equal(store.tryLockContainer('busy'), null, 'gc finds it busy instead of waiting');

  // A hook whose stdin never closes: the watchdog's SIGALRM ends it; nothing else could.
  const hookStart = Date.now();
  const child = spawn(OCI_NETDEV, ['create-runtime', '--state-dir', root], { env: { ...process.env, OCI_NETDEV_TIMEOUT: '1' }, stdio: ['pipe', 'ignore', 'pipe'] });
  sb.defer(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const [code, signal] = await new Promise<[number | null, string | null]>((res) => child.on('exit', (c, s) => res([c, s])));
  const took = Date.now() - hookStart;
  t.equal(signal, 'SIGALRM', 'ended by the alarm');
  t.equal(code, null);
  t.equal(stderr, '', 'no message: the process is ended by the kernel');
  t.ok(took >= 900 && took < 10_000, `after about 1 s (${took} ms)`);
  child.stdin.end();

  const bad = sh(OCI_NETDEV, ['create-runtime', '--state-dir', root], { env: { OCI_NETDEV_TIMEOUT: 'soon' }, input: '{}' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /OCI_NETDEV_TIMEOUT must be a number of seconds/);
});
