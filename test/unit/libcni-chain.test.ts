// src/libcni/conf.ts and api.ts without a kernel: finding networks in NETCONFPATH, the version
// each plugin is run with, capability filtering, and the chain with a fake plugin script that
// records what it got (ADD in order with prevResult, DEL in reverse with the cached result).
import t, { Test } from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNetworkList, parseNetworkList } from '../../src/libcni/conf';
import { addNetworkList, checkNetworkList, delNetworkList, pluginConfig, readCachedResult } from '../../src/libcni/api';
import { CniError } from '../../src/libcni/spec';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'ondt-libcni-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A plugin script: VERSION answers `versions`; others append "COMMAND TYPE VERSION PREV-IFACES" and print prevResult plus an interface. */
function fakePlugin(dir: string, type: string, versions: string[], failOn?: string): void {
  writeFileSync(join(dir, type), `#!/bin/sh
conf=$(cat)
if [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":${JSON.stringify(versions)}}'; exit 0; fi
echo "$conf" > "${dir}/last-$CNI_COMMAND-${type}.json"
echo "$CNI_COMMAND ${type}" >> "${dir}/log"
if [ "$CNI_COMMAND" = "${failOn ?? 'none'}" ]; then echo '{"code":42,"msg":"nope"}'; exit 1; fi
if [ "$CNI_COMMAND" = ADD ]; then
  node -e 'const c=JSON.parse(process.argv[1]);const p=c.prevResult||{interfaces:[]};p.cniVersion=c.cniVersion;p.interfaces=[...(p.interfaces||[]),{name:"${type}"}];console.log(JSON.stringify(p))' "$conf"
fi
`);
  chmodSync(join(dir, type), 0o755);
}

const rt = { containerId: 'c1', netns: '/run/netns/none', ifname: 'eth0', args: [] as Array<[string, string]>, capabilityArgs: { portMappings: [{ hostPort: 1 }], mac: 'x' } };

t.test('networks are found by name: conflists first, then .conf and .json; versions', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, '00-broken.conflist'), '{');
  writeFileSync(join(dir, '10-a.conflist'), JSON.stringify({ cniVersion: '0.4.0', cniVersions: ['1.0.0', '9.9.9'], name: 'a', plugins: [{ type: 'x' }] }));
  writeFileSync(join(dir, '20-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'shadowed' }));
  writeFileSync(join(dir, '30-b.json'), JSON.stringify({ cniVersion: '0.3.1', name: 'b', type: 'bridge' }));
  writeFileSync(join(dir, 'ignored.txt'), JSON.stringify({ cniVersion: '0.3.1', name: 'c', type: 'bridge' }));
  const a = loadNetworkList(dir, 'a');
  t.same(a.plugins.map((p) => p.type), ['x'], 'a conflist wins over a .conf of the same name');
  t.equal(a.cniVersion, '1.0.0', 'the highest supported of cniVersion and cniVersions');
  t.same(a.versions, ['1.0.0', '0.4.0'], 'unknown versions are left out');
  const b = loadNetworkList(dir, 'b');
  t.same(b.raw, { cniVersion: '0.3.1', name: 'b', plugins: [{ cniVersion: '0.3.1', name: 'b', type: 'bridge' }] }, 'a single plugin becomes a list');
  t.throws(() => loadNetworkList(dir, 'c'), /network c not found in /, 'only .conflist, .conf and .json files');
  t.throws(() => loadNetworkList(join(dir, 'nope'), 'a'), /network a not found/, 'a missing dir holds no network');
  t.throws(() => parseNetworkList({ name: 'v', cniVersion: '2.0.0', plugins: [{ type: 'x' }] }, 'f'), /no supported cniVersion/);
  t.throws(() => parseNetworkList({ name: 'v', cniVersion: '1.0.0', plugins: [] }, 'f'), /has no plugins/);
  t.throws(() => parseNetworkList({ name: 'v', cniVersion: '1.0.0', plugins: [{}] }, 'f'), /needs a type/);
});

t.test('runtimeConfig holds only the capabilities a plugin declares; name, version, prevResult injected', async (t) => {
  const list = parseNetworkList({ name: 'n', cniVersion: '1.0.0', plugins: [{ type: 'p', capabilities: { portMappings: true, mac: false, ips: true } }] }, 'f');
  const conf = pluginConfig(list, list.plugins[0], '0.4.0', rt.capabilityArgs, { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] });
  t.same(conf.runtimeConfig, { portMappings: [{ hostPort: 1 }] }, 'declared and given: passed; declared false or not given: not');
  t.equal(conf.name, 'n');
  t.equal(conf.cniVersion, '0.4.0');
  t.same(conf.prevResult, { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24' }] }, 'prevResult in the plugin\'s version');
  const none = pluginConfig(list, { type: 'q', runtimeConfig: { stale: 1 }, prevResult: {} }, '1.0.0', rt.capabilityArgs);
  t.notOk('runtimeConfig' in none, 'no capability: no runtimeConfig, even one written in the list');
  t.notOk('prevResult' in none);
});

