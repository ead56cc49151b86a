// The CNI plugin front door without the kernel: environment validation, version negotiation,
// config decoding, error codes, and results in every supported version.
import t, { Test } from 'tap';
import { readCniEnv } from '../../src/cni/env';
import { decodeJson, decodeNetConf, defaultHostName, negotiate } from '../../src/cni/netconf';
import { runPlugin, toCniError } from '../../src/cni/plugin';
import { CniCode, CniError, SUPPORTED_VERSIONS, toVersion } from '../../src/libcni/spec';
import type { CniResult } from '../../src/libcni/spec';
import { ConfigError, DeviceBusyError, PlanError } from '../../src/errors';

function throwsCode(t: Test, fn: () => unknown, code: number, msg: RegExp): void {
  try {
    fn();
    t.fail(`expected code ${code}`);
  } catch (e) {
    t.ok(e instanceof CniError, 'a CniError');
    t.equal((e as CniError).cniCode, code, `code ${code}: ${(e as Error).message}`);
    t.match((e as Error).message, msg);
  }
}

const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };

t.test('environment: the variables each command needs, a valid CNI_IFNAME, CNI_ARGS pairs', async (t) => {
  t.match(readCniEnv(ENV), { command: 'ADD', containerId: 'c1', netns: '/run/netns/x', ifname: 'eth0', path: ['/opt/cni/bin', '/usr/lib/cni'], args: [] });
  throwsCode(t, () => readCniEnv({ ...ENV, CNI_COMMAND: 'FROB' }), 4, /CNI_COMMAND/);
  throwsCode(t, () => readCniEnv({ ...ENV, CNI_NETNS: '', CNI_CONTAINERID: '' }), 4, /CNI_CONTAINERID, CNI_NETNS/);
  throwsCode(t, () => readCniEnv({ ...ENV, CNI_PATH: undefined }), 4, /CNI_PATH/);
  t.notOk(readCniEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, 'DEL needs no CNI_NETNS');
  throwsCode(t, () => readCniEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_IFNAME: '' }), 4, /CNI_IFNAME/);
  for (const bad of ['a/b', 'a:b', 'a b', '.', '..', 'abcdefghijklmnop']) {
    throwsCode(t, () => readCniEnv({ ...ENV, CNI_IFNAME: bad }), 4, /CNI_IFNAME/);
  }
  throwsCode(t, () => readCniEnv({ ...ENV, CNI_NETNS: 'relative' }), 4, /CNI_NETNS/);
  throwsCode(t, () => readCniEnv({ ...ENV, CNI_ARGS: 'novalue' }), 4, /CNI_ARGS/);
  t.same(readCniEnv({ ...ENV, CNI_ARGS: 'IgnoreUnknown=1;MAC=02:00:00:00:00:01' }).args, [['IgnoreUnknown', '1'], ['MAC', '02:00:00:00:00:01']]);
  t.match(readCniEnv({ CNI_COMMAND: 'VERSION' }), { command: 'VERSION' }, 'VERSION needs nothing else');
  t.match(readCniEnv({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_ARGS: 'x' }), { command: 'VERSION' },
    'and ignores the placeholders libcni probes with');
  t.match(readCniEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/x' }), { command: 'GC' }, 'GC needs CNI_PATH only');
});

t.test('version negotiation: an exact supported version, and the verbs each version has', async (t) => {
  for (const v of SUPPORTED_VERSIONS) t.equal(negotiate(v, 'ADD'), v, `${v} is served`);
  for (const bad of ['0.3', '1.2.0', '2.0.0', '']) throwsCode(t, () => negotiate(bad, 'ADD'), 1, /incompatible/);
  throwsCode(t, () => negotiate('0.3.1', 'CHECK'), 1, /CHECK/);
  t.equal(negotiate('0.4.0', 'CHECK'), '0.4.0');
  for (const cmd of ['GC', 'STATUS'] as const) {
    throwsCode(t, () => negotiate('1.0.0', cmd), 1, new RegExp(cmd));
    t.equal(negotiate('1.1.0', cmd), '1.1.0');
  }
  t.equal(decodeNetConf({ name: 'n', device: 'x' }, 'ADD').cniVersion, '0.1.0', 'no cniVersion reads as 0.1.0, as libcni does');
});

