import t, { Test } from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CniCode, CniError, SUPPORTED_VERSIONS, atLeast, compareVersions, isSupportedVersion, parseCniArgs, parseResult, toVersion,
} from '../../src/libcni/spec';
import { execPlugin, findPlugin, pluginVersions, splitCniPath, DEFAULT_CNI_PATH } from '../../src/libcni/invoke';

/** `fn` throws a CniError for which `ok` holds. */
function throwsCni(t: Test, fn: () => unknown, ok: (e: CniError) => boolean): void {
  try {
    fn();
    t.fail('expected a CniError');
  } catch (e) {
    t.ok(e instanceof CniError && ok(e), `CniError as expected: ${(e as Error).message}`);
  }
}

const result040 = {
  cniVersion: '0.4.0',
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
  ips: [
    { version: '4', address: '10.1.0.2/24', gateway: '10.1.0.1', interface: 0 },
    { version: '6', address: 'fd00::2/64', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }, { dst: '::/0' }],
  dns: { nameservers: ['10.1.0.1'] },
};

t.test('versions', async (t) => {
  t.same([...SUPPORTED_VERSIONS], ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  t.ok(isSupportedVersion('0.3.1'));
  t.notOk(isSupportedVersion('0.3'), 'an exact string is needed, as libcni reconciles');
  t.notOk(isSupportedVersion(1));
  t.ok(compareVersions('0.10.0', '0.9.0') > 0);
  t.ok(atLeast('1.0.0', '0.4.0'));
  t.notOk(atLeast('0.3.1', '0.4.0'));
});

t.test('a result converts to every supported version and back', async (t) => {
  const r = parseResult(result040);
  for (const v of SUPPORTED_VERSIONS) {
    const out = toVersion(r, v);
    t.equal(out.cniVersion, v);
    const back = parseResult(out);
    if (atLeast(v, '0.3.0')) {
      t.same(back.ips, r.ips, `${v}: addresses survive`);
      t.same(back.interfaces, r.interfaces, `${v}: interfaces survive`);
      const ips = out.ips as Array<Record<string, unknown>>;
      if (atLeast(v, '1.0.0')) t.notOk('version' in ips[0], `${v}: no ips[].version`);
      else t.same(ips.map((i) => i.version), ['4', '6'], `${v}: ips[].version per family`);
    } else {
      t.same(out.ip4, { ip: '10.1.0.2/24', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }] }, `${v}: ip4`);
      t.same(out.ip6, { ip: 'fd00::2/64', routes: [{ dst: '::/0' }] }, `${v}: ip6`);
      t.notOk('interfaces' in out, `${v}: no interfaces`);
    }
    t.same(back.dns, r.dns, `${v}: dns survives`);
  }
});

t.test('route fields of 1.1.0 are dropped for older peers', async (t) => {
  const r = parseResult({ cniVersion: '1.1.0', routes: [{ dst: '10.9.0.0/16', gw: '10.1.0.1', mtu: 1400, table: 100 }] });
  t.same(toVersion(r, '1.1.0').routes, [{ dst: '10.9.0.0/16', gw: '10.1.0.1', mtu: 1400, table: 100 }]);
  t.same(toVersion(r, '1.0.0').routes, [{ dst: '10.9.0.0/16', gw: '10.1.0.1' }]);
});

t.test('bad results are decode errors that say what is wrong', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /not a JSON object/],
    [{ cniVersion: '9.9.9' }, /unsupported cniVersion "9.9.9"/],
    [{ cniVersion: '1.0.0', ips: {} }, /ips is not a list/],
    [{ cniVersion: '1.0.0', ips: [{}] }, /ips\[0\]\.address is missing/],
    [{ cniVersion: '1.0.0', routes: [{ dst: '0.0.0.0/0', mtu: 'x' }] }, /routes\[0\]\.mtu is not an integer/],
    [{ cniVersion: '0.2.0', ip4: { gateway: '10.0.0.1' } }, /ip4\.ip is missing/],
  ];
  for (const [raw, msg] of bad) {
    throwsCni(t, () => parseResult(raw), (e) => e.cniCode === CniCode.decode && msg.test(e.message));
  }
  throwsCni(t, () => toVersion(parseResult(result040), '0.5.0'), (e) => e.cniCode === CniCode.incompatibleVersion);
});

t.test('CNI_ARGS', async (t) => {
  t.same(parseCniArgs('IgnoreUnknown=true;MAC=02:00:00:00:00:09'), [['IgnoreUnknown', 'true'], ['MAC', '02:00:00:00:00:09']]);
  t.same(parseCniArgs(undefined), []);
  t.same(parseCniArgs('K=a=b'), [['K', 'a=b']], 'a value may hold =');
  throwsCni(t, () => parseCniArgs('K'), (e) => e.cniCode === CniCode.invalidEnvironment);
});

t.test('running a plugin', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'oci-netdev-cni-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const plugin = (name: string, body: string): string => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, 0o755);
    return p;
  };
  const echo = plugin('echoenv', 'in=$(cat); printf \'{"cniVersion":"1.0.0","interfaces":[{"name":"%s"}],"dns":{"domain":"%s"}}\' "$CNI_COMMAND-$CNI_IFNAME-$CNI_CONTAINERID" "$(echo "$in" | tr -d \'"{} \')"');
  const failing = plugin('failing', 'echo \'{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"key x"}\'; exit 1');
  const crashing = plugin('crashing', 'echo "panic: something" >&2; exit 2');
  const slow = plugin('slow', 'exec sleep 30');
  plugin('versions', 'echo \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\'');
  writeFileSync(join(dir, 'notexec'), '');

  t.same(splitCniPath(''), DEFAULT_CNI_PATH);
  t.same(splitCniPath('/a::/b'), ['/a', '/b']);
  t.equal(findPlugin('echoenv', ['/nonexistent', dir]), echo);
  throwsCni(t, () => findPlugin('notexec', [dir]), (e) => e.cniCode === CniCode.notAvailable);
  throwsCni(t, () => findPlugin('../echoenv', [dir]), (e) => e.cniCode === CniCode.invalidConfig);

  const out = parseResult(execPlugin(echo, { a: 1 }, { command: 'ADD', containerId: 'c1', ifname: 'eth3', path: [dir] }));
  t.same(out.interfaces, [{ name: 'ADD-eth3-c1' }], 'the CNI_* environment reaches the plugin');
  t.equal(out.dns?.domain, 'a:1', 'the config reaches it on stdin');

  throwsCni(t, () => execPlugin(failing, {}, { command: 'ADD', path: [dir] }),
    (e) => e.cniCode === 7 && e.message === 'failing: bad config' && e.details === 'key x');
  throwsCni(t, () => execPlugin(crashing, {}, { command: 'DEL', path: [dir] }),
    (e) => e.cniCode === CniCode.delegate && /exited with 2: panic: something/.test(e.message));
  throwsCni(t, () => execPlugin(slow, {}, { command: 'ADD', path: [dir], timeoutMs: 300 }),
    (e) => /did not finish within 300 ms/.test(e.message));
  t.same(pluginVersions(join(dir, 'versions'), '1.0.0', { path: [dir] }), ['0.4.0', '1.0.0']);
});