t.test('ADD in order with prevResult, each plugin at its highest shared version; DEL in reverse with the cached result', async (t) => {
  const dir = tempDir(t);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  fakePlugin(bin, 'one', ['0.3.1', '0.4.0', '1.0.0']);
  fakePlugin(bin, 'two', ['0.3.1', '0.4.0']);
  fakePlugin(bin, 'three', ['1.0.0']);
  const list = parseNetworkList({ name: 'net', cniVersion: '1.0.0', cniVersions: ['0.4.0'], plugins: [{ type: 'one' }, { type: 'two' }, { type: 'three' }] }, 'f');
  const opts = { path: [bin], cacheDir: join(dir, 'cache') };
  const result = addNetworkList(list, rt, opts);
  t.same(result.interfaces?.map((i) => i.name), ['one', 'two', 'three']);
  t.equal(readFileSync(join(bin, 'log'), 'utf8'), 'ADD one\nADD two\nADD three\n');
  const seen = (cmd: string, type: string) => JSON.parse(readFileSync(join(bin, `last-${cmd}-${type}.json`), 'utf8'));
  t.equal(seen('ADD', 'two').cniVersion, '0.4.0', 'two speaks 0.4.0 at most');
  t.same(seen('ADD', 'two').prevResult.interfaces, [{ name: 'one' }]);
  t.same(seen('ADD', 'three').prevResult.interfaces, [{ name: 'one' }, { name: 'two' }]);
  t.same(readCachedResult('net', rt, opts.cacheDir)?.interfaces?.map((i) => i.name), ['one', 'two', 'three'], 'cached');

  checkNetworkList(list, rt, opts);
  t.equal(readFileSync(join(bin, 'log'), 'utf8').split('\n').filter((l) => l.startsWith('CHECK')).length, 3, 'CHECK ran each plugin');
  delNetworkList(list, rt, opts);
  t.same(readFileSync(join(bin, 'log'), 'utf8').split('\n').filter((l) => l.startsWith('DEL')), ['DEL three', 'DEL two', 'DEL one'], 'DEL in reverse');
  t.same(seen('DEL', 'one').prevResult.interfaces, [{ name: 'one' }, { name: 'two' }, { name: 'three' }], 'with the final result');
  t.equal(readCachedResult('net', rt, opts.cacheDir), undefined, 'the cache entry is gone');
  t.throws(() => checkNetworkList(list, rt, opts), /network net: CHECK: no cached result/, 'CHECK needs a cached result');
});

t.test('a failure is one line with the network, the plugin and the code; a plugin sharing no version is refused', async (t) => {
  const dir = tempDir(t);
  fakePlugin(dir, 'ok', ['1.0.0']);
  fakePlugin(dir, 'bad', ['1.0.0'], 'ADD');
  fakePlugin(dir, 'old', ['0.2.0']);
  const opts = { path: [dir], cacheDir: join(dir, 'cache') };
  const failing = parseNetworkList({ name: 'f', cniVersion: '1.0.0', plugins: [{ type: 'ok' }, { type: 'bad' }] }, 'f');
  try {
    addNetworkList(failing, rt, opts);
    t.fail('ADD should fail');
  } catch (e) {
    t.ok(e instanceof CniError);
    t.equal((e as CniError).cniCode, 42);
    t.equal((e as Error).message, 'network f: ADD: bad: nope (CNI code 42)');
  }
  const old = parseNetworkList({ name: 'o', cniVersion: '1.0.0', plugins: [{ type: 'old' }] }, 'f');
  t.throws(() => addNetworkList(old, rt, opts), /network o: ADD: old: speaks 0\.2\.0, the network 1\.0\.0 \(CNI code 1\)/);
  t.throws(() => addNetworkList(parseNetworkList({ name: 'm', cniVersion: '1.0.0', plugins: [{ type: 'missing' }] }, 'f'), rt, opts),
    /network m: ADD: plugin missing not found in .* \(CNI code 50\)/);
});

t.test("an attachment libcni's cache cannot name: ADD refused before any plugin runs, DEL runs the chain and succeeds", async (t) => {
  const dir = tempDir(t);
  fakePlugin(dir, 'ok', ['1.0.0']);
  const opts = { path: [dir], cacheDir: join(dir, 'cache') };
  const list = parseNetworkList({ name: 'n', cniVersion: '1.0.0', plugins: [{ type: 'ok' }] }, 'f');
  // 240 bytes of name is the most: the cache is written through a temp file with a 15-byte suffix.
  const fits = { ...rt, containerId: 'c'.repeat(240 - 'n--eth0'.length) };
  addNetworkList(list, fits, opts);
  t.ok(readCachedResult('n', fits, opts.cacheDir), 'a 240-byte cache name is written');
  delNetworkList(list, fits, opts);
  t.equal(readCachedResult('n', fits, opts.cacheDir), undefined, 'and removed');
  rmSync(join(dir, 'log'));
  for (const containerId of [`${fits.containerId}c`, 'a/b']) {
    const bad = { ...rt, containerId };
    t.throws(() => addNetworkList(list, bad, opts), /network n: (invalid container id "a\/b" for the cache|.* too long for libcni's result cache \(241 bytes, at most 240\))/,
      'ADD is refused');
    t.throws(() => readFileSync(join(dir, 'log')), { code: 'ENOENT' }, 'no plugin ran');
    delNetworkList(list, bad, opts);
    t.equal(readFileSync(join(dir, 'log'), 'utf8'), 'DEL ok\n', 'DEL ran the chain and succeeded: nothing is cached under such a name');
    rmSync(join(dir, 'log'));
  }
});