t.test('config decoding: our keys checked and named (code 7), unknown keys ignored, bad JSON code 6', async (t) => {
  throwsCode(t, () => decodeJson('{"cniVersion":'), 6, /JSON/);
  throwsCode(t, () => decodeJson('[1]'), 6, /object/);
  const base = { cniVersion: '1.0.0', name: 'net', type: 'oci-netdev' };
  t.match(decodeNetConf({ ...base, device: 'eth1', extra: { anything: true } }, 'ADD'), { kind: 'host', pick: { by: 'device', value: 'eth1' } }, 'unknown keys are ignored');
  t.match(decodeNetConf({ ...base, hwaddr: '02:AA:00:00:00:01' }, 'ADD').pick, { by: 'hwaddr' });
  t.match(decodeNetConf({ ...base, pciBusID: '0000:3b:00.1' }, 'ADD').pick, { by: 'pciBusID', value: '0000:3b:00.1' });
  t.match(decodeNetConf({ ...base, kernelpath: '/sys/devices/pci0000:00/0000:00:03.0' }, 'ADD').pick, { by: 'kernelpath' });
  t.match(decodeNetConf({ ...base, device: 'eth1', runtimeConfig: { deviceID: '0000:3b:02.3' } }, 'ADD').pick, { by: 'pciBusID', value: '0000:3b:02.3' },
    'runtimeConfig.deviceID wins');
  t.equal(decodeNetConf({ ...base, device: 'eth1', mac: '02:00:00:00:00:0A', runtimeConfig: { mac: '02:00:00:00:00:0B' } }, 'ADD').mac, '02:00:00:00:00:0b',
    'runtimeConfig.mac wins over mac, lower case');
  t.match(decodeNetConf({ ...base, kind: 'macvlan', master: 'eth2' }, 'ADD'), { kind: 'macvlan', master: 'eth2', mode: 'bridge' });
  t.match(decodeNetConf({ ...base, kind: 'veth', hostName: 'vh0', ipam: { type: 'host-local' } }, 'ADD'), { kind: 'veth', hostName: 'vh0', ipamType: 'host-local' });
  const cases: [string, object, RegExp][] = [
    ['no name', { ...base, name: undefined, device: 'eth1' }, /name/],
    ['no device', base, /device/],
    ['two selectors', { ...base, device: 'eth1', hwaddr: '02:00:00:00:00:01' }, /device and hwaddr/],
    ['a bad device name', { ...base, device: 'a/b' }, /device/],
    ['a bad kind', { ...base, kind: 'ipvlan' }, /kind/],
    ['a bad mtu', { ...base, device: 'eth1', mtu: 20 }, /mtu/],
    ['a mtu of the wrong type', { ...base, device: 'eth1', mtu: '1500' }, /mtu/],
    ['a bad mac', { ...base, device: 'eth1', mac: 'zz' }, /mac/],
    ['a bad runtimeConfig.mac', { ...base, device: 'eth1', runtimeConfig: { mac: 1 } }, /runtimeConfig\.mac/],
    ['a bad deviceID', { ...base, runtimeConfig: { deviceID: 'x' } }, /runtimeConfig\.deviceID/],
    ['a bad kernelpath', { ...base, kernelpath: '/etc' }, /kernelpath/],
    ['macvlan without master', { ...base, kind: 'macvlan' }, /master/],
    ['a bad mode', { ...base, kind: 'macvlan', master: 'eth2', mode: 'l2' }, /mode/],
    ['a selector on veth', { ...base, kind: 'veth', device: 'eth1' }, /device/],
    ['hostName on host', { ...base, device: 'eth1', hostName: 'x' }, /hostName/],
    ['ipam not an object', { ...base, device: 'eth1', ipam: 'host-local' }, /ipam/],
    ['a bad prevResult', { ...base, device: 'eth1', prevResult: { ips: 3 } }, /prevResult/],
    ['bad valid-attachments', { ...base, device: 'eth1', 'cni.dev/valid-attachments': [{ containerID: 1 }] }, /valid-attachments/],
    ['a relative stateDir', { ...base, device: 'eth1', stateDir: 'state' }, /stateDir/],
  ];
  for (const [what, conf, msg] of cases) {
    t.test(what, async (t) => throwsCode(t, () => decodeNetConf(conf as Record<string, unknown>, 'ADD'), 7, msg));
  }
  t.match(defaultHostName('c1', 'eth0'), /^veth[0-9a-f]{11}$/, 'a default veth host name fits IFNAMSIZ');
  t.equal(defaultHostName('c1', 'eth0'), defaultHostName('c1', 'eth0'), 'and is stable');
  t.not(defaultHostName('c1', 'eth0'), defaultHostName('c1', 'eth1'), 'and differs by interface');
});

