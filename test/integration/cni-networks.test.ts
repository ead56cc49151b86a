// CNI networks run from the hooks (type "cni" entries, issue 11) and `oci-netdev cni`, with
// libcni's semantics: ADD through the chain with prevResult, DEL in reverse with the final
// result, a DEL after any failed ADD and after a crash (gc). The hooks run in a simulated host;
// the networks' bridges, rules and leases live there and in per-test dirs.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OCI_NETDEV, startHook } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { inSimHost, netnsPath, nsSnapshot, sh, ShResult, shOk } from '../helpers/sandbox';
import { cli, configBundle, ipDetails, makeRig, nonLoopback, ociState, ping, Rig, stateEntries, traced, userStderr } from '../helpers/netdevices';
import { allCalls, bridgeNetwork, cacheEntries, cniDirs, CniDirs, leases, readRecords, writeConflist, writeRecorders } from '../helpers/cni-networks';

function cniRig(t: Test): { rig: Rig; dirs: CniDirs } {
  const rig = makeRig(t);
  return { rig, dirs: cniDirs(rig.sb) };
}

/** `oci-netdev cni ...` in the simulated host with the rig's dirs. */
function cniCmd(rig: Rig, dirs: CniDirs, args: string[]): ShResult {
  return sh(...inSimHost(rig.simhost, [OCI_NETDEV, 'cni', ...args]), { env: dirs.env });
}

/** Veths in `ns` (a CNI bridge's container links, stand-in NICs). */
const veths = (ns: string): string[] => Object.values(ipDetails(ns)).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname).sort();

/** The DNAT rules of portmap in the simulated host. */
const dnatRules = (simhost: string): string[] =>
  shOk(...inSimHost(simhost, ['iptables-save', '-t', 'nat'])).split('\n').filter((l) => l.startsWith('-A CNI-DN-') || l.startsWith('-A CNI-HOSTPORT-DNAT '));

