// The device policy (src/config/policy.ts): globs, the file and its defaults, enforcement per
// source, and the planner's rules that no policy can lift (default routes, bridge/bond ports).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { PolicyError } from '../../src/errors';
import { fakeLink } from '../helpers/links';
import { ConfigError, DeviceBusyError } from '../../src/errors';
import {
  DEFAULT_POLICY_FILE, MAX_POLICY_BYTES, checkAddressesInUse, checkNetworkPolicy, checkPolicy, defaultPolicy, loadPolicy,
  parsePolicy, requestedAddresses,
} from '../../src/config/policy';
import { checkGlob, compileGlob } from '../../src/config/glob';
import type { NetworkSpec } from '../../src/config/types';
import { MAX_DEVICES } from '../../src/config/load';
import type { DeviceSpec } from '../../src/config/types';
import { planAttach } from '../../src/plan/plan';
import type { Observed } from '../../src/plan/observed';
import { thrown } from '../helpers/assert';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-policy-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let files = 0;

/** A policy file in the temp dir, root's and 0644 unless told otherwise. */
function policyFile(content: unknown, mode = 0o644): string {
  const file = path.join(tmp, `policy${++files}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  fs.chmodSync(file, mode);
  return file;
}

const host = (key: string, source: DeviceSpec['source'] = 'config'): DeviceSpec => ({ key, kind: 'host', name: key, source });
const veth = (key: string, source: DeviceSpec['source'] = 'config'): DeviceSpec => ({ key, kind: 'veth', name: 'c0', source });
const macvlan = (key: string, master: string, source: DeviceSpec['source'] = 'config'): DeviceSpec =>
  ({ key, kind: 'macvlan', name: key, master, mode: 'bridge', source });

t.test('globs: *, ?, sets, ranges, negation and escapes', async (t) => {
  const m = (pattern: string, name: string) => compileGlob(pattern).matches(name);
  t.ok(m('*', 'eth0'));
  t.ok(m('*', ''), '* matches nothing too');
  t.ok(m('eth*', 'eth'));
  t.ok(m('eth*', 'eth12'));
  t.notOk(m('eth*', 'veth0'), 'anchored at the start');
  t.notOk(m('*0', 'eth01'), 'anchored at the end');
  t.ok(m('e*h*1', 'eth0eth1'), 'backtracks over several stars');
  t.ok(m('eth?', 'eth7'));
  t.notOk(m('eth?', 'eth'));
  t.notOk(m('eth?', 'eth10'));
  t.ok(m('eth[0-3]', 'eth2'));
  t.notOk(m('eth[0-3]', 'eth4'));
  t.ok(m('eth[!0-3]', 'eth4'));
  t.ok(m('eth[^0-3]', 'eth9'), '^ negates like !');
  t.notOk(m('eth[!0-3]', 'eth1'));
  t.ok(m('[ab]x', 'bx'));
  t.ok(m('[]a]', ']'), '] first in a set is literal');
  t.ok(m('[a-]', '-'), '- last in a set is literal');
  t.ok(m('\\*', '*'));
  t.notOk(m('\\*', 'x'), 'an escaped * is literal');
  t.ok(m('a\\?', 'a?'));
  t.ok(m('[\\]]', ']'));
  t.ok(m('n?t', 'nét'), '? is one code point');
  t.ok(m('[à-é]', 'è'), 'ranges over code points');
  t.ok(m('Eth0', 'Eth0'));
  t.notOk(m('eth0', 'ETH0'), 'case matters, as for the kernel');
  for (const bad of ['', 'eth[0', 'eth[', '[!', 'x\\', '[z-a]', 'x'.repeat(257)]) {
    t.ok(checkGlob(bad), `${JSON.stringify(bad.slice(0, 20))} is refused: ${checkGlob(bad)}`);
  }
  t.equal(checkGlob('x'.repeat(256)), undefined);
  const started = Date.now();
  t.notOk(m('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000)), 'no match');
  t.ok(Date.now() - started < 2000, 'and no exponential backtracking');
});

t.test('parsePolicy: sections, defaults per field', async (t) => {
  const p = parsePolicy(
    JSON.stringify({ config: { maxDevices: 4 }, annotation: { allowDevices: ['veth*', 'eth[1-2]'], allowMasters: ['br0'] } }),
    '/etc/p.json',
  );
  t.equal(p.file, '/etc/p.json');
  t.ok(p.exists);
  t.same(p.config.allowDevices.map((g) => g.pattern), ['*'], 'config.allowDevices defaults to every device');
  t.same(p.config.allowMasters.map((g) => g.pattern), ['*']);
  t.equal(p.config.maxDevices, 4);
  t.same(p.annotation.allowDevices.map((g) => g.pattern), ['veth*', 'eth[1-2]']);
  t.same(p.annotation.allowMasters.map((g) => g.pattern), ['br0']);
  t.equal(p.annotation.maxDevices, MAX_DEVICES);
  t.same(p.annotation.given, {
    allowDevices: true, allowMasters: true, allowModes: false, allowBridges: false, allowNetworks: false,
    allowMacs: false, allowProtocols: false, allowCapabilities: false, allowArgs: false, allowHostAddresses: false, allowHostIPs: false, allowHostPorts: false, allowAddressesInUse: false, maxDevices: false,
  });

  const empty = parsePolicy('{}', '/x');
  t.same(empty.annotation.allowDevices, [], 'a file without an annotation section allows the annotation nothing');
  t.same(empty.config.allowDevices.map((g) => g.pattern), ['*']);

  const d = defaultPolicy();
  t.equal(d.file, DEFAULT_POLICY_FILE);
  t.notOk(d.exists);
  t.same(d.annotation.allowDevices, []);
  t.same(d.annotation.allowMasters, []);
});

t.test('parsePolicy: every mistake is a ConfigError naming the file and the field', async (t) => {
  const bad: [unknown, RegExp][] = [
    ['', /^policy \/p: empty, expected JSON$/],
    ['{"config": ', /^policy \/p: invalid JSON: /],
    ['[]', /^policy \/p: must be object/],
    [{ confg: {} }, /^policy \/p: confg: unknown field$/],
    [{ config: { allowDevice: [] } }, /^policy \/p: config\.allowDevice: unknown field$/],
    [{ config: { allowDevices: 'eth*' } }, /^policy \/p: config\.allowDevices: must be an array of at most 1024 glob strings/],
    [{ annotation: { allowDevices: [1] } }, /^policy \/p: annotation\.allowDevices\[0\]: must be a glob string \(got 1\)$/],
    [{ annotation: { allowMasters: Array(1025).fill('x') } }, /annotation\.allowMasters: must be an array of at most 1024/],
    [{ annotation: { maxDevices: -1 } }, /^policy \/p: annotation\.maxDevices: must be an integer from 0 to 256 \(got -1\)$/],
    [{ annotation: { maxDevices: 257 } }, /maxDevices: must be an integer from 0 to 256 \(got 257\)/],
    [{ annotation: { maxDevices: 1.5 } }, /maxDevices: must be an integer/],
    [{ config: { allowDevices: ['eth[0'] } }, /^policy \/p: config\.allowDevices\[0\]: has an unterminated '\[' at character 4 \(got "eth\[0"\)$/],
    [{ config: { allowMasters: ['ok', ''] } }, /^policy \/p: config\.allowMasters\[1\]: must not be empty/],
    [{ annotation: { allowHostAddresses: ['10.0.0.0'] } }, /^policy \/p: annotation\.allowHostAddresses\[0\]: must be a CIDR, ADDRESS\/PREFIX \(got "10\.0\.0\.0"\)$/],
    [{ annotation: { allowHostIPs: ['10.0.0.0/33'] } }, /^policy \/p: annotation\.allowHostIPs\[0\]: must have an IPv4 prefix length from 0 to 32/],
    [{ annotation: { allowHostPorts: ['80-22'] } }, /^policy \/p: annotation\.allowHostPorts\[0\]: must be a range N-M with N at most M \(got "80-22"\)$/],
    [{ annotation: { allowHostPorts: ['70000'] } }, /^policy \/p: annotation\.allowHostPorts\[0\]: must be ports from 0 to 65535/],
    [{ annotation: { allowHostPorts: ['http'] } }, /^policy \/p: annotation\.allowHostPorts\[0\]: must be a port "N" or a range "N-M"/],
    [{ annotation: { allowAddressesInUse: 'yes' } }, /^policy \/p: annotation\.allowAddressesInUse: must be true or false/],
    [{ cni: { allowCapabilities: [''] } }, /^policy \/p: cni\.allowCapabilities\[0\]: must not be empty/],
  ];
  for (const [doc, message] of bad) {
    const err = thrown(() => parsePolicy(typeof doc === 'string' ? doc : JSON.stringify(doc), '/p'));
    t.ok(err instanceof ConfigError, `${JSON.stringify(doc).slice(0, 50)}: a ConfigError`);
    t.match((err).message, message);
    t.notMatch((err).message, /\n/, 'one line');
  }
  t.equal((thrown(() => parsePolicy(JSON.stringify({ annotation: { maxDevices: 'x' } }), '/p')) as ConfigError).field, 'annotation.maxDevices');
});

t.test(`parsePolicy and loadPolicy refuse more than ${MAX_POLICY_BYTES} bytes`, async (t) => {
  const big = JSON.stringify({ config: { allowDevices: ['*'] }, pad: 'x'.repeat(MAX_POLICY_BYTES) });
  t.throws(() => parsePolicy(big, '/p'), { constructor: ConfigError, message: /^policy \/p: larger than 1 MiB \(\d+ bytes\)$/ });
  const file = policyFile(big);
  t.throws(() => loadPolicy(file, true), { constructor: ConfigError, message: /larger than 1 MiB/ });
});

t.test('loadPolicy: the default file may be absent, a named one may not', async (t) => {
  const missing = path.join(tmp, 'missing.json');
  const d = loadPolicy(missing);
  t.notOk(d.exists, 'defaults');
  t.equal(d.file, missing);
  t.same(d.annotation.allowDevices, []);
  t.throws(() => loadPolicy(missing, true), { constructor: ConfigError, message: `policy ${missing}: does not exist` });
  t.throws(() => loadPolicy('relative.json', true), { message: /must be an absolute path/ });
  const ok = policyFile({ annotation: { allowDevices: ['x*'] } });
  const p = loadPolicy(ok, true);
  t.ok(p.exists);
  t.same(p.annotation.allowDevices.map((g) => g.pattern), ['x*']);
});

t.test('loadPolicy: only root may write the policy, and links are not followed', async (t) => {
  const good = policyFile({});
  const link = path.join(tmp, 'link.json');
  fs.symlinkSync(good, link);
  t.throws(() => loadPolicy(link, true), { constructor: ConfigError, message: `policy ${link}: is a symbolic link; give the file itself` });
  t.throws(() => loadPolicy(link), { message: /is a symbolic link/, }, 'also at the default path');

  t.throws(() => loadPolicy(policyFile({}, 0o664), true), { message: /is writable by group or others \(mode 0664\)/ });
  t.throws(() => loadPolicy(policyFile({}, 0o646), true), { message: /is writable by group or others \(mode 0646\)/ });
  t.doesNotThrow(() => loadPolicy(policyFile({}, 0o600), true), '0600 is fine');
  t.doesNotThrow(() => loadPolicy(policyFile({}, 0o444), true), '0444 is fine');

  const foreign = policyFile({});
  fs.chownSync(foreign, 65534, 65534);
  t.throws(() => loadPolicy(foreign, true), { message: /is owned by uid 65534; it must be root's/ });

  const dir = path.join(tmp, 'dir.json');
  fs.mkdirSync(dir);
  t.throws(() => loadPolicy(dir, true), { constructor: ConfigError, message: /is not a regular file/ });

  const fifo = path.join(tmp, 'fifo.json');
  t.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const started = Date.now();
  t.throws(() => loadPolicy(fifo, true), { message: /is not a regular file/ }, 'a FIFO is refused, not waited on');
  t.ok(Date.now() - started < 1000);
});

t.test('without a file: config.json may use any device, the annotation none', async (t) => {
  const d = defaultPolicy('/etc/oci-netdev/policy.json');
  t.doesNotThrow(() => checkPolicy([host('eth0'), host('anything'), veth('vh0'), macvlan('m', 'eth0')], d));
  t.doesNotThrow(() => checkPolicy(Array.from({ length: MAX_DEVICES }, (_, i) => host(`d${i}`)), d), '256 devices');

  const err = thrown(() => checkPolicy([host('eth0'), host('eth1', 'annotation')], d)) as PolicyError;
  t.ok(err instanceof PolicyError && err instanceof ConfigError, 'a PolicyError, which is a ConfigError');
  t.equal(
    err.message,
    'device eth1: host device eth1 is refused for annotation oci-netdev.netDevices by the default policy ' +
      '(/etc/oci-netdev/policy.json does not exist): it matches no pattern of annotation.allowDevices, which allows no device by default',
  );
  t.equal(err.device, 'eth1');
  t.equal(err.source, 'annotation');
  t.equal(err.rule, 'annotation.allowDevices');
  t.equal(err.policyFile, '/etc/oci-netdev/policy.json');
  t.match(thrown(() => checkPolicy([macvlan('m0', 'eth0', 'annotation')], d)), {
    message: /^device m0: macvlan master eth0 is refused for annotation oci-netdev\.netDevices by the default policy .*annotation\.allowMasters/,
    rule: 'annotation.allowMasters',
  });
  t.match(thrown(() => checkPolicy([veth('vh0', 'annotation')], d)), { message: /^device vh0: veth host end vh0 is refused/ });
});

t.test('a policy file: allowDevices, allowMasters and maxDevices per source', async (t) => {
  const p = parsePolicy(
    JSON.stringify({
      config: { allowDevices: ['nic*'], allowMasters: ['br*'], maxDevices: 2 },
      annotation: { allowDevices: ['pod-[0-9]', 'vh*'], allowMasters: ['eth1'], maxDevices: 3 },
    }),
    '/etc/oci-netdev/policy.json',
  );
  t.doesNotThrow(() => checkPolicy([host('nic0'), macvlan('m', 'br0'), host('pod-1', 'annotation'), veth('vh1', 'annotation'), macvlan('m2', 'eth1', 'annotation')], p));
  t.match(thrown(() => checkPolicy([host('eth0')], p)), {
    message: 'device eth0: host device eth0 is refused for linux.netDevices by policy /etc/oci-netdev/policy.json: it matches no pattern of config.allowDevices ["nic*"]',
    problem: 'host device eth0 is refused for linux.netDevices by policy /etc/oci-netdev/policy.json: it matches no pattern of config.allowDevices ["nic*"]',
    device: 'eth0',
    source: 'config',
    rule: 'config.allowDevices',
  }, 'the refusal is a field of its own beside the device (cdi generate lists it), not parsed back from the message');
  t.match(thrown(() => checkPolicy([host('nic0', 'annotation')], p)), {
    message: /^device nic0: host device nic0 is refused for annotation oci-netdev\.netDevices by policy \/etc\/oci-netdev\/policy\.json: it matches no pattern of annotation\.allowDevices \["pod-\[0-9\]","vh\*"\]$/,
  }, 'each source has its own section');
  t.match(thrown(() => checkPolicy([macvlan('m', 'eth0', 'annotation')], p)), {
    message: /^device m: macvlan master eth0 is refused .*annotation\.allowMasters \["eth1"\]$/,
  });
  t.doesNotThrow(() => checkPolicy([macvlan('zzz', 'eth1', 'annotation')], p), 'a macvlan key is only an id: allowDevices does not apply');
  t.match(thrown(() => checkPolicy([host('nic0'), host('nic1'), host('nic2')], p)), {
    message: 'device nic2: linux.netDevices asks for 3 devices, more than config.maxDevices (2) of policy /etc/oci-netdev/policy.json allows',
    device: 'nic2',
    rule: 'config.maxDevices',
  });
  t.match(thrown(() => checkPolicy(['pod-1', 'pod-2', 'pod-3', 'pod-4'].map((k) => host(k, 'annotation')), p)), {
    rule: 'annotation.maxDevices',
    message: /device pod-4: annotation oci-netdev\.netDevices asks for 4 devices, more than annotation\.maxDevices \(3\)/,
  });
  const none = parsePolicy(JSON.stringify({ config: { maxDevices: 0 } }), '/p');
  t.match(thrown(() => checkPolicy([host('x')], none)), { rule: 'config.maxDevices', message: /more than config\.maxDevices \(0\)/ });
  t.doesNotThrow(() => checkPolicy([], none), 'no devices, nothing to refuse');
});

// ---------------------------------------------------------------------------------------------
// What no policy lifts: the planner's refusals from kernel state.

const link = fakeLink;

const observed = (o: Partial<Observed> = {}): Observed => ({
  hostLinks: [
    link(1, 'lo', { flags: 0x9, kind: null }), link(2, 'uplink'), link(3, 'up6'), link(4, 'br0', { kind: 'bridge' }),
    link(5, 'port0', { masterIndex: 4, slaveKind: 'bridge' }), link(6, 'bond0', { kind: 'bond' }),
    link(7, 'slave0', { masterIndex: 6, slaveKind: 'bond' }), link(8, 'free0'), link(9, 'orphan0', { masterIndex: 99 }),
  ],
  hostAddresses: [],
  containerLinks: [link(1, 'lo', { flags: 0x9, kind: null })],
  containerAddresses: [],
  hostDefaultRoutes: [{ family: 2, index: 2 }, { family: 10, index: 2 }, { family: 10, index: 3 }],
  ...o,
});
const ctx = { group: 0x4242, claims: new Map<string, string>(), macvlanMasters: new Map<number, string>(), policy: parsePolicy('{}', '/etc/p.json') };
const refusedBy = (rule: string, reason: string, subject = 'host device'): RegExp =>
  new RegExp(`^device \\S+: ${subject} \\S+ is refused by always-refused: ${rule}, whatever policy /etc/p\\.json says: ${reason}$`);

t.test('always refused: a device that carries a default route, IPv4 or IPv6', async (t) => {
  const err = thrown(() => planAttach([host('uplink')], observed(), ctx)) as PolicyError;
  t.ok(err instanceof PolicyError, 'a PolicyError');
  t.equal(err.message, 'device uplink: host device uplink is refused by always-refused: default-route, whatever policy /etc/p.json says: ' +
    'it carries a default route (IPv4 and IPv6) in the host network namespace');
  t.equal(err.device, 'uplink');
  t.equal(err.rule, 'always-refused: default-route');
  t.equal(err.policyFile, '/etc/p.json');
  t.equal(err.source, 'config');
  t.match(thrown(() => planAttach([host('free0'), host('up6')], observed(), ctx)), { message: refusedBy('default-route', 'it carries a default route \\(IPv6\\) .*') });
  t.doesNotThrow(() => planAttach([host('free0')], observed(), ctx), 'a device without one moves');
  t.doesNotThrow(() => planAttach([macvlan('m', 'uplink')], observed(), ctx), 'a macvlan in bridge mode on the uplink is fine: the uplink stays');
  const byDefault = thrown(() => planAttach([host('uplink')], observed(), { ...ctx, policy: defaultPolicy() })) as PolicyError;
  t.match(byDefault.message, /is refused by always-refused: default-route, whatever the default policy \(\/etc\/oci-netdev\/policy\.json does not exist\) says: /,
    'names the default policy when there is no file');
});

t.test('always refused: bridge and bond ports', async (t) => {
  t.match(thrown(() => planAttach([host('port0')], observed(), ctx)), {
    message: 'device port0: host device port0 is refused by always-refused: port, whatever policy /etc/p.json says: it is a bridge port of br0',
    constructor: PolicyError,
  });
  t.match(thrown(() => planAttach([host('slave0')], observed(), ctx)), { message: refusedBy('port', 'it is a bond port of bond0') });
  t.match(thrown(() => planAttach([host('orphan0')], observed(), ctx)), { message: refusedBy('port', 'it is a master port of link #99') });
});

t.test('always refused: loopback, and a device another container holds (naming it)', async (t) => {
  t.match(thrown(() => planAttach([host('lo')], observed(), ctx)), { message: refusedBy('loopback', 'it is the loopback device'), rule: 'always-refused: loopback' });
  const err = thrown(() => planAttach([host('free0')], observed(), { ...ctx, claims: new Map([['free0', 'ctr-a']]) }));
  t.ok(err instanceof DeviceBusyError);
  t.match(err, { owner: 'ctr-a', message: 'device free0 is held by container ctr-a' });
});

t.test('parsePolicy: allowModes per source, defaults, and globs that match no mode', async (t) => {
  const d = defaultPolicy();
  t.same(d.config.allowModes.map((g) => g.pattern), ['*'], 'config.json may use every mode');
  t.same(d.annotation.allowModes.map((g) => g.pattern), ['bridge'], 'the annotation bridge only');
  const p = parsePolicy(JSON.stringify({ config: { allowModes: ['bridge', 'v*'] }, annotation: { allowMasters: ['*'], allowModes: ['*'] } }), '/p');
  t.same(p.config.allowModes.map((g) => g.pattern), ['bridge', 'v*']);
  t.same(p.annotation.allowModes.map((g) => g.pattern), ['*']);
  t.same(p.config.given, {
    allowDevices: false, allowMasters: false, allowModes: true, allowBridges: false, allowNetworks: false,
    allowMacs: false, allowProtocols: false, allowCapabilities: false, allowArgs: false, allowHostAddresses: false, allowHostIPs: false, allowHostPorts: false, allowAddressesInUse: false, maxDevices: false,
  });
  t.same(parsePolicy('{"annotation": {}}', '/p').annotation.allowModes.map((g) => g.pattern), ['bridge'], 'a section without the field takes the default');
  for (const [doc, message] of [
    [{ config: { allowModes: ['brdge'] } }, /^policy \/p: config\.allowModes\[0\]: matches no macvlan mode; the modes are bridge, private, vepa, passthru \(got "brdge"\)$/],
    [{ annotation: { allowModes: ['bridge', 'x*'] } }, /^policy \/p: annotation\.allowModes\[1\]: matches no macvlan mode/],
    [{ annotation: { allowModes: 'bridge' } }, /^policy \/p: annotation\.allowModes: must be an array of at most 1024 glob strings/],
    [{ annotation: { allowModes: ['[b'] } }, /^policy \/p: annotation\.allowModes\[0\]: has an unterminated '\['/],
  ] as [unknown, RegExp][]) {
    const err = thrown(() => parsePolicy(JSON.stringify(doc), '/p'));
    t.ok(err instanceof ConfigError, `${JSON.stringify(doc)}: a ConfigError`);
    t.match((err).message, message);
  }
});

t.test('checkPolicy: allowModes', async (t) => {
  const mode = (m: DeviceSpec['mode'], source: DeviceSpec['source']) => ({ ...macvlan(`m-${m}`, 'eth1', source), mode: m });
  const d = defaultPolicy('/etc/oci-netdev/policy.json');
  t.doesNotThrow(() => checkPolicy((['bridge', 'private', 'vepa', 'passthru'] as const).map((m) => mode(m, 'config')), d), 'config.json: every mode');
  const open = parsePolicy(JSON.stringify({ annotation: { allowMasters: ['*'] } }), '/etc/p.json');
  t.doesNotThrow(() => checkPolicy([mode('bridge', 'annotation')], open), 'the annotation: bridge');
  for (const m of ['private', 'vepa', 'passthru'] as const) {
    const err = thrown(() => checkPolicy([mode(m, 'annotation')], open)) as PolicyError;
    t.ok(err instanceof PolicyError, `${m}: a PolicyError`);
    t.equal(err.message, `device m-${m}: macvlan mode ${m} is refused for annotation oci-netdev.netDevices by policy /etc/p.json: ` +
      'it matches no pattern of annotation.allowModes, which allows only bridge by default');
    t.equal(err.rule, 'annotation.allowModes');
  }
  const vepa = parsePolicy(JSON.stringify({ annotation: { allowMasters: ['*'], allowModes: ['bridge', 'vepa'] }, config: { allowModes: ['bridge'] } }), '/etc/p.json');
  t.doesNotThrow(() => checkPolicy([mode('vepa', 'annotation')], vepa), 'a policy that lists vepa allows it');
  t.match(thrown(() => checkPolicy([mode('passthru', 'annotation')], vepa)), { message: /macvlan mode passthru is refused .*annotation\.allowModes \["bridge","vepa"\]$/ });
  t.match(thrown(() => checkPolicy([mode('private', 'config')], vepa)), {
    message: /^device m-private: macvlan mode private is refused for linux\.netDevices by policy \/etc\/p\.json: it matches no pattern of config\.allowModes \["bridge"\]$/,
    rule: 'config.allowModes',
  });
  t.match(thrown(() => checkPolicy([mode('vepa', 'annotation')], parsePolicy('{}', '/p'))), { rule: 'annotation.allowMasters' }, 'the master is checked first');
});

t.test('host-side addresses: none for the annotation by default; allowHostAddresses holds each address with its prefix', async (t) => {
  const ann = (hostAddresses: string[]): DeviceSpec => ({ ...veth('pv0', 'annotation'), hostAddresses });
  const file = policyFile({ annotation: { allowDevices: ['pv*'] } });
  const p = loadPolicy(file);
  for (const [i, cidr] of ['192.0.2.2/30', '128.0.0.1/1', '2000::1/3', '2001:db8:7::1/128'].entries()) {
    const err = thrown(() => checkPolicy([ann([cidr])], p)) as PolicyError;
    t.ok(err instanceof PolicyError, `${cidr}: refused`);
    t.equal(err.message, `device pv0: hostAddresses[0] ${cidr} is refused for annotation oci-netdev.netDevices by policy ${file}: ` +
      'it lies within no prefix of annotation.allowHostAddresses, which allows no host address by default', `${cidr} (${i}): one line naming field, rule and policy`);
    t.equal(err.rule, 'annotation.allowHostAddresses');
  }
  const some = policyFile({ annotation: { allowDevices: ['pv*'], allowHostAddresses: ['10.99.0.0/16', 'fd00:99::/48'] } });
  const q = loadPolicy(some);
  t.doesNotThrow(() => checkPolicy([ann(['10.99.1.1/24', 'fd00:99:0:1::1/64', '10.99.0.1'])], q), 'addresses whose prefixes lie within');
  t.match(thrown(() => checkPolicy([ann(['10.99.1.1/24', '10.99.1.1/8'])], q)), {
    message: `device pv0: hostAddresses[1] 10.99.1.1/8 is refused for annotation oci-netdev.netDevices by policy ${some}: it lies within no prefix of annotation.allowHostAddresses ["10.99.0.0/16","fd00:99::/48"]`,
  }, 'a prefix wider than the allowed one (the host would route it all to the container)');
  t.doesNotThrow(() => checkPolicy([{ ...veth('v0'), hostAddresses: ['128.0.0.1/1'] }], defaultPolicy()), 'config.json: every host address by default');
});

t.test('MACs: allowMacs judges mac and hostMac', async (t) => {
  const file = policyFile({ annotation: { allowDevices: ['pv*'], allowMacs: ['02:aa:*'] } });
  const p = loadPolicy(file);
  t.doesNotThrow(() => checkPolicy([{ ...veth('pv0', 'annotation'), mac: '02:aa:00:00:00:01', hostMac: '02:aa:00:00:00:02' }], p));
  t.match(thrown(() => checkPolicy([{ ...veth('pv0', 'annotation'), hostMac: '02:bb:00:00:00:02' }], p)), {
    message: `device pv0: hostMac 02:bb:00:00:00:02 is refused for annotation oci-netdev.netDevices by policy ${file}: it matches no pattern of annotation.allowMacs ["02:aa:*"]`,
  });
});

const network = (runtimeConfig: Record<string, unknown>, args: Array<[string, string]> = [], source: DeviceSpec['source'] = 'annotation'): NetworkSpec =>
  ({ network: 'web', ifname: 'eth1', args, runtimeConfig, source });

t.test('port mappings, capabilities and CNI_ARGS of a CNI network', async (t) => {
  const file = policyFile({ annotation: { allowNetworks: ['web'] } });
  const p = loadPolicy(file);
  const head = `device web: `;
  const tail = ` is refused for annotation oci-netdev.netDevices by policy ${file}: `;
  const cases: [string, NetworkSpec, string][] = [
    ['host port 22', network({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 22, containerPort: 22, protocol: 'tcp' }] }),
      `${head}portMappings[1].hostPort 22${tail}it lies in no range of annotation.allowHostPorts, which allows only 1024-65535 by default`],
    ['a capability other than portMappings', network({ ips: ['10.0.0.5/24'] }),
      `${head}runtimeConfig.ips${tail}it matches no pattern of annotation.allowCapabilities, which allows only portMappings by default`],
    ['a CNI_ARGS key', network({}, [['IP', '10.0.0.5']]),
      `${head}CNI_ARGS key IP${tail}it matches no pattern of annotation.allowArgs, which allows no CNI_ARGS key by default`],
  ];
  for (const [what, n, message] of cases) t.match(thrown(() => checkNetworkPolicy([n], p)), { message }, what);
  t.doesNotThrow(() => checkNetworkPolicy([network({ portMappings: [{ hostPort: 8080, containerPort: 80 }] })], p), 'port 8080 on every address');

  const strict = policyFile({ annotation: { allowNetworks: ['web'], allowHostIPs: ['192.0.2.0/24'], allowProtocols: ['tcp'], allowHostPorts: ['8000-8099'] } });
  const q = loadPolicy(strict);
  const more: [string, Record<string, unknown>, string][] = [
    ['no hostIP', { hostPort: 8080, containerPort: 80 }, 'portMappings[0] without hostIP (every local address)'],
    ['127.0.0.1', { hostPort: 8080, containerPort: 80, hostIP: '127.0.0.1' }, 'portMappings[0].hostIP 127.0.0.1'],
    ['udp', { hostPort: 8080, containerPort: 80, hostIP: '192.0.2.9', protocol: 'udp' }, 'portMappings[0].protocol udp'],
    ['port 9000', { hostPort: 9000, containerPort: 80, hostIP: '192.0.2.9' }, 'portMappings[0].hostPort 9000'],
  ];
  for (const [what, m, subject] of more) {
    t.match(thrown(() => checkNetworkPolicy([network({ portMappings: [m] })], q)), { message: new RegExp(`^device web: ${subject.replace(/[.()[\]]/g, '\\$&')} is refused`) }, what);
  }
  t.doesNotThrow(() => checkNetworkPolicy([network({ portMappings: [{ hostPort: 8080, containerPort: 80, hostIP: '192.0.2.9' }] })], q));
  t.match(thrown(() => checkNetworkPolicy([network({ portMappings: [{ hostPort: 'x', containerPort: 80 }] })], q)), { message: 'device web: portMappings[0].hostPort: must be an integer from 0 to 65535 (got "x")' });
  t.doesNotThrow(() => checkNetworkPolicy([network({ portMappings: [{ hostPort: 22, containerPort: 22 }], ips: ['1.2.3.4/24'] }, [['IP', '1.2.3.4']], 'config')], defaultPolicy()),
    'config.json: every port, capability and key by default');
});

t.test('addresses and MACs in use: refused for the annotation by default, naming who uses them', async (t) => {
  const file = policyFile({ annotation: { allowDevices: ['pv*'], allowNetworks: ['web'], allowCapabilities: ['*'] } });
  const p = loadPolicy(file);
  const inUse = {
    macs: new Map([['02:00:00:00:00:01', 'host device eth1']]),
    ips: [{ address: '10.1.0.2', prefixlen: 32, holder: 'container web-1' }, { address: '2001:db8::1', prefixlen: 64, holder: 'host device eth1', device: 'eth1' }],
  };
  const devices: DeviceSpec[] = [{ ...veth('pv0', 'annotation'), addresses: ['10.1.0.3/24', '2001:DB8::1/64'] }];
  const uses = requestedAddresses(devices, [network({ mac: '02:00:00:00:00:01' })]);
  t.same(uses.map((u) => [u.field, u.value]), [['addresses[0]', '10.1.0.3'], ['addresses[1]', '2001:db8::1'], ['runtimeConfig.mac', '02:00:00:00:00:01']]);
  t.match(thrown(() => checkAddressesInUse(uses, inUse, p)), {
    message: `device pv0: addresses[1] 2001:db8::1 is refused for annotation oci-netdev.netDevices by policy ${file}: it is in use by host device eth1, and annotation.allowAddressesInUse is false by default`,
    rule: 'annotation.allowAddressesInUse',
  });
  t.match(thrown(() => checkAddressesInUse(requestedAddresses([], [network({}, [['IP', '10.1.0.2']])]), inUse, p)), {
    message: /^device web: CNI_ARGS IP 10\.1\.0\.2 is refused .*: it is in use by container web-1, and annotation\.allowAddressesInUse is false by default$/,
  });
  const config = requestedAddresses([{ ...veth('v0'), mac: '02:00:00:00:00:01' }], []);
  t.doesNotThrow(() => checkAddressesInUse(config, inUse, p), 'config.json may by default');
  const allow = loadPolicy(policyFile({ annotation: { allowAddressesInUse: true } }));
  t.doesNotThrow(() => checkAddressesInUse(uses, inUse, allow), 'the annotation may when the policy says so');
});

t.test('host-side prefixes in use: a hostAddresses or ipRanges gateway overlapping an address in use is refused, naming it', async (t) => {
  const file = policyFile({ annotation: { allowDevices: ['pv*'], allowNetworks: ['web'], allowCapabilities: ['*'], allowHostAddresses: ['10.0.0.0/8', 'fe80::/10'] } });
  const p = loadPolicy(file);
  const inUse = {
    macs: new Map<string, string>(),
    ips: [
      { address: '10.200.0.9', prefixlen: 32, holder: 'container c-2' },
      { address: '10.200.0.2', prefixlen: 31, holder: 'container c-1 (host device pva)', device: 'pva' },
      { address: '10.76.1.1', prefixlen: 24, holder: 'host device br0', device: 'br0' },
      { address: 'fe80::aa', prefixlen: 128, holder: 'host device eth1', device: 'eth1' },
    ],
  };
  const hostEnd = (hostAddresses: string[], addresses?: string[]) => requestedAddresses([{ ...veth('pv0', 'annotation'), hostAddresses, ...(addresses ? { addresses } : {}) }], []);
  const why = `is refused for annotation oci-netdev.netDevices by policy ${file}`;
  const tail = 'and annotation.allowAddressesInUse is false by default';
  t.match(thrown(() => checkAddressesInUse(hostEnd(['10.200.0.3/31']), inUse, p)), {
    message: `device pv0: hostAddresses[0] 10.200.0.3/31 ${why}: it overlaps 10.200.0.2/31, in use by container c-1 (host device pva), ${tail}`,
    rule: 'annotation.allowAddressesInUse',
  }, "the other half of another container's /31: its route would take the other's");
  t.match(thrown(() => checkAddressesInUse(hostEnd(['10.200.0.1/28']), inUse, p)), {
    message: `device pv0: hostAddresses[0] 10.200.0.1/28 ${why}: it overlaps 10.200.0.9/32, in use by container c-2, ${tail}`,
  }, "a prefix holding another container's address");
  t.match(thrown(() => checkAddressesInUse(hostEnd(['10.76.1.200/32']), inUse, p)), {
    message: `device pv0: hostAddresses[0] 10.76.1.200/32 ${why}: it overlaps 10.76.1.1/24, in use by host device br0, ${tail}`,
  }, "an address within a host device's prefix");
  t.match(thrown(() => checkAddressesInUse(hostEnd(['::ffff:10.200.0.3/127']), inUse, p)), {
    message: `device pv0: hostAddresses[0] 10.200.0.3/31 ${why}: it overlaps 10.200.0.2/31, in use by container c-1 (host device pva), ${tail}`,
  }, 'an IPv4-mapped one, judged as IPv4');
  t.doesNotThrow(() => checkAddressesInUse(hostEnd(['10.200.0.4/31', 'fe80::1/64']), inUse, p), 'the next /31, and a link-local address (its prefix is its link\'s)');
  t.doesNotThrow(() => checkAddressesInUse(hostEnd([], ['10.200.0.3/31', '10.76.1.7/24']), inUse, p), 'container-side addresses are judged alone: a subnet is shared');

  const ranges = (ipRanges: unknown) => requestedAddresses([], [network({ ipRanges })]);
  t.same(ranges([[{ subnet: '10.76.1.0/24' }, { subnet: '10.77.0.0/16', gateway: '10.77.9.9' }]]).map((u) => [u.field, u.value, u.prefixlen, u.network]), [
    ['runtimeConfig.ipRanges[0][0].gateway', '10.76.1.1', 24, 'web'],
    ['runtimeConfig.ipRanges[0][1].gateway', '10.77.9.9', 16, 'web'],
  ], "each range's gateway (the subnet's first address unless given) with the subnet's prefix: what the bridge plugin puts on the host");
  t.match(thrown(() => checkAddressesInUse(ranges([[{ subnet: '10.76.1.0/24' }]]), inUse, p)), {
    message: `device web: runtimeConfig.ipRanges[0][0].gateway 10.76.1.1/24 ${why}: it is in use by host device br0, ${tail}`,
  }, 'on another device than the bridge the network names');
  t.doesNotThrow(() => checkAddressesInUse(ranges([[{ subnet: '10.76.1.0/24' }]]), inUse, p, (n) => (n === 'web' ? ['br0'] : [])),
    'the same address and prefix already on the bridge the network names: no change to the host');
  t.match(thrown(() => checkAddressesInUse(ranges([[{ subnet: '10.76.0.0/16' }]]), inUse, p, () => ['br0'])), {
    message: `device web: runtimeConfig.ipRanges[0][0].gateway 10.76.0.1/16 ${why}: it overlaps 10.76.1.1/24, in use by host device br0, ${tail}`,
  }, 'a wider prefix on that bridge is a change');
});

t.test("IPv4-mapped IPv6 addresses are judged as the IPv4 addresses plugins make of them", async (t) => {
  const file = policyFile({ annotation: { allowDevices: ['pv*'], allowNetworks: ['web'], allowHostIPs: ['::/0', '192.0.2.0/24'], allowHostAddresses: ['::/0'] } });
  const p = loadPolicy(file);
  const why = `is refused for annotation oci-netdev.netDevices by policy ${file}`;
  t.match(thrown(() => checkNetworkPolicy([network({ portMappings: [{ hostPort: 8080, containerPort: 80, hostIP: '::ffff:127.0.0.1' }] })], p)), {
    message: `device web: portMappings[0].hostIP ::ffff:127.0.0.1 (judged as 127.0.0.1) ${why}: it lies within no prefix of annotation.allowHostIPs ["::/0","192.0.2.0/24"]`,
    rule: 'annotation.allowHostIPs',
  }, 'a mapped hostIP: portmap forwards IPv4 127.0.0.1');
  t.doesNotThrow(() => checkNetworkPolicy([network({ portMappings: [{ hostPort: 8080, containerPort: 80, hostIP: '::ffff:192.0.2.7' }] })], p), 'one the IPv4 prefix holds');
  t.match(thrown(() => checkPolicy([{ ...veth('pv0', 'annotation'), hostAddresses: ['::ffff:128.0.0.1/97'] }], p)), {
    message: `device pv0: hostAddresses[0] ::ffff:128.0.0.1/97 (judged as 128.0.0.1/1) ${why}: it lies within no prefix of annotation.allowHostAddresses ["::/0"]`,
  }, 'a mapped host address: half of IPv4');
  const inUse = { macs: new Map<string, string>(), ips: [{ address: '10.1.0.2', prefixlen: 32, holder: 'container web-1' }] };
  const loose = loadPolicy(policyFile({ annotation: { allowDevices: ['pv*'] } }));
  t.match(thrown(() => checkAddressesInUse(requestedAddresses([{ ...veth('pv0', 'annotation'), addresses: ['::ffff:10.1.0.2/120'] }], []), inUse, loose)), {
    message: /^device pv0: addresses\[0\] 10\.1\.0\.2 is refused .*: it is in use by container web-1/,
  }, "another container's address, mapped");
});

t.test('ipRanges: each subnet, gateway and range bound lies within allowHostAddresses (the bridge plugin puts the gateway on the host)', async (t) => {
  const file = policyFile({ annotation: { allowNetworks: ['web'], allowCapabilities: ['ipRanges'], allowHostAddresses: ['10.76.0.0/16'] } });
  const p = loadPolicy(file);
  const why = `is refused for annotation oci-netdev.netDevices by policy ${file}: it lies within no prefix of annotation.allowHostAddresses ["10.76.0.0/16"]`;
  const cases: [string, unknown, string][] = [
    ['half of IPv4', [[{ subnet: '128.0.0.0/1' }]], `runtimeConfig.ipRanges[0][0].subnet 128.0.0.0/1 ${why}`],
    ['a second set', [[{ subnet: '10.76.1.0/24' }], [{ subnet: '2000::/3' }]], `runtimeConfig.ipRanges[1][0].subnet 2000::/3 ${why}`],
    ['a gateway elsewhere', [[{ subnet: '10.76.1.0/24', gateway: '10.77.0.1' }]], `runtimeConfig.ipRanges[0][0].gateway 10.77.0.1/24 ${why}`],
    ['a range start elsewhere', [[{ subnet: '10.76.1.0/24', rangeStart: '10.99.0.1' }]], `runtimeConfig.ipRanges[0][0].rangeStart 10.99.0.1 ${why}`],
    ['a range end elsewhere', [[{ subnet: '10.76.1.0/24', rangeEnd: '::ffff:10.99.0.1' }]], `runtimeConfig.ipRanges[0][0].rangeEnd ::ffff:10.99.0.1 (judged as 10.99.0.1) ${why}`],
  ];
  for (const [what, ipRanges, message] of cases) {
    t.match(thrown(() => checkNetworkPolicy([network({ ipRanges })], p)), { message: `device web: ${message}`, rule: 'annotation.allowHostAddresses' }, what);
  }
  t.doesNotThrow(() => checkNetworkPolicy([network({ ipRanges: [[{ subnet: '10.76.1.0/24', rangeStart: '10.76.1.10', rangeEnd: '10.76.1.20', gateway: '10.76.1.1' }]] })], p));
  for (const [bad, message] of [
    ['x', 'device web: runtimeConfig.ipRanges: must be a list of range sets'],
    [['x'], 'device web: runtimeConfig.ipRanges[0]: must be a list of ranges'],
    [[[{}]], 'device web: runtimeConfig.ipRanges[0][0].subnet: must be a CIDR, ADDRESS/PREFIX (got undefined)'],
    [[[{ subnet: '10.76.1.0/24', gateway: '10.76.1.1/24' }]], 'device web: runtimeConfig.ipRanges[0][0].gateway: must be an IPv4 or IPv6 address (got "10.76.1.1/24")'],
  ] as [unknown, string][]) {
    const err = thrown(() => checkNetworkPolicy([network({ ipRanges: bad })], p));
    t.ok(err instanceof ConfigError, `${JSON.stringify(bad)}: a ConfigError`);
    t.equal(err.message, message);
  }
  t.doesNotThrow(() => checkNetworkPolicy([network({ ipRanges: [[{ subnet: '128.0.0.0/1' }]] }, [], 'config')], defaultPolicy()), 'config.json: every host address by default');
});
