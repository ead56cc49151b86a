// --device arguments (src/config/device-arg.ts), the CDI spec (src/cdi/spec.ts), and how a hook
// gathers the --device entries of its sibling hook entries in config.json (src/config/load.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { ConfigError } from '../../src/errors';
import { deviceArgs, deviceArgSpecs, formatDeviceArg, loadContainerRequest, parseDeviceArg, splitDeviceOptions } from '../../src/config';
import type { OciState } from '../../src/config';
import { buildCdiSpec, CDI_KIND, DEFAULT_CDI_VERSION } from '../../src/cdi/spec';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-cdi-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('--device KEY[:FIELD=VALUE,...] becomes a netDevices entry', async (t) => {
  t.same(parseDeviceArg('eth1'), { key: 'eth1', entry: {} });
  t.same(parseDeviceArg('eth1:name=net1,mtu=9000,mac=02:00:00:00:00:01'), { key: 'eth1', entry: { name: 'net1', mtu: 9000, mac: '02:00:00:00:00:01' } });
  t.same(parseDeviceArg('vh0:type=veth,address=10.0.0.2/24,address=fd00::2/64'), { key: 'vh0', entry: { type: 'veth', addresses: ['10.0.0.2/24', 'fd00::2/64'] } });
  t.same(parseDeviceArg('mv0:type=macvlan,master=eth2,mode=private'), { key: 'mv0', entry: { type: 'macvlan', master: 'eth2', mode: 'private' } });

  const specs = deviceArgSpecs(['eth1:name=net1,mtu=9000', 'eth2']);
  t.same(specs, [
    { key: 'eth1', kind: 'host', name: 'net1', mtu: 9000, source: 'config' },
    { key: 'eth2', kind: 'host', name: 'eth2', source: 'config' },
  ], 'validated into specs whose source is config');
  t.same(deviceArgs(['eth1', 'eth1']), [{ key: 'eth1', entry: {} }], 'the same text twice counts once');
});

t.test('canonical text: fields in a fixed order, and it parses back', async (t) => {
  const arg = parseDeviceArg('vh0:address=10.0.0.2/24,mtu=1400,type=veth,name=e0,address=fd00::2/64');
  const text = formatDeviceArg(arg);
  t.equal(text, 'vh0:name=e0,type=veth,mtu=1400,address=10.0.0.2/24,address=fd00::2/64');
  t.same(parseDeviceArg(text), arg);
  t.equal(formatDeviceArg({ key: 'eth1', entry: {} }), 'eth1');
});

t.test('bad --device arguments: one line naming the argument, the device and the field', async (t) => {
  const cases: [string[], RegExp][] = [
    [['eth1:speed=10'], /^--device eth1:speed=10: unknown field "speed" \(fields: name, type, mtu, mac, master, mode, address, gateway, hostBridge, hostMac, hostAddress, hwaddr, pciBusID, kernelpath\)$/],
    [['eth1:mtu'], /^--device eth1:mtu: mtu needs a value \(mtu=VALUE\)$/],
    [['eth1:mtu=1400,mtu=1500'], /^--device eth1:mtu=1400,mtu=1500: mtu is given twice$/],
    [[':mtu=1400'], /^--device :mtu=1400: must start with a device name$/],
    [['eth1:mtu=9'], /^device eth1: mtu: must be an integer from 68 to 65535 \(got 9\)$/],
    [['eth1:mtu=big'], /^device eth1: mtu: must be an integer from 68 to 65535 \(got "big"\)$/],
    [['eth1:name=a/b'], /^device eth1: name: must not contain '\/' \(got "a\/b"\)$/],
    [['eth1:address=10.0.0.1/24'], /^device eth1: addresses: is only allowed for type veth or macvlan$/],
    [['eth1:name=net1', 'eth1:name=net2'], /^--device eth1:name=net2: device eth1 is already given as --device eth1:name=net1$/],
    [['eth1:name=x', 'eth2:name=x'], /^device eth2: name: container name x is already used by device eth1$/],
  ];
  for (const [texts, message] of cases) {
    const err = t.throws(() => deviceArgSpecs(texts), ConfigError, texts.join(' ')) as Error;
    t.match(err.message, message, texts.join(' '));
  }
});

t.test('splitDeviceOptions takes both forms out of a command line', async (t) => {
  t.same(splitDeviceOptions(['--state-dir', '/s', 'create-runtime', '--device', 'eth1', '--device=eth2:mtu=1400']), {
    rest: ['--state-dir', '/s', 'create-runtime'],
    devices: ['eth1', 'eth2:mtu=1400'],
  });
});

const hook = (command: string) => ({ path: '/opt/oci-netdev/bin/oci-netdev', args: ['oci-netdev', '--state-dir', '/s', command], env: ['PATH=/opt/node/bin:/usr/bin'], timeout: 30 });

t.test('CDI spec 0.5.0: one device per NIC, each with its hook pair and its --device', async (t) => {
  const spec = buildCdiSpec([parseDeviceArg('eth1:name=net1,mtu=9000'), parseDeviceArg('eth2')], DEFAULT_CDI_VERSION, hook);
  t.same(spec, {
    cdiVersion: '0.5.0',
    kind: CDI_KIND,
    devices: [
      {
        name: 'eth1',
        containerEdits: {
          hooks: [
            { hookName: 'createRuntime', path: '/opt/oci-netdev/bin/oci-netdev', env: ['PATH=/opt/node/bin:/usr/bin'], timeout: 30, args: ['oci-netdev', '--state-dir', '/s', 'create-runtime', '--device', 'eth1:name=net1,mtu=9000'] },
            { hookName: 'poststop', path: '/opt/oci-netdev/bin/oci-netdev', env: ['PATH=/opt/node/bin:/usr/bin'], timeout: 30, args: ['oci-netdev', '--state-dir', '/s', 'poststop', '--device', 'eth1:name=net1,mtu=9000'] },
          ],
        },
      },
      {
        name: 'eth2',
        containerEdits: {
          hooks: [
            { hookName: 'createRuntime', path: '/opt/oci-netdev/bin/oci-netdev', env: ['PATH=/opt/node/bin:/usr/bin'], timeout: 30, args: ['oci-netdev', '--state-dir', '/s', 'create-runtime', '--device', 'eth2'] },
            { hookName: 'poststop', path: '/opt/oci-netdev/bin/oci-netdev', env: ['PATH=/opt/node/bin:/usr/bin'], timeout: 30, args: ['oci-netdev', '--state-dir', '/s', 'poststop', '--device', 'eth2'] },
          ],
        },
      },
    ],
  });
});