t.test('a chain of three plugins: each ADD gets the result so far; DEL runs in reverse with the final result', async (t) => {
  const { rig, dirs } = cniRig(t);
  const record = join(dirs.confDir, 'calls.jsonl');
  writeRecorders(dirs, ['rec-a', 'rec-b', 'rec-c']);
  const net = uniqueId('chain');
  writeConflist(dirs, net, [
    { type: 'rec-a', record },
    { type: 'rec-b', record, capabilities: { portMappings: true } },
    { type: 'rec-c', record, capabilities: { bandwidth: true, portMappings: false } },
  ]);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, {
    netDevices: { [net]: { type: 'cni', name: 'net1', args: { K8S_POD_NAME: 'web' }, portMappings: [{ hostPort: 8080, containerPort: 80 }] } },
  });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });

  const adds = readRecords(record);
  t.same(adds.map((c) => `${c.command} ${c.type}`), ['ADD rec-a', 'ADD rec-b', 'ADD rec-c'], 'ADD in list order');
  t.same(adds.map((c) => c.conf.prevResult?.interfaces?.map((i) => i.name) ?? null), [null, ['if-rec-a'], ['if-rec-a', 'if-rec-b']],
    'each plugin gets the result of the ones before it');
  const pin = adds[0].env.CNI_NETNS!;
  t.ok(pin.startsWith(rig.stateDir + '/'), 'the plugins run in the pinned namespace', { pin });
  for (const c of adds) {
    t.match(c.env, { CNI_CONTAINERID: id, CNI_IFNAME: 'net1', CNI_ARGS: 'K8S_POD_NAME=web', CNI_NETNS: pin }, `${c.type}: CNI_* environment`);
    t.equal(c.conf.name, net, `${c.type}: the network name is injected`);
    t.equal(c.conf.cniVersion, '1.0.0');
  }
  t.same(adds[1].conf.runtimeConfig, { portMappings: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] },
    'runtimeConfig goes to the plugin that declares the capability');
  t.notOk('runtimeConfig' in adds[0].conf, 'not to a plugin without capabilities');
  t.notOk('runtimeConfig' in adds[2].conf, 'nor to one whose capabilities do not match');
  t.same(cacheEntries(dirs), [`${net}-${id}-net1`], "the final result is in libcni's cache");
  const cached = JSON.parse(readFileSync(join(dirs.cacheDir, 'results', `${net}-${id}-net1`), 'utf8'));
  t.match(cached, { kind: 'cniCacheV1', containerId: id, ifName: 'net1', networkName: net, result: { interfaces: [{ name: 'if-rec-a' }, { name: 'if-rec-b' }, { name: 'if-rec-c' }] } });

  const st = JSON.parse(cli(rig, ['status', '--json']).stdout);
  t.match(st[0].networks, [{ network: net, ifname: 'net1', state: 'added', portMappings: [{ hostPort: 8080, containerPort: 80 }] }], 'status lists the network');

  const p = traced(rig, 'poststop', ociState(id, bundle, 'stopped'), dirs.env);
  t.equal(p.status, 0, 'poststop exits 0', { stderr: p.stderr });
  const dels = readRecords(record).slice(3);
  t.same(dels.map((c) => `${c.command} ${c.type}`), ['DEL rec-c', 'DEL rec-b', 'DEL rec-a'], 'DEL in reverse order');
  for (const c of dels) {
    t.same(c.conf.prevResult?.interfaces?.map((i) => i.name), ['if-rec-a', 'if-rec-b', 'if-rec-c'], `${c.type}: DEL gets the final result`);
    t.equal(c.env.CNI_NETNS, pin, `${c.type}: DEL sees the namespace ADD used`);
  }
  t.same(dels[1].conf.runtimeConfig, adds[1].conf.runtimeConfig, 'DEL gets the same runtimeConfig');
  t.same(cacheEntries(dirs), [], 'the cache entry is gone');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test("the calls a chain makes are libcni's: ADD, CHECK, DEL, STATUS and GC, each plugin at the list's version, no VERSION call", async (t) => {
  const { rig, dirs } = cniRig(t);
  writeRecorders(dirs, ['rec-a', 'rec-b']);
  const net = uniqueId('seq');
  // cniVersions picks 1.1.0, the highest this library speaks, for the whole list.
  writeFileSync(join(dirs.confDir, `10-${net}.conflist`),
    JSON.stringify({ cniVersion: '1.0.0', cniVersions: ['0.4.0', '1.1.0'], name: net, plugins: [{ type: 'rec-a', k: 1 }, { type: 'rec-b' }] }));
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [net]: { type: 'cni', name: 'net1' } } });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  const ns = netnsPath(rig.ctr);
  const tool = (args: string[]) => {
    const out = cniCmd(rig, dirs, [...args, ...(args[0] === 'gc' ? ['--state-dir', rig.stateDir] : [])]);
    t.equal(out.status, 0, `cni ${args[0]} exits 0`, { stderr: out.stderr });
  };
  tool(['add', net, ns, '--container-id', 'tool', '--ifname', 'eth1']);
  tool(['check', net, ns, '--container-id', 'tool', '--ifname', 'eth1']);
  tool(['status', net]);
  // The attachment cnitool made has no journal: libcni's GC DELs it; the hooks' is valid.
  tool(['gc', net]);
  const p = traced(rig, 'poststop', ociState(id, bundle, 'stopped'), dirs.env);
  t.equal(p.status, 0, 'poststop exits 0', { stderr: p.stderr });

  const calls = allCalls(dirs);
  const full = 'if-rec-a,if-rec-b';
  t.same(calls.map((c) => `${c.command} ${c.type} ${String(c.conf.cniVersion)} ${c.env.CNI_CONTAINERID}/${c.env.CNI_IFNAME} ${c.conf.prevResult?.interfaces?.map((i) => i.name).join(',') ?? '-'}`), [
    `ADD rec-a 1.1.0 ${id}/net1 -`, `ADD rec-b 1.1.0 ${id}/net1 if-rec-a`,
    'ADD rec-a 1.1.0 tool/eth1 -', 'ADD rec-b 1.1.0 tool/eth1 if-rec-a',
    `CHECK rec-a 1.1.0 tool/eth1 ${full}`, `CHECK rec-b 1.1.0 tool/eth1 ${full}`,
    'STATUS rec-a 1.1.0 / -', 'STATUS rec-b 1.1.0 / -',
    `DEL rec-b 1.1.0 tool/eth1 ${full}`, `DEL rec-a 1.1.0 tool/eth1 ${full}`,
    'GC rec-a 1.1.0 / -', 'GC rec-b 1.1.0 / -',
    `DEL rec-b 1.1.0 ${id}/net1 ${full}`, `DEL rec-a 1.1.0 ${id}/net1 ${full}`,
  ], "libcni's sequence (libcni/api.go): no VERSION call; ADD in order, CHECK in order and DEL in reverse with the cached result; STATUS in order; GC: the DEL of the attachment not valid, then GC of each plugin");
  const valid = [{ containerID: id, ifname: 'net1' }];
  const gcs = calls.filter((c) => c.command === 'GC');
  t.same(gcs[0]?.conf, { type: 'rec-a', k: 1, name: net, cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid },
    "GC gets the plugin's config, the name, the version and the valid attachments under both of libcni's keys");
  t.same(calls.filter((c) => c.command === 'STATUS').map((c) => c.conf), [{ type: 'rec-a', k: 1, name: net, cniVersion: '1.1.0' }, { type: 'rec-b', name: net, cniVersion: '1.1.0' }]);
  t.same(cacheEntries(dirs), [], 'nothing cached');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test('a plugin failing mid-chain: createRuntime fails naming it, the whole DEL chain ran, the devices are undone', async (t) => {
  const { rig, dirs } = cniRig(t);
  const record = join(dirs.confDir, 'calls.jsonl');
  writeRecorders(dirs, ['rec-a', 'rec-b', 'rec-c']);
  const net = uniqueId('fail');
  writeConflist(dirs, net, [{ type: 'rec-a', record }, { type: 'rec-b', record, fail: 'ADD' }, { type: 'rec-c', record }]);
  const before = nsSnapshot(rig.simhost);
  const hostEnd = uniqueName('vh');
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, {
    netDevices: { [hostEnd]: { type: 'veth', name: 'eth5', addresses: ['10.66.0.2/24'] }, [net]: { type: 'cni' } },
  });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.not(r.status, 0, 'createRuntime fails');
  const said = userStderr(r.stderr);
  t.equal(said.split('\n').length, 1, 'one line', { said });
  t.match(said, new RegExp(`network ${net}: ADD: rec-b: rec-b refuses ADD \\(CNI code 111\\)`), 'it names the network, the plugin and the code');
  t.same(readRecords(record).map((c) => `${c.command} ${c.type}`), ['ADD rec-a', 'ADD rec-b', 'DEL rec-c', 'DEL rec-b', 'DEL rec-a'],
    'the failed ADD is followed by the DEL of the whole chain, in reverse');
  t.same(nsSnapshot(rig.simhost), before, 'the veth is gone: the host is as before');
  t.same(nonLoopback(rig.ctr), [], 'nothing in the container');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
  t.same(cacheEntries(dirs), [], 'nothing cached');
});

