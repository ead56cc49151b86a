// The extension fields of DESIGN "Extensions" (issue 3): type, mtu, mac, master, mode, addresses,
// as the schema in spec/ and the meaning checks in src/config accept and refuse them, the
// annotation source, and the hooks.d file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import t, { Test } from 'tap';
import { ConfigError } from '../../src/errors';
import { ANNOTATION, loadContainerRequest, parseNetDevices } from '../../src/config/load';
import { show } from '../../src/errors';
import type { DeviceSpec, OciState } from '../../src/config/types';
import { hooksDConfig } from '../../src/oci/hooks';
import { DEFAULT_HOOK_TIMEOUT_S } from '../../src/engine/watchdog';

const REPO = path.resolve(__dirname, '../../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-ext-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** parseNetDevices must throw one ConfigError naming `device` and `field` in ctx and in its text. */
function rejects(t: Test, obj: unknown, device: string, field: string, message: RegExp): void {
  let err: unknown;
  try {
    parseNetDevices(obj, 'config');
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ConfigError)) {
    t.fail(`expected a ConfigError for ${JSON.stringify(obj)}, got ${String(err)}`);
    return;
  }
  t.equal(err.device, device, `${err.message}: names device ${device}`);
  t.equal(err.field, field, `${err.message}: names field ${field}`);
  t.ok(err.message.startsWith(`device ${show(device)}: ${field}: `), `message starts with the device and the field: ${err.message}`);
  t.match(err.message, message);
  t.notMatch(err.message, /\n/, 'one line');
}

const one = (obj: Record<string, object>): DeviceSpec => {
  const specs = parseNetDevices(obj, 'config');
  if (specs.length !== 1) throw new Error('one device expected');
  return specs[0];
};

t.test('accepts every documented form', async (t) => {
  t.same(one({ eth1: {} }), { key: 'eth1', kind: 'host', name: 'eth1', source: 'config' }, 'type defaults to host');
  t.same(one({ eth1: { type: 'host', name: 'c1', mtu: 68, mac: '02:00:00:00:00:01' } }), {
    key: 'eth1', kind: 'host', name: 'c1', mtu: 68, mac: '02:00:00:00:00:01', source: 'config',
  }, 'host with mtu and mac');
  t.equal(one({ eth1: { mtu: 65535 } }).mtu, 65535, 'mtu 65535 is the top');
  t.same(one({ vh0: { type: 'veth', name: 'eth0', mtu: 9000, mac: '0A:BB:CC:DD:EE:FF', addresses: ['10.1.0.2/24', 'FD00::2/64'] } }), {
    key: 'vh0', kind: 'veth', name: 'eth0', mtu: 9000, mac: '0a:bb:cc:dd:ee:ff', addresses: ['10.1.0.2/24', 'FD00::2/64'], source: 'config',
  }, 'veth with every field; mac normalised to lower case');
  t.same(one({ vh1: { type: 'veth' } }), { key: 'vh1', kind: 'veth', name: 'vh1', source: 'config' }, 'bare veth keeps the key as container name');
  t.same(one({ mv0: { type: 'macvlan', master: 'nic0' } }), {
    key: 'mv0', kind: 'macvlan', name: 'mv0', master: 'nic0', mode: 'bridge', source: 'config',
  }, 'macvlan mode defaults to bridge');
  for (const mode of ['bridge', 'private', 'vepa', 'passthru'] as const) {
    t.equal(one({ mv0: { type: 'macvlan', master: 'nic0', mode } }).mode, mode, `macvlan mode ${mode}`);
  }
  t.same(one({ mv0: { type: 'macvlan', master: 'nic0', mode: 'vepa', name: 'm%d', mtu: 1400, mac: 'AE:00:00:00:00:01', addresses: ['192.0.2.1/32', '::2/128'] } }), {
    key: 'mv0', kind: 'macvlan', name: 'm%d', master: 'nic0', mode: 'vepa', mtu: 1400, mac: 'ae:00:00:00:00:01',
    addresses: ['192.0.2.1/32', '::2/128'], source: 'config',
  }, 'macvlan with every field');
  t.same(one({ v: { type: 'veth', addresses: [] } }).addresses, [], 'an empty address list is fine');
  const mixed = parseNetDevices({
    eth1: { mtu: 1400 },
    vh0: { type: 'veth', name: 'c0' },
    mv0: { type: 'macvlan', master: 'eth2', name: 'c1' },
  }, 'annotation');
  t.same(mixed.map((d) => [d.key, d.kind, d.source]), [['eth1', 'host', 'annotation'], ['vh0', 'veth', 'annotation'], ['mv0', 'macvlan', 'annotation']], 'a mixed object keeps its order');
});