t.test('CDI spec 1.1.0 adds netDevices edits; other versions and names are refused', async (t) => {
  const spec = buildCdiSpec([parseDeviceArg('eth1:name=net1'), parseDeviceArg('eth2')], '1.1.0', hook);
  t.same(spec.devices.map((d) => d.containerEdits.netDevices), [[{ hostInterfaceName: 'eth1', name: 'net1' }], [{ hostInterfaceName: 'eth2', name: 'eth2' }]]);
  t.same(buildCdiSpec([parseDeviceArg('eth1')], '1.0.0', hook).devices[0].containerEdits.netDevices, undefined, '1.0.0 has no netDevices');
  t.throws(() => buildCdiSpec([parseDeviceArg('eth1')], '0.4.0', hook), { message: '--cdi-version: must be one of 0.5.0, 0.6.0, 0.7.0, 0.8.0, 1.0.0, 1.1.0 (got "0.4.0")' });
  t.throws(() => buildCdiSpec([parseDeviceArg('eth1-')], '0.5.0', hook), { message: 'device "eth1-": its name is not a valid CDI device name' });
});

// --- gathering the --device entries of sibling hook entries -----------------------------------

const BIN = path.join(tmp, 'bin/oci-netdev');
fs.mkdirSync(path.dirname(BIN));
fs.writeFileSync(BIN, '');
fs.symlinkSync(BIN, path.join(tmp, 'link'));
let bundles = 0;

function bundle(config: object): OciState {
  const dir = path.join(tmp, `b${++bundles}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ linux: { namespaces: [{ type: 'network' }] }, ...config }));
  return { ociVersion: '1.0.2', id: `c${bundles}`, status: 'creating', pid: 42, bundle: dir };
}
const entry = (p: string, ...args: string[]) => ({ path: p, args: ['oci-netdev', ...args] });

t.test('a hook run attaches the --device entries of every entry like itself, in config.json order', async (t) => {
  const state = bundle({
    hooks: {
      createRuntime: [
        entry('/usr/bin/other', '--state-dir', '/s', 'create-runtime', '--device', 'x0'),
        entry(BIN, '--state-dir', '/s', 'create-runtime', '--device', 'eth1:name=net1'),
        entry(BIN, '--state-dir', '/other', 'create-runtime', '--device', 'y0'),
        entry(path.join(tmp, 'link'), '--state-dir', '/s', 'create-runtime', '--device', 'eth2'),
        { path: '/usr/bin/node', args: ['node', BIN, '--state-dir', '/s', 'create-runtime', '--device=eth3'] },
        entry(BIN, '--state-dir', '/s', 'poststop', '--device', 'z0'),
      ],
    },
  });
  const self = { path: BIN, args: ['--state-dir', '/s', 'create-runtime', '--device', 'eth2'] };
  const req = loadContainerRequest(state, self);
  t.same(req.devices.map((d) => [d.key, d.name, d.source]), [['eth1', 'net1', 'config'], ['eth2', 'eth2', 'config'], ['eth3', 'eth3', 'config']],
    'the same program (by path, link or interpreter argument) with the same options and command; not other programs, options or stages');
  t.same(loadContainerRequest(bundle({}), self).devices.map((d) => d.key), ['eth2'], 'a run by hand without entries has its own device');
  t.same(loadContainerRequest(state).devices, [], 'without the hook self, config.json alone');
});

t.test('--device next to linux.netDevices: the same plain move is adopted, anything else is an error', async (t) => {
  const self = { path: BIN, args: ['create-runtime', '--device', 'eth1:name=net1,mtu=9000'] };
  const same = bundle({ linux: { namespaces: [{ type: 'network' }], netDevices: { eth1: { name: 'net1' }, eth2: {} } } });
  t.same(loadContainerRequest(same, self).devices.map((d) => [d.key, d.name, d.mtu]), [['eth1', 'net1', 9000], ['eth2', 'eth2', undefined]],
    'a CDI 1.1.0 engine wrote the move; the hook adds the extension fields');
  const other = bundle({ linux: { namespaces: [{ type: 'network' }], netDevices: { eth1: { name: 'eth9' } } } });
  t.throws(() => loadContainerRequest(other, self), {
    message: "device eth1: key: given in both linux.netDevices and a hook's --device argument, and not as the same plain move",
  });
  const ext = bundle({ linux: { namespaces: [{ type: 'network' }], netDevices: { eth1: { name: 'net1', mtu: 1400 } } } });
  t.throws(() => loadContainerRequest(ext, self), ConfigError, 'extension fields in both places');
  const badHooks = bundle({ hooks: { createRuntime: [{ args: ['x'] }] } });
  t.throws(() => loadContainerRequest(badHooks, self), { message: `config.json ${path.join(badHooks.bundle, 'config.json')}: hooks.createRuntime[0].path: is required` }, 'hook entries are schema-checked');
});
