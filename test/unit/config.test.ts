import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { ConfigError } from '../../src/errors';
import {
  parseNetEntries,
  ANNOTATION,
  MAX_ANNOTATION_BYTES,
  MAX_CONFIG_BYTES,
  loadContainerRequest,
  parseNetDevices,
  validateConfigFile,
} from '../../src/config/load';
import type { OciState } from '../../src/config/types';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-config-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let bundles = 0;

/** A bundle directory holding `config` (an object, or raw text), and a state pointing at it. */
function bundle(config: unknown, annotations?: Record<string, string>): OciState {
  const dir = path.join(tmp, `b${++bundles}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return { ociVersion: '1.0.2', id: `c${bundles}`, status: 'creating', pid: 42, bundle: dir, annotations };
}

/** parseNetDevices must throw a ConfigError with exactly this message, device and field. */
function rejects(t: tap.Test, obj: unknown, device: string | undefined, field: string | undefined, message: string | RegExp) {
  const err = t.throws(() => parseNetDevices(obj, 'config'), ConfigError) as ConfigError;
  if (!(err instanceof ConfigError)) return;
  if (typeof message === 'string') t.equal(err.message, message);
  else t.match(err.message, message);
  t.equal(err.device, device, 'ctx device');
  t.equal(err.field, field, 'ctx field');
  t.notMatch(err.message, /\n/, 'one line');
  t.notMatch(err.message, /\(got .*\(got /, 'the value is shown once');
}

t.test('accepts every documented form', async (t) => {
  const devices = parseNetDevices(
    {
      eth1: {},
      eth2: { name: 'ceth2' },
      eth3: { name: 'net%d', mtu: 9000, mac: 'AA:BB:cc:dd:ee:01' },
      veth0: { type: 'veth', name: 'c0', mtu: 1500, mac: '02:00:00:00:00:01', addresses: ['10.1.0.2/24', 'fd00::2/64'] },
      mv0: { type: 'macvlan', master: 'br0', name: 'm0' },
      mv1: { type: 'macvlan', master: 'br0', mode: 'passthru', addresses: ['192.168.1.5/32', '::1/128', '0.0.0.0/0'] },
      eth4: { type: 'host' },
    },
    'config',
  );
  t.same(devices, [
    { key: 'eth1', kind: 'host', name: 'eth1', source: 'config' },
    { key: 'eth2', kind: 'host', name: 'ceth2', source: 'config' },
    { key: 'eth3', kind: 'host', name: 'net%d', mtu: 9000, mac: 'aa:bb:cc:dd:ee:01', source: 'config' },
    {
      key: 'veth0',
      kind: 'veth',
      name: 'c0',
      mtu: 1500,
      mac: '02:00:00:00:00:01',
      addresses: ['10.1.0.2/24', 'fd00::2/64'],
      source: 'config',
    },
    { key: 'mv0', kind: 'macvlan', name: 'm0', master: 'br0', mode: 'bridge', source: 'config' },
    {
      key: 'mv1',
      kind: 'macvlan',
      name: 'mv1',
      master: 'br0',
      mode: 'passthru',
      addresses: ['192.168.1.5/32', '::1/128', '0.0.0.0/0'],
      source: 'config',
    },
    { key: 'eth4', kind: 'host', name: 'eth4', source: 'config' },
  ]);
  t.same(parseNetDevices({}, 'annotation'), []);
  t.equal(parseNetDevices({ a: { mtu: 68 }, b: { mtu: 65535 } }, 'annotation')[1].source, 'annotation');
  t.equal(parseNetDevices({ a: { name: 'x%d' }, b: { name: 'x%d' } }, 'config').length, 2, 'templates may repeat');
});

t.test('rejects bad fields naming the device and the field', async (t) => {
  rejects(t, { eth1: { mac: 'aa:bb:cc:dd:ee' } }, 'eth1', 'mac', 'device eth1: mac: must be a MAC address xx:xx:xx:xx:xx:xx (got "aa:bb:cc:dd:ee")');
  rejects(t, { eth1: { mac: 'aa-bb-cc-dd-ee-ff' } }, 'eth1', 'mac', /device eth1: mac: must be a MAC address/);
  rejects(t, { eth1: { mac: 'gg:bb:cc:dd:ee:ff' } }, 'eth1', 'mac', /device eth1: mac: must be a MAC address/);
  rejects(t, { eth1: { mac: '01:00:5E:00:00:01' } }, 'eth1', 'mac', 'device eth1: mac: must be a unicast address (got 01:00:5e:00:00:01)');
  rejects(t, { eth1: { mac: 'ff:ff:ff:ff:ff:ff' } }, 'eth1', 'mac', /must be a unicast address/);
  rejects(t, { eth1: { mac: '00:00:00:00:00:00' } }, 'eth1', 'mac', /must not be all zeros/);
  rejects(t, { eth1: { mtu: 67 } }, 'eth1', 'mtu', 'device eth1: mtu: must be an integer from 68 to 65535 (got 67)');
  rejects(t, { eth1: { mtu: 65536 } }, 'eth1', 'mtu', 'device eth1: mtu: must be an integer from 68 to 65535 (got 65536)');
  rejects(t, { eth1: { mtu: 1500.5 } }, 'eth1', 'mtu', 'device eth1: mtu: must be an integer from 68 to 65535 (got 1500.5)');
  rejects(t, { eth1: { mtu: '1500' } }, 'eth1', 'mtu', /device eth1: mtu: must be an integer .*\(got "1500"\)/);
  rejects(t, { mv0: { type: 'macvlan' } }, 'mv0', 'master', 'device mv0: master: is required for type macvlan');
  rejects(t, { mv0: { type: 'macvlan', master: 'br0', mode: 'source' } }, 'mv0', 'mode', 'device mv0: mode: must be one of bridge, private, vepa, passthru (got "source")');
  rejects(t, { v0: { type: 'bridge' } }, 'v0', 'type', 'device v0: type: must be one of host, veth, macvlan, cni (got "bridge")');
  rejects(t, { v0: { type: 'veth', addresses: ['10.0.0.1'] } }, 'v0', 'addresses[0]', /device v0: addresses\[0\]: must be a CIDR/);
  rejects(t, { v0: { type: 'veth', addresses: ['10.0.0.1/24', '10.0.0.1/33'] } }, 'v0', 'addresses[1]', 'device v0: addresses[1]: must have an IPv4 prefix length from 0 to 32 (got "10.0.0.1/33")');
  rejects(t, { v0: { type: 'veth', addresses: ['fd00::1/129'] } }, 'v0', 'addresses[0]', /IPv6 prefix length from 0 to 128/);
  rejects(t, { v0: { type: 'veth', addresses: ['10.0.0.256/24'] } }, 'v0', 'addresses[0]', /IPv4 or IPv6 address/);
  rejects(t, { v0: { type: 'veth', addresses: ['fe80::1%eth0/64'] } }, 'v0', 'addresses[0]', /IPv4 or IPv6 address/);
  rejects(t, { v0: { type: 'veth', addresses: ['10.0.0.1/024'] } }, 'v0', 'addresses[0]', /must be a CIDR/);
  rejects(t, { v0: { type: 'veth', addresses: [24] } }, 'v0', 'addresses[0]', 'device v0: addresses[0]: must be a CIDR string (got 24)');
  rejects(t, { v0: { type: 'veth', addresses: '10.0.0.1/24' } }, 'v0', 'addresses', /device v0: addresses: must be an array/);
  rejects(t, { eth1: { colour: 'red' } }, 'eth1', 'colour', 'device eth1: colour: unknown field');
  rejects(t, { eth1: 'eth2' }, 'eth1', undefined, 'device eth1: must be object (got "eth2")');
  rejects(t, { eth1: { name: 7 } }, 'eth1', 'name', 'device eth1: name: must be string (got 7)');
  rejects(t, [], undefined, undefined, /^linux.netDevices: must be an object/);
});

t.test('kind-specific fields', async (t) => {
  rejects(t, { eth1: { addresses: ['10.0.0.1/24'] } }, 'eth1', 'addresses', 'device eth1: addresses: is only allowed for type veth or macvlan');
  rejects(t, { eth1: { type: 'host', addresses: [] } }, 'eth1', 'addresses', /only allowed for type veth or macvlan/);
  rejects(t, { v0: { type: 'veth', master: 'br0' } }, 'v0', 'master', 'device v0: master: is only allowed for type macvlan (got "br0")');
  rejects(t, { eth1: { mode: 'bridge' } }, 'eth1', 'mode', /device eth1: mode: is only allowed for type macvlan/);
  rejects(t, { mv0: { type: 'macvlan', master: 'a/b' } }, 'mv0', 'master', /device mv0: master: must not contain '\/'/);
  rejects(t, { eth1: {}, mv0: { type: 'macvlan', master: 'eth1' } }, 'mv0', 'master', /eth1 must stay on the host/);
});

t.test('keys and names are kernel-valid and unique', async (t) => {
  rejects(t, { 'eth 1': {} }, 'eth 1', 'key', 'device "eth 1": key: must not contain whitespace');
  rejects(t, { ['a'.repeat(16)]: {} }, 'a'.repeat(16), 'key', /key: is 16 bytes; at most 15 are allowed$/);
  rejects(t, { '': {} }, '', 'key', 'device "": key: must not be empty');
  rejects(t, { 'eth%d': {} }, 'eth%d', 'key', /key: must not contain '%'/);
  rejects(t, { 'a\nb': {} }, 'a\nb', 'key', 'device "a\\nb": key: must not contain whitespace');
  rejects(t, { mv0: { type: 'macvlan', master: 'br0', name: 'x:y' } }, 'mv0', 'name', /device mv0: name: must not contain ':' \(got "x:y"\)/);
  rejects(t, { eth1: { name: '..' } }, 'eth1', 'name', 'device eth1: name: must not be . or .. (got "..")');
  rejects(t, { eth1: { name: 'a'.repeat(16) } }, 'eth1', 'name', `device eth1: name: is 16 bytes; at most 15 are allowed (got "${'a'.repeat(16)}")`);
  rejects(t, { eth1: { name: 'e%dx' } }, 'eth1', 'name', /name: may contain '%' only/);
  rejects(t, { eth1: { name: 'c0' }, eth2: { name: 'c0' } }, 'eth2', 'name', 'device eth2: name: container name c0 is already used by device eth1');
  rejects(t, { eth1: {}, eth2: { name: 'eth1' } }, 'eth2', 'name', /container name eth1 is already used by device eth1/);
  const tooMany = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`d${i}`, {}]));
  rejects(t, tooMany, undefined, undefined, /linux.netDevices: must be an object of at most 256 devices/);
});

t.test('loadContainerRequest reads config.json and the namespaces', async (t) => {
  const state = bundle({
    ociVersion: '1.2.0',
    process: { args: ['sh'] },
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network', path: '/run/netns/x' }],
      netDevices: { eth1: { name: 'c1' }, eth0a: {} },
    },
  });
  const req = loadContainerRequest(state);
  t.equal(req.state, state);
  t.equal(req.netnsPath, '/run/netns/x');
  t.equal(req.hasNetworkNamespace, true);
  t.same(req.devices.map((d) => [d.key, d.name, d.source]), [
    ['eth1', 'c1', 'config'],
    ['eth0a', 'eth0a', 'config'],
  ]);

  const fresh = loadContainerRequest(bundle({ linux: { namespaces: [{ type: 'network' }] } }));
  t.same([fresh.netnsPath, fresh.hasNetworkNamespace, fresh.devices], [undefined, true, []]);
  const none = loadContainerRequest(bundle({ linux: { namespaces: [{ type: 'mount' }] } }));
  t.equal(none.hasNetworkNamespace, false);
  t.equal(loadContainerRequest(bundle({})).hasNetworkNamespace, false);

  t.throws(() => loadContainerRequest(bundle({ linux: { namespaces: [{ type: 'network', path: 'rel' }] } })), {
    constructor: ConfigError,
    message: /config.json .*: linux.namespaces\[0\].path: must be an absolute path \(got "rel"\)/,
    field: 'linux.namespaces[0].path',
  });
  t.throws(() => loadContainerRequest({ ...state, bundle: 'relative/dir' }), {
    constructor: ConfigError,
    message: 'OCI state: bundle: must be an absolute path (got "relative/dir")',
  });
  t.throws(() => loadContainerRequest({ ...state, bundle: path.join(tmp, 'missing') }), {
    constructor: ConfigError,
    message: /config.json .*missing\/config.json: cannot read: ENOENT/,
  });
  t.throws(() => loadContainerRequest(bundle('{"linux": ')), { constructor: ConfigError, message: /config.json .*: invalid JSON/ });
  t.throws(() => loadContainerRequest(bundle({ linux: { netDevices: { eth1: { mtu: 1 } } } })), {
    constructor: ConfigError,
    message: 'device eth1: mtu: must be an integer from 68 to 65535 (got 1)',
  });
});

t.test('config.json over 16 MiB is refused before parsing', async (t) => {
  const state = bundle({});
  const file = path.join(state.bundle, 'config.json');
  fs.truncateSync(file, MAX_CONFIG_BYTES + 1); // sparse
  t.throws(() => loadContainerRequest(state), {
    constructor: ConfigError,
    message: /config.json .*: larger than 16 MiB \(16777217 bytes\)/,
  });
  t.throws(() => validateConfigFile(file), /larger than 16 MiB/);
});

t.test('the annotation', async (t) => {
  const ann = (obj: unknown) => ({ [ANNOTATION]: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  const config = { linux: { netDevices: { eth1: {} } } };

  // From the state, after the config's own entries.
  const req = loadContainerRequest(bundle(config, ann({ veth9: { type: 'veth' }, mv0: { type: 'macvlan', master: 'eth2' } })));
  t.same(req.devices.map((d) => [d.key, d.source]), [
    ['eth1', 'config'],
    ['veth9', 'annotation'],
    ['mv0', 'annotation'],
  ]);
  // The state's annotation wins over config.json's; config.json's is the fallback.
  const both = bundle({ ...config, annotations: ann({ fromconfig: {} }) }, ann({ fromstate: {} }));
  t.same(loadContainerRequest(both).devices.map((d) => d.key), ['eth1', 'fromstate']);
  const fallback = bundle({ ...config, annotations: ann({ fromconfig: {} }) }, { other: 'x' });
  t.same(loadContainerRequest(fallback).devices.map((d) => d.key), ['eth1', 'fromconfig']);

  t.throws(() => loadContainerRequest(bundle(config, ann('{"veth9": '))), {
    constructor: ConfigError,
    message: /^annotation oci-netdev.netDevices: invalid JSON: /,
  });
  t.throws(() => loadContainerRequest(bundle(config, ann('"x"'))), {
    message: 'annotation oci-netdev.netDevices: must be an object of at most 256 devices (got "x")',
  });
  const big = JSON.stringify({ eth5: { name: 'x'.repeat(MAX_ANNOTATION_BYTES) } });
  t.throws(() => loadContainerRequest(bundle(config, ann(big))), {
    constructor: ConfigError,
    message: `annotation oci-netdev.netDevices: larger than 64 KiB (${big.length} bytes)`,
    field: ANNOTATION,
  });
  t.throws(() => loadContainerRequest(bundle(config, ann({ eth1: { name: 'other' } }))), {
    constructor: ConfigError,
    message: 'device eth1: key: given in both linux.netDevices and annotation oci-netdev.netDevices',
    device: 'eth1',
    field: 'key',
  });
  t.throws(() => loadContainerRequest(bundle(config, ann({ eth2: { name: 'eth1' } }))), {
    message: 'device eth2: name: container name eth1 is already used by device eth1',
  });
  t.throws(() => loadContainerRequest(bundle(config, ann({ mv0: { type: 'macvlan', master: 'eth1' } }))), {
    constructor: ConfigError,
    message: /^device mv0: master: eth1 must stay on the host/,
    device: 'mv0',
    field: 'master',
  });
  t.throws(() => loadContainerRequest(bundle(config, ann({ mv0: { type: 'macvlan' } }))), {
    message: 'device mv0: master: is required for type macvlan',
  });
  const many = (from: number) => Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`d${from + i}`, {}]));
  t.throws(() => loadContainerRequest(bundle({ linux: { netDevices: many(0) } }, ann(many(200)))), {
    message: /at most 256 devices \(got 400\)/,
  });
});

t.test('validateConfigFile', async (t) => {
  const state = bundle({
    annotations: { [ANNOTATION]: JSON.stringify({ mv0: { type: 'macvlan', master: 'eth2', mode: 'private' } }) },
    linux: { netDevices: { eth1: { mac: '02:AA:00:00:00:01' } } },
  });
  t.same(validateConfigFile(path.join(state.bundle, 'config.json')).devices, [
    { key: 'eth1', kind: 'host', name: 'eth1', mac: '02:aa:00:00:00:01', source: 'config' },
    { key: 'mv0', kind: 'macvlan', name: 'mv0', master: 'eth2', mode: 'private', source: 'annotation' },
  ]);
  const bad = bundle({ linux: { netDevices: { eth1: { unknown: 1 } } } });
  t.throws(() => validateConfigFile(path.join(bad.bundle, 'config.json')), {
    constructor: ConfigError,
    message: 'device eth1: unknown: unknown field',
  });
  t.throws(() => validateConfigFile(path.join(tmp, 'nope.json')), /cannot read: ENOENT/);
  const wrong = bundle({ linux: { netDevices: [] } });
  t.throws(() => validateConfigFile(path.join(wrong.bundle, 'config.json')), {
    message: /config.json .*: linux.netDevices: must be object/,
  });
});

t.test('type cni entries: network name key, CNI_IFNAME, args, runtimeConfig and the portMappings shortcut', async (t) => {
  const { devices, networks } = parseNetEntries({
    eth1: { name: 'net1' },
    web: { type: 'cni', args: { K8S_POD_NAME: 'x' }, runtimeConfig: { bandwidth: { ingressRate: 1 } }, portMappings: [{ hostPort: 8080, containerPort: 80 }] },
    'db.net-2': { type: 'cni', name: 'eth1' },
  }, 'config');
  t.same(devices.map((d) => d.key), ['eth1'], 'devices apart');
  t.same(networks, [
    { network: 'web', ifname: 'eth0', args: [['K8S_POD_NAME', 'x']], runtimeConfig: { bandwidth: { ingressRate: 1 }, portMappings: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] }, source: 'config' },
    { network: 'db.net-2', ifname: 'eth1', args: [], runtimeConfig: {}, source: 'config' },
  ]);
  const bad = (obj: object, re: RegExp) => t.throws(() => parseNetEntries(obj, 'config'), re);
  bad({ web: { type: 'cni', mtu: 1500 } }, /device web: mtu: is not allowed for type cni/);
  bad({ eth1: { portMappings: [] } }, /device eth1: portMappings: is only allowed for type cni/);
  bad({ web: { type: 'cni', portMappings: [{ hostPort: 0, containerPort: 80 }] } }, /hostPort: must be a port from 1 to 65535/);
  bad({ web: { type: 'cni', args: { 'A;B': 'x' } } }, /device web/);
  bad({ '-bad': { type: 'cni' } }, /device -bad: key: must be a CNI network name/);
  bad({ eth1: { name: 'eth0' }, web: { type: 'cni' } }, /device web: name: container name eth0 is already used by device eth1/);
  bad({ web: { type: 'cni', portMappings: [{ hostPort: 1, containerPort: 1 }], runtimeConfig: { portMappings: [] } } }, /given both here and in runtimeConfig/);
});
