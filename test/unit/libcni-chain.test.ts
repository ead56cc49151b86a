// src/libcni/conf.ts and api.ts without a kernel: finding networks in NETCONFPATH, the version
// the plugins are run with (the list's, never asked of a plugin), capability filtering, and the
// chain with a fake plugin script that records what it got (ADD in order with prevResult, DEL in
// reverse with the cached result, STATUS and GC of 1.1.0 lists, GC's DEL of stale attachments).
import t, { Test } from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNetworkList, parseNetworkList } from '../../src/libcni/conf';
import { addNetworkList, cachedAttachments, checkNetworkList, delNetworkList, gcNetworkList, pluginConfig, readCachedResult, statusNetworkList } from '../../src/libcni/api';
import { CniError } from '../../src/libcni/spec';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'ondt-libcni-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A plugin script: every call appends "COMMAND TYPE" to the log (VERSION too); VERSION answers
 * `versions`; a config in another version is refused with code 1, as skel does; others keep
 * their config and print prevResult plus an interface.
 */
function fakePlugin(dir: string, type: string, versions: string[], failOn?: string): void {
  writeFileSync(join(dir, type), `#!/bin/sh
conf=$(cat)
echo "$CNI_COMMAND ${type}" >> "${dir}/log"
if [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":${JSON.stringify(versions)}}'; exit 0; fi
v=$(node -e 'console.log(JSON.parse(process.argv[1]).cniVersion)' "$conf")
case " ${versions.join(' ')} " in *" $v "*) ;; *) echo '{"code":1,"msg":"incompatible CNI versions"}'; exit 1;; esac
echo "$conf" > "${dir}/last-$CNI_COMMAND-${type}.json"
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
  writeFileSync(join(dir, '10-a.conflist'), JSON.stringify({ cniVersion: '0.4.0', cniVersions: ['1.0.0', '0.3.1', '9.9.9'], name: 'a', plugins: [{ type: 'x' }] }));
  writeFileSync(join(dir, '20-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'shadowed' }));
  writeFileSync(join(dir, '30-b.json'), JSON.stringify({ cniVersion: '0.3.1', name: 'b', type: 'bridge' }));
  writeFileSync(join(dir, 'ignored.txt'), JSON.stringify({ cniVersion: '0.3.1', name: 'c', type: 'bridge' }));
  const a = loadNetworkList(dir, 'a');
  t.same(a.plugins.map((p) => p.type), ['x'], 'a conflist wins over a .conf of the same name');
  t.equal(a.cniVersion, '1.0.0', 'the highest of cniVersion and cniVersions that the library speaks (9.9.9 is left out)');
  t.equal(parseNetworkList({ name: 'v', cniVersions: ['0.4.0', '1.1.0'], plugins: [{ type: 'x' }] }, 'f').cniVersion, '1.1.0', 'cniVersions alone');
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

const log = (bin: string): string[] => readFileSync(join(bin, 'log'), 'utf8').split('\n').filter(Boolean);

t.test("ADD in order with prevResult, every plugin at the list's version and none asked VERSION; CHECK; DEL in reverse with the cached result", async (t) => {
  const dir = tempDir(t);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  fakePlugin(bin, 'one', ['0.3.1', '0.4.0', '1.0.0']);
  fakePlugin(bin, 'two', ['0.3.1', '0.4.0', '1.0.0']);
  fakePlugin(bin, 'three', ['1.0.0']);
  const list = parseNetworkList({ name: 'net', cniVersion: '0.4.0', cniVersions: ['1.0.0'], plugins: [{ type: 'one' }, { type: 'two' }, { type: 'three' }] }, 'f');
  const opts = { path: [bin], cacheDir: join(dir, 'cache') };
  const result = addNetworkList(list, rt, opts);
  t.same(result.interfaces?.map((i) => i.name), ['one', 'two', 'three']);
  t.same(log(bin), ['ADD one', 'ADD two', 'ADD three'], 'one exec per plugin: no VERSION call');
  const seen = (cmd: string, type: string) => JSON.parse(readFileSync(join(bin, `last-${cmd}-${type}.json`), 'utf8'));
  t.same(['one', 'two', 'three'].map((p) => seen('ADD', p).cniVersion), ['1.0.0', '1.0.0', '1.0.0'], "each plugin gets the list's version");
  t.same(seen('ADD', 'two').prevResult.interfaces, [{ name: 'one' }]);
  t.same(seen('ADD', 'three').prevResult.interfaces, [{ name: 'one' }, { name: 'two' }]);
  t.same(readCachedResult('net', rt, opts.cacheDir)?.interfaces?.map((i) => i.name), ['one', 'two', 'three'], 'cached');

  checkNetworkList(list, rt, opts);
  delNetworkList(list, rt, opts);
  t.same(log(bin).slice(3), ['CHECK one', 'CHECK two', 'CHECK three', 'DEL three', 'DEL two', 'DEL one'], 'CHECK in order, DEL in reverse, no VERSION call');
  t.same(seen('DEL', 'one').prevResult.interfaces, [{ name: 'one' }, { name: 'two' }, { name: 'three' }], 'with the final result');
  t.equal(seen('DEL', 'one').cniVersion, '1.0.0');
  t.equal(readCachedResult('net', rt, opts.cacheDir), undefined, 'the cache entry is gone');
  t.throws(() => checkNetworkList(list, rt, opts), /network net: CHECK: no cached result/, 'CHECK needs a cached result');
});

t.test('a 0.3.1 list: DEL gets no prevResult, as libcni (cached results came with 0.4.0)', async (t) => {
  const dir = tempDir(t);
  fakePlugin(dir, 'p', ['0.3.1', '1.0.0']);
  const opts = { path: [dir], cacheDir: join(dir, 'cache') };
  const list = parseNetworkList({ name: 'old', cniVersion: '0.3.1', plugins: [{ type: 'p' }] }, 'f');
  addNetworkList(list, rt, opts);
  delNetworkList(list, rt, opts);
  t.same(log(dir), ['ADD p', 'DEL p']);
  t.notOk('prevResult' in JSON.parse(readFileSync(join(dir, 'last-DEL-p.json'), 'utf8')));
});

t.test('STATUS and GC: nothing for a list below 1.1.0; GC DELs each cached attachment not valid with its cached config, then GC of each plugin', async (t) => {
  const dir = tempDir(t);
  fakePlugin(dir, 'a', ['1.0.0', '1.1.0']);
  fakePlugin(dir, 'b', ['1.0.0', '1.1.0']);
  const opts = { path: [dir], cacheDir: join(dir, 'cache') };
  const old = parseNetworkList({ name: 'n', cniVersion: '1.0.0', plugins: [{ type: 'a' }, { type: 'b' }] }, 'f');
  statusNetworkList(old, opts);
  t.same(gcNetworkList(old, opts, [], []), { deleted: [], failures: [] });
  t.throws(() => log(dir), { code: 'ENOENT' }, 'a 1.0.0 list: no plugin ran for STATUS or GC');

  const list = parseNetworkList({ name: 'n', cniVersion: '1.0.0', cniVersions: ['1.1.0'], plugins: [{ type: 'a', k: 1 }, { type: 'b' }] }, 'f');
  const gone = { ...rt, containerId: 'gone', args: [['K', 'V']] as Array<[string, string]> };
  const live = { ...rt, containerId: 'live' };
  addNetworkList(old, gone, opts); // cached with the old config: its DEL is run with it
  addNetworkList(list, live, opts);
  rmSync(join(dir, 'log'));
  statusNetworkList(list, opts);
  t.same(log(dir), ['STATUS a', 'STATUS b'], 'STATUS of each plugin, in order');
  t.equal(JSON.parse(readFileSync(join(dir, 'last-STATUS-a.json'), 'utf8')).cniVersion, '1.1.0');

  rmSync(join(dir, 'log'));
  const cached = cachedAttachments(opts.cacheDir);
  t.same(cached.map((a) => [a.network, a.containerID, a.ifname, a.config?.cniVersion]), [['n', 'gone', 'eth0', '1.0.0'], ['n', 'live', 'eth0', '1.1.0']]);
  const valid = [{ containerID: 'live', ifname: 'eth0' }];
  const out = gcNetworkList(list, opts, valid, cached);
  t.same(out.failures, []);
  t.same(out.deleted.map((d) => [d.attachment.containerID, d.error]), [['gone', undefined]]);
  t.same(log(dir), ['DEL b', 'DEL a', 'GC a', 'GC b'], 'the stale attachment is DELed, then each plugin gets GC; no VERSION call');
  const del = JSON.parse(readFileSync(join(dir, 'last-DEL-a.json'), 'utf8'));
  t.equal(del.cniVersion, '1.0.0', 'DEL with the config its ADD cached');
  t.same(del.prevResult.interfaces, [{ name: 'a' }, { name: 'b' }], 'and its cached result');
  const gc = JSON.parse(readFileSync(join(dir, 'last-GC-a.json'), 'utf8'));
  t.same(gc, { type: 'a', k: 1, name: 'n', cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid },
    'GC: the plugin config with the name, the version and the valid attachments');
  t.same(cachedAttachments(opts.cacheDir).map((a) => a.containerID), ['live'], "the stale attachment's cache entry is gone");
});

t.test('a failure is one line with the network, the plugin and the code; a plugin refusing the list\'s version fails as it says', async (t) => {
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
  t.throws(() => addNetworkList(old, rt, opts), /network o: ADD: old: incompatible CNI versions \(CNI code 1\)/);
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