t.test('kill -9 of createRuntime while the chain runs, then gc: DEL ran, no rule, lease or veth left', async (t) => {
  const { rig, dirs } = cniRig(t);
  const record = join(dirs.confDir, 'calls.jsonl');
  writeRecorders(dirs, ['rec-slow']);
  const net = uniqueId('kill');
  const bridge = uniqueName('br');
  bridgeNetwork(dirs, net, bridge, '10.71.0.0/24', [
    { type: 'portmap', capabilities: { portMappings: true } },
    { type: 'rec-slow', record, sleepMs: 30_000 },
  ]);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [net]: { type: 'cni', portMappings: [{ hostPort: 8081, containerPort: 80 }] } } });
  const hook = startHook(rig.simhost, 'create-runtime', ociState(id, bundle, 'creating'), { stateDir: rig.stateDir, env: dirs.env });
  const pidFile = `${record}.pid`;
  for (let i = 0; i < 600 && !existsSync(pidFile); i++) await new Promise((res) => setTimeout(res, 100));
  t.ok(existsSync(pidFile), 'the third plugin is running');
  t.equal(leases(dirs, net).length, 1, 'host-local has leased an address');
  t.equal(dnatRules(rig.simhost).length > 0, true, 'portmap has added its rules');
  process.kill(hook.pid, 'SIGKILL');
  process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
  const done = await hook.done;
  t.equal(done.signal, 'SIGKILL', 'the hook was killed');

  const g = cli(rig, ['gc']);
  t.equal(g.status, 0, 'gc exits 0', { stdout: g.stdout, stderr: g.stderr });
  t.match(g.stdout, `${id}: restored`);
  t.same(readRecords(record).map((c) => c.command), ['ADD', 'DEL'], 'gc ran the DEL chain');
  t.same(leases(dirs, net), [], 'the lease is released');
  t.same(dnatRules(rig.simhost), [], 'no portmap rule is left');
  t.same(veths(rig.simhost), [], 'no veth is left on the host');
  t.same(nonLoopback(rig.ctr), [], 'nothing in the container');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test('a moved NIC, a macvlan and a cni network in one container, all undone at poststop', async (t) => {
  const { rig, dirs } = cniRig(t);
  const nic = uniqueName('nic');
  const master = uniqueName('mst');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('pr'));
  rig.sb.createVethPair(rig.simhost, master, uniqueName('pr'));
  const net = uniqueId('mix');
  const bridge = uniqueName('br');
  shOk('ip', ['-n', rig.simhost, 'link', 'add', bridge, 'type', 'bridge']);
  bridgeNetwork(dirs, net, bridge, '10.72.0.0/24');
  const before = veths(rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, {
    netDevices: {
      [nic]: { name: 'net0' },
      mv: { type: 'macvlan', master, name: 'mv0', addresses: ['10.73.0.2/24'] },
      [net]: { type: 'cni', name: 'eth0' },
    },
  });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  const inside = ipDetails(rig.ctr);
  t.same(Object.keys(inside).sort(), ['eth0', 'lo', 'mv0', 'net0'], 'all three in the container');
  t.match(inside.eth0.addr_info, [{ family: 'inet', local: /^10\.72\.0\./ }], 'the network gave eth0 an address');
  t.equal(ping(rig.ctr, '10.72.0.1'), 0, 'the container reaches its gateway');
  const st = JSON.parse(cli(rig, ['status', '--json']).stdout);
  t.same(st[0].devices.map((d: { kind: string }) => d.kind).sort(), ['macvlan', 'moved'], 'status: the devices');
  t.match(st[0].networks, [{ network: net, ifname: 'eth0', state: 'added', addresses: [/^10\.72\.0\.\d+\/24$/] }], 'status: the network and its address');

  const p = traced(rig, 'poststop', ociState(id, bundle, 'stopped'), dirs.env);
  t.equal(p.status, 0, 'poststop exits 0', { stderr: p.stderr });
  t.same(veths(rig.simhost), before, 'the NIC is home and the network\'s veth is gone');
  t.same(nonLoopback(rig.ctr), [], 'nothing in the container');
  t.same(leases(dirs, net), [], 'the lease is released');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});