t.test('rejects each bad form, naming the device and the field', async (t) => {
  rejects(t, { eth1: { mac: '02:00:00:00:00' } }, 'eth1', 'mac', /must be a MAC address xx:xx:xx:xx:xx:xx \(got "02:00:00:00:00"\)/);
  rejects(t, { eth1: { mac: '02-00-00-00-00-01' } }, 'eth1', 'mac', /must be a MAC address/);
  rejects(t, { eth1: { mac: 'zz:00:00:00:00:01' } }, 'eth1', 'mac', /must be a MAC address/);
  rejects(t, { eth1: { mac: 2 } }, 'eth1', 'mac', /must be a MAC address/);
  rejects(t, { vh0: { type: 'veth', mac: '01:00:5e:00:00:01' } }, 'vh0', 'mac', /must be a unicast address \(got 01:00:5e:00:00:01\)/);
  rejects(t, { vh0: { type: 'veth', mac: '33:33:00:00:00:01' } }, 'vh0', 'mac', /must be a unicast address/);
  rejects(t, { mv0: { type: 'macvlan', master: 'n', mac: 'FF:FF:FF:FF:FF:FF' } }, 'mv0', 'mac', /must be a unicast address \(got ff:ff:ff:ff:ff:ff\)/);
  rejects(t, { eth1: { mac: '00:00:00:00:00:00' } }, 'eth1', 'mac', /must not be all zeros/);

  rejects(t, { eth1: { mtu: 67 } }, 'eth1', 'mtu', /must be an integer from 68 to 65535 \(got 67\)/);
  rejects(t, { vh0: { type: 'veth', mtu: 65536 } }, 'vh0', 'mtu', /must be an integer from 68 to 65535 \(got 65536\)/);
  rejects(t, { vh0: { type: 'veth', mtu: 1500.5 } }, 'vh0', 'mtu', /must be an integer from 68 to 65535/);
  rejects(t, { vh0: { type: 'veth', mtu: '1500' } }, 'vh0', 'mtu', /must be an integer from 68 to 65535 \(got "1500"\)/);

  rejects(t, { mv0: { type: 'macvlan' } }, 'mv0', 'master', /is required for type macvlan/);
  rejects(t, { mv0: { type: 'macvlan', master: 'nic0', mode: 'source' } }, 'mv0', 'mode', /must be one of bridge, private, vepa, passthru \(got "source"\)/);
  rejects(t, { mv0: { type: 'macvlan', master: 'nic0', mode: 'passthru', mac: '02:00:00:00:00:01' } }, 'mv0', 'mac', /not allowed for macvlan mode passthru/);
  rejects(t, { mv0: { type: 'macvlan', master: 'bad name' } }, 'mv0', 'master', /must not contain whitespace/);
  rejects(t, { mv0: { type: 'macvlan', master: 'a'.repeat(16) } }, 'mv0', 'master', /master: is 16 bytes; at most 15 are allowed \(got "a{16}"\)$/);
  rejects(t, { vh0: { type: 'veth', master: 'nic0' } }, 'vh0', 'master', /only allowed for type macvlan/);
  rejects(t, { vh0: { type: 'veth', mode: 'bridge' } }, 'vh0', 'mode', /only allowed for type macvlan/);
  rejects(t, { eth1: { addresses: ['10.0.0.1/24'] } }, 'eth1', 'addresses', /only allowed for type veth or macvlan/);
  rejects(t, { x0: { type: 'bond' } }, 'x0', 'type', /must be one of host, veth, macvlan, cni \(got "bond"\)/);

  rejects(t, { vh0: { type: 'veth', addresses: ['10.0.0.1'] } }, 'vh0', 'addresses[0]', /must be a CIDR/);
  rejects(t, { vh0: { type: 'veth', addresses: ['10.0.0.1/24', 'fd00::1/129'] } }, 'vh0', 'addresses[1]', /IPv6 prefix length from 0 to 128/);
  rejects(t, { vh0: { type: 'veth', addresses: ['10.0.0.1/33'] } }, 'vh0', 'addresses[0]', /IPv4 prefix length from 0 to 32/);
  rejects(t, { mv0: { type: 'macvlan', master: 'n', addresses: ['300.0.0.1/24'] } }, 'mv0', 'addresses[0]', /IPv4 or IPv6 address/);
  rejects(t, { mv0: { type: 'macvlan', master: 'n', addresses: ['host.example/24'] } }, 'mv0', 'addresses[0]', /IPv4 or IPv6 address/);
  rejects(t, { mv0: { type: 'macvlan', master: 'n', addresses: '10.0.0.1/24' } }, 'mv0', 'addresses', /must be an array of CIDR strings/);

  rejects(t, { eth1: { nmae: 'c0' } }, 'eth1', 'nmae', /^device eth1: nmae: unknown field$/);
  rejects(t, { vh0: { type: 'veth', peer: 'x' } }, 'vh0', 'peer', /unknown field/);
  rejects(t, { mv0: { type: 'macvlan', master: 'n', vlan: 5 } }, 'mv0', 'vlan', /unknown field/);

  rejects(t, { 'veth/0': { type: 'veth' } }, 'veth/0', 'key', /must not contain '\/'/);
  rejects(t, { 'vethxxxxxxxxxxxx': { type: 'veth' } }, 'vethxxxxxxxxxxxx', 'key', /key: is 16 bytes; at most 15 are allowed$/);
  rejects(t, { 'veth%d': { type: 'veth' } }, 'veth%d', 'key', /must not contain '%'/);
  rejects(t, { 'v 0': { type: 'veth' } }, 'v 0', 'key', /whitespace/);
  rejects(t, { vh0: { type: 'veth', name: 'c:0' } }, 'vh0', 'name', /must not contain ':'/);
});