t.test('error codes: config 7, a held device 11, the engine 100, anything else 999', async (t) => {
  t.equal(toCniError(new ConfigError('bad')).cniCode, CniCode.invalidConfig);
  const busy = toCniError(new DeviceBusyError('eth1', 'ctr-a'));
  t.equal(busy.cniCode, CniCode.tryAgainLater);
  t.match(busy.message, 'held by container ctr-a', 'naming the owner');
  t.equal(toCniError(new PlanError('no')).cniCode, CniCode.engine);
  t.equal(toCniError(new TypeError('bug')).cniCode, CniCode.internal);
  const e = new CniError(CniCode.decode, 'x');
  t.equal(toCniError(e), e, 'a CniError passes as it is');
  t.same(new CniError(11, 'm', 'd').toJSON('1.0.0'), { cniVersion: '1.0.0', code: 11, msg: 'm', details: 'd' });
});

/** runPlugin with `env` and `stdin`; its exit status and stdout, parsed. */
function run(env: NodeJS.ProcessEnv, stdin: string): { status: number; out: Record<string, unknown> } {
  let stdout = '';
  const status = runPlugin({ env, stdin, stdout: (s) => (stdout += s), stderr: () => undefined });
  return { status, out: JSON.parse(stdout) as Record<string, unknown> };
}

t.test('the plugin prints errors as JSON on stdout with exit 1, before touching anything', async (t) => {
  t.same(run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}'), { status: 0, out: { cniVersion: '0.4.0', supportedVersions: [...SUPPORTED_VERSIONS] } }, 'VERSION');
  t.same(run({ CNI_COMMAND: 'VERSION' }, ''), { status: 0, out: { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] } }, 'VERSION without a config');
  t.match(run({ ...ENV }, 'not json'), { status: 1, out: { cniVersion: '1.1.0', code: 6 } }, 'undecodable JSON: code 6');
  t.match(run({ ...ENV }, '{"cniVersion":"9.9.9","name":"n"}'), { status: 1, out: { code: 1, msg: /9\.9\.9/ } }, 'an unsupported version: code 1');
  t.match(run({ ...ENV, CNI_IFNAME: '' }, '{"cniVersion":"0.3.1","name":"n"}'), { status: 1, out: { code: 4, msg: /CNI_IFNAME/ } }, 'missing variables: code 4');
  t.match(run({ ...ENV }, '{"cniVersion":"0.3.1","name":"n","device":"eth1","mtu":-1}'), { status: 1, out: { cniVersion: '0.3.1', code: 7, msg: /mtu/ } },
    'a bad key: code 7, in the config\'s version');
  t.match(run({ ...ENV, CNI_ARGS: 'FOO=1' }, '{"cniVersion":"1.0.0","name":"n","device":"eth1"}'), { status: 1, out: { code: 2, msg: /FOO=1/ } },
    'an unknown CNI_ARGS key without IgnoreUnknown: code 2 naming key and value');
});