t.test('the annotation may attach only the networks the policy allows', async (t) => {
  const { rig, dirs } = cniRig(t);
  const record = join(dirs.confDir, 'calls.jsonl');
  writeRecorders(dirs, ['rec-a']);
  const net = uniqueId('pol');
  writeConflist(dirs, net, [{ type: 'rec-a', record }]);
  const id = uniqueId('ctr');
  const annotation = { 'oci-netdev.netDevices': JSON.stringify({ [net]: { type: 'cni' } }) };
  const bundle = configBundle(rig.sb, rig.ctr, { annotations: annotation });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.not(r.status, 0, 'refused by the default policy');
  t.match(userStderr(r.stderr), `CNI network ${net} is refused for annotation oci-netdev.netDevices by the default policy`);
  t.match(userStderr(r.stderr), 'annotation.allowNetworks, which allows no network by default');
  t.same(readRecords(record), [], 'no plugin ran');
  t.same(stateEntries(rig.stateDir), [], 'no state');

  const policy = join(rig.sb.tempDir('policy'), 'policy.json');
  writeFileSync(policy, JSON.stringify({ annotation: { allowNetworks: ['ondt-*'] } }), { mode: 0o644 });
  const ok = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), { ...dirs.env, OCI_NETDEV_POLICY: policy });
  t.equal(ok.status, 0, 'allowed by a policy whose allowNetworks matches', { stderr: ok.stderr });
  t.same(readRecords(record).map((c) => c.command), ['ADD']);
  const p = traced(rig, 'poststop', ociState(id, bundle, 'stopped'), { ...dirs.env, OCI_NETDEV_POLICY: policy });
  t.equal(p.status, 0);
  t.same(readRecords(record).map((c) => c.command), ['ADD', 'DEL']);
});