t.test('the annotation is merged with linux.netDevices', async (t) => {
  let n = 0;
  const bundle = (netDevices: object, annotation?: string): OciState => {
    const dir = path.join(tmp, `b${++n}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ linux: { netDevices, namespaces: [{ type: 'network' }] } }));
    return {
      ociVersion: '1.0.2', id: `c${n}`, status: 'creating', pid: 1, bundle: dir,
      ...(annotation === undefined ? {} : { annotations: { [ANNOTATION]: annotation } }),
    };
  };
  const req = loadContainerRequest(bundle({ eth1: { mtu: 1400 } }, JSON.stringify({
    vh0: { type: 'veth', name: 'c0', mac: '02:AA:00:00:00:01' },
    mv0: { type: 'macvlan', master: 'nic0', mode: 'private' },
  })));
  t.same(req.devices.map((d) => [d.key, d.kind, d.source, d.mac]), [
    ['eth1', 'host', 'config', undefined],
    ['vh0', 'veth', 'annotation', '02:aa:00:00:00:01'],
    ['mv0', 'macvlan', 'annotation', undefined],
  ], 'both sources, config first, the annotation validated by the same schema');
  t.same(loadContainerRequest(bundle({}, '{"x":{}}')).devices.map((d) => d.key), ['x'], 'the annotation alone');

  const fails = (state: OciState, message: RegExp, device?: string, field?: string) => {
    try {
      loadContainerRequest(state);
      t.fail(`expected ${message}`);
    } catch (err) {
      t.type(err, ConfigError);
      t.match((err as Error).message, message);
      if (device !== undefined) t.equal((err as ConfigError).device, device);
      if (field !== undefined) t.equal((err as ConfigError).field, field);
    }
  };
  fails(bundle({ eth1: {} }, '{"eth1": {"type": "host"}}'), /^device eth1: key: given in both linux.netDevices and annotation oci-netdev.netDevices$/, 'eth1', 'key');
  fails(bundle({}, '{"x": '), /^annotation oci-netdev.netDevices: invalid JSON: /);
  fails(bundle({}, "{'x': {}}"), /^annotation oci-netdev.netDevices: invalid JSON: /);
  fails(bundle({}, ''), /^annotation oci-netdev.netDevices: empty, expected JSON$/);
  fails(bundle({}, '[]'), /^annotation oci-netdev.netDevices: must be an object/);
  fails(bundle({}, '{"vh0": {"type": "veth", "mtu": 67}}'), /^device vh0: mtu: must be an integer from 68 to 65535 \(got 67\)$/, 'vh0', 'mtu');
  fails(bundle({}, '{"vh0": {"type": "veth", "colour": "red"}}'), /^device vh0: colour: unknown field$/, 'vh0', 'colour');
  fails(bundle({ eth1: { name: 'c0' } }, '{"vh0": {"type": "veth", "name": "c0"}}'), /^device vh0: name: container name c0 is already used by device eth1$/, 'vh0', 'name');
});

t.test('validators are generated at build time, not compiled at start-up', async (t) => {
  const generated = path.join(REPO, 'dist/src/schema/generated');
  t.same(fs.readdirSync(generated).sort(), ['config.js', 'journal.js', 'netDevices.js', 'policy.js', 'state.js'], 'one file per schema');
  for (const file of fs.readdirSync(generated)) {
    t.notMatch(fs.readFileSync(path.join(generated, file), 'utf8'), /require\(["']ajv/, `${file} does not load ajv`);
  }
  t.match(fs.readFileSync(path.join(generated, 'netDevices.js'), 'utf8'), /passthru/, 'and netDevices.js holds the netDevices schema');
  const schemaJs = fs.readFileSync(path.join(REPO, 'dist/src/schema/validate.js'), 'utf8');
  t.notMatch(schemaJs, /require\(["']ajv/, 'nor does the module that runs them');
});

t.test('hooks-d prints a hooks.d 1.0.0 file for podman and CRI-O', async (t) => {
  const r = spawnSync(path.join(REPO, 'bin/oci-netdev'), ['--state-dir', '/run/ondt-x', 'hooks-d'], {
    encoding: 'utf8', env: { ...process.env, OCI_NETDEV_TIMEOUT: '' },
  });
  t.equal(r.status, 0, 'exits 0');
  t.equal(r.stderr, '', 'nothing on stderr');
  const hook = JSON.parse(r.stdout);
  t.same(hook, {
    version: '1.0.0',
    hook: {
      path: path.join(REPO, 'bin/oci-netdev'), args: ['oci-netdev', '--state-dir', '/run/ondt-x', 'hook'],
      env: [`PATH=${path.dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`],
      timeout: DEFAULT_HOOK_TIMEOUT_S + 5,
    },
    when: { annotations: { '^oci-netdev\\.netDevices$': '.*' } },
    stages: ['createRuntime', 'poststop'],
  });
  t.ok(path.isAbsolute(hook.hook.path) && fs.existsSync(hook.hook.path), 'the hook path is the absolute path of the binary');
  t.equal(hook.hook.path, path.join(REPO, 'bin/oci-netdev'));
  t.same(hooksDConfig({ path: hook.hook.path, args: [], timeoutSeconds: 30.5, timeoutGiven: true }), {
    ...hook, hook: { ...hook.hook, args: ['oci-netdev', 'hook'], env: [hook.hook.env[0], 'OCI_NETDEV_TIMEOUT=30.5'], timeout: 36 },
  }, 'without --state-dir the default applies; a given timeout goes to the runtime (rounded up, plus a margin) and to the hook\'s watchdog');
  const re = new RegExp(Object.keys(hook.when.annotations)[0]);
  t.ok(re.test(ANNOTATION), 'the when regex matches the annotation');
  t.notOk(re.test('oci-netdevXnetDevices') || re.test(`${ANNOTATION}.extra`), 'and nothing else');
});