t.test('an ADD result in every supported version', async (t) => {
  const result: CniResult = {
    cniVersion: '1.1.0',
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1400, sandbox: '/run/netns/x' }],
    ips: [{ address: '10.1.0.2/24', gateway: '10.1.0.1', interface: 0 }, { address: 'fd00::2/64', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
  };
  for (const v of SUPPORTED_VERSIONS) {
    const out = toVersion(result, v);
    t.equal(out.cniVersion, v, `${v}: cniVersion`);
    if (v === '0.1.0' || v === '0.2.0') {
      t.same(out.ip4, { ip: '10.1.0.2/24', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }] }, `${v}: ip4`);
      t.same(out.ip6, { ip: 'fd00::2/64', routes: [] }, `${v}: ip6`);
      t.notOk('interfaces' in out, `${v}: no interfaces`);
    } else {
      t.same(out.interfaces, result.interfaces, `${v}: interfaces`);
      const legacy = v !== '1.0.0' && v !== '1.1.0';
      t.same((out.ips as { version?: string }[]).map((i) => i.version), legacy ? ['4', '6'] : [undefined, undefined], `${v}: ips[].version ${legacy ? 'present' : 'absent'}`);
    }
  }
});

t.test('hostile input: ids, names and paths that could reach another attachment or plugin are refused, naming the key', async (t) => {
  for (const id of ['a/../../b', '..', '.hidden', 'a\nb', 'a:b', 'a b', 'é']) {
    throwsCode(t, () => readCniEnv({ ...ENV, CNI_CONTAINERID: id }), 4, /CNI_CONTAINERID/);
  }
  t.equal(readCniEnv({ ...ENV, CNI_CONTAINERID: 'A1_b.c-d' }).containerId, 'A1_b.c-d', 'libcni\'s characters pass');
  throwsCode(t, () => readCniEnv({ ...ENV, CNI_PATH: '/opt/cni/bin:bin' }), 4, /CNI_PATH.*"bin"/);
  t.same(readCniEnv({ ...ENV, CNI_PATH: '/opt/cni/bin::' }).path, ['/opt/cni/bin'], 'empty CNI_PATH entries are skipped, not taken for the current dir');
  const base = { cniVersion: '1.0.0', name: 'net', type: 'oci-netdev', device: 'eth1' };
  for (const name of ['a:b', '../x', 'a/b', '-x', 'a\nb']) throwsCode(t, () => decodeNetConf({ ...base, name }, 'ADD'), 7, /name/);
  for (const type of ['../x', '/bin/true', '.', '..']) throwsCode(t, () => decodeNetConf({ ...base, ipam: { type } }, 'ADD'), 7, /ipam\.type/);
  for (const mac of ['01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00']) {
    throwsCode(t, () => decodeNetConf({ ...base, mac }, 'ADD'), 7, /^network config: mac: must be a unicast/);
    throwsCode(t, () => decodeNetConf({ ...base, runtimeConfig: { mac } }, 'ADD'), 7, /runtimeConfig\.mac/);
  }
  for (const mtu of [67, 65536, 1.5, -1]) throwsCode(t, () => decodeNetConf({ ...base, mtu }, 'ADD'), 7, /mtu/);
  throwsCode(t, () => decodeJson(`{"x":${'['.repeat(65)}${']'.repeat(65)}}`), 6, /deeper than 64/);
  t.ok(decodeJson(`{"x":${'['.repeat(63)}${']'.repeat(63)}}`), '64 levels pass');
  t.ok(decodeJson(`{"x":"${'['.repeat(1000)}"}`), 'brackets inside a string do not count');
  throwsCode(t, () => decodeJson(`{"x":"${'x'.repeat(1 << 20)}"}`), 6, /bytes of JSON; at most 1048576/);
});