t.test('oci-netdev cni add, check and del on a plain netns, as cnitool', async (t) => {
  const { rig, dirs } = cniRig(t);
  const net = uniqueId('tool');
  bridgeNetwork(dirs, net, uniqueName('br'), '10.74.0.0/24', [{ type: 'portmap', capabilities: { portMappings: true } }]);
  const ns = netnsPath(rig.ctr);
  const add = cniCmd(rig, dirs, ['add', net, ns, '--ifname', 'eth1', '--runtime-config', '{"portMappings":[{"hostPort":8082,"containerPort":80,"protocol":"tcp"}]}']);
  t.equal(add.status, 0, 'add exits 0', { stderr: add.stderr });
  const result = JSON.parse(add.stdout);
  t.match(result, { cniVersion: '1.0.0', ips: [{ address: /^10\.74\.0\.\d+\/24$/, gateway: '10.74.0.1' }] }, 'prints the result');
  t.match(result.interfaces, [{}, {}, { name: 'eth1', sandbox: ns }]);
  t.match(ipDetails(rig.ctr).eth1?.addr_info, [{ local: result.ips[0].address.split('/')[0] }], 'the address is in the netns');
  t.ok(dnatRules(rig.simhost).some((l) => l.includes('--dport 8082')), 'the port mapping is in place');
  t.equal(cacheEntries(dirs).length, 1, 'cached');

  // CHECK on a bridge-only network: Debian's portmap 1.1.1 fails CHECK without IPv6 rules.
  const plain = uniqueId('plain');
  bridgeNetwork(dirs, plain, uniqueName('br'), '10.76.0.0/24');
  t.equal(cniCmd(rig, dirs, ['add', plain, ns, '--ifname', 'eth2']).status, 0, 'add of a second network on eth2');
  const check = cniCmd(rig, dirs, ['check', plain, ns, '--ifname', 'eth2']);
  t.equal(check.status, 0, 'check exits 0', { stderr: check.stderr });
  shOk('ip', ['-n', rig.ctr, 'addr', 'flush', 'dev', 'eth2']);
  const bad = cniCmd(rig, dirs, ['check', plain, ns, '--ifname', 'eth2']);
  t.not(bad.status, 0, 'check fails once the address is gone');
  t.match(bad.stderr, new RegExp(`network ${plain}: CHECK: bridge: .*\\(CNI code \\d+\\)`), 'naming the network, the plugin and the code');
  t.equal(cniCmd(rig, dirs, ['del', plain, ns, '--ifname', 'eth2']).status, 0, 'del of the second network');

  const del = cniCmd(rig, dirs, ['del', net, ns, '--ifname', 'eth1']);
  t.equal(del.status, 0, 'del exits 0', { stderr: del.stderr });
  t.same(nonLoopback(rig.ctr), [], 'the interface is gone');
  t.same(dnatRules(rig.simhost), [], "the mapping is gone (DEL got ADD's runtimeConfig from the cache)");
  t.same(leases(dirs, net), [], 'the address is released');
  t.same(cacheEntries(dirs), [], 'the cache entry is gone');
  t.equal(cniCmd(rig, dirs, ['del', net, ns, '--ifname', 'eth1']).status, 0, 'a second del succeeds');

  const status = cniCmd(rig, dirs, ['status', net]);
  t.equal(status.status, 0, 'status exits 0 (1.0.0 plugins have no STATUS)', { stderr: status.stderr });
  const missing = cniCmd(rig, dirs, ['add', 'nosuchnet', ns]);
  t.not(missing.status, 0);
  t.match(missing.stderr, `network nosuchnet not found in ${dirs.confDir}`);
});

t.test('16 containers at once on one bridge network: 16 distinct addresses, all released after', async (t) => {
  const { rig, dirs } = cniRig(t);
  const net = uniqueId('many');
  bridgeNetwork(dirs, net, uniqueName('br'), '10.75.0.0/24');
  const namespaces = Array.from({ length: 16 }, (_, i) => rig.sb.createNetns(`m${i}`));
  const run = (args: string[]): Promise<ShResult> => new Promise((resolve, reject) => {
    const [cmd, argv] = inSimHost(rig.simhost, [OCI_NETDEV, 'cni', ...args]);
    const child = spawn(cmd, argv, { env: { ...process.env, ...dirs.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  const adds = await Promise.all(namespaces.map((ns) => run(['add', net, netnsPath(ns)])));
  t.same(adds.map((r) => r.status), Array(16).fill(0), 'every add succeeds', { stderr: adds.map((r) => r.stderr).filter(Boolean) });
  const addresses = adds.map((r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0].address);
  t.equal(new Set(addresses).size, 16, '16 distinct addresses', { addresses });
  t.equal(leases(dirs, net).length, 16, '16 leases');
  t.equal(veths(rig.simhost).length, 16, '16 veths on the host');
  const dels = await Promise.all(namespaces.map((ns) => run(['del', net, netnsPath(ns)])));
  t.same(dels.map((r) => r.status), Array(16).fill(0), 'every del succeeds', { stderr: dels.map((r) => r.stderr).filter(Boolean) });
  t.same(leases(dirs, net), [], 'all released');
  t.same(veths(rig.simhost), [], 'no veth left');
  t.same(cacheEntries(dirs), [], 'no cache entry left');
});

t.test('validate counts the networks; --live refuses a network or plugin that cannot be found', async (t) => {
  const { rig, dirs } = cniRig(t);
  const record = join(dirs.confDir, 'calls.jsonl');
  writeRecorders(dirs, ['rec-a']);
  const net = uniqueId('val');
  writeConflist(dirs, net, [{ type: 'rec-a', record }]);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [net]: { type: 'cni' } } });
  const ok = sh(...inSimHost(rig.simhost, [OCI_NETDEV, 'validate', '--live', '--state-dir', rig.stateDir, bundle]), { env: dirs.env });
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, ': ok, 0 device(s), 1 CNI network(s), attachable on this host now');
  const gone = sh(...inSimHost(rig.simhost, [OCI_NETDEV, 'validate', '--live', '--state-dir', rig.stateDir, bundle]),
    { env: { ...dirs.env, NETCONFPATH: rig.sb.tempDir('empty') } });
  t.not(gone.status, 0);
  t.match(gone.stderr, `network ${net} not found in`);
  const noPlugin = sh(...inSimHost(rig.simhost, [OCI_NETDEV, 'validate', '--live', '--state-dir', rig.stateDir, bundle]),
    { env: { ...dirs.env, CNI_PATH: '/nonexistent' } });
  t.not(noPlugin.status, 0);
  t.match(noPlugin.stderr, 'plugin rec-a not found in /nonexistent');
  t.same(readRecords(record), [], 'no plugin ran');
});
