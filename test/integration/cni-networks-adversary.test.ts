// The CNI networks of the hooks (type "cni" entries) under attack, by someone who did not write
// them: container ids and arguments that libcni's cache or a plugin's environment cannot hold.
// Each must be refused before anything changes, and never leave a DEL owed that can never run.
import t, { Test } from 'tap';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runHook } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, ipDetails, makeRig, nonLoopback, ociState, Rig, stateEntries, traced, userStderr } from '../helpers/netdevices';
import { bridgeNetwork, cacheEntries, cniDirs, CniDirs, leases, readRecords, writeConflist, writeRecorders } from '../helpers/cni-networks';
import { inSimHost, nsSnapshot, shOk } from '../helpers/sandbox';

interface Setup { rig: Rig; dirs: CniDirs; record: string; net: string }

/** A rig with a one-plugin network of the recording plugin. */
function recordedNetwork(t: Test): Setup {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  const record = join(dirs.confDir, 'calls.jsonl');
  writeRecorders(dirs, ['rec-a']);
  const net = uniqueId('adv');
  writeConflist(dirs, net, [{ type: 'rec-a', record }]);
  return { rig, dirs, record, net };
}

/** createRuntime of `id` with `entry` for the network must fail in one line matching `said`, with nothing run, changed or left. */
function refusedUntouched(t: Test, s: Setup, id: string, entry: object, said: RegExp): void {
  const before = nsSnapshot(s.rig.simhost);
  const bundle = configBundle(s.rig.sb, s.rig.ctr, { netDevices: { [s.net]: { type: 'cni', ...entry } } });
  const r = traced(s.rig, 'create-runtime', ociState(id, bundle, 'creating'), s.dirs.env);
  t.not(r.status, 0, 'createRuntime fails');
  const line = userStderr(r.stderr);
  t.equal(line.split('\n').length, 1, 'in one line', { line });
  t.match(line, said, 'saying why');
  t.same(readRecords(s.record).filter((c) => c.command !== 'VERSION'), [], 'no plugin ran');
  t.same(stateEntries(s.rig.stateDir), [], 'no state: no DEL is owed');
  t.same(cacheEntries(s.dirs), [], 'nothing cached');
  t.same(nsSnapshot(s.rig.simhost), before, 'the host is as before');
  t.same(nonLoopback(s.rig.ctr), [], 'nothing in the container');
  t.match(cli(s.rig, ['gc']).stdout, 'gc: nothing to do', 'gc has nothing to do');
}

t.test("a container id too long for libcni's cache file name: refused before any plugin runs", async (t) => {
  const s = recordedNetwork(t);
  refusedUntouched(t, s, uniqueId('ctr').padEnd(250, 'x'), {}, new RegExp(`network ${s.net}: .*too long for libcni's result cache`));
});

t.test("a container id with a / (which would name a folder of libcni's cache): refused before any plugin runs", async (t) => {
  const s = recordedNetwork(t);
  refusedUntouched(t, s, `${uniqueId('ctr')}/x`, {}, new RegExp(`network ${s.net}: invalid container id .* for the cache`));
});

t.test('CNI_ARGS with a NUL byte in a key or a value (no environment holds one): refused before any plugin runs', async (t) => {
  const s = recordedNetwork(t);
  refusedUntouched(t, s, uniqueId('ctr'), { args: { K8S_POD_NAME: 'web\u0000x' } }, /args.*must be a string without ;, = or a NUL byte/);
  refusedUntouched(t, s, uniqueId('ctr'), { args: { 'K8S\u0000POD': 'web' } }, /args.*must be a non-empty name without ;, = or a NUL byte/);
});

t.test('a plugin whose result makes the journal larger than a quarter of what one may hold: attached, and restored at poststop', async (t) => {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  const net = uniqueId('big');
  const dels = join(dirs.confDir, 'dels');
  // 14 MiB of addresses (under the 16 MiB a plugin may print) without their 0.4.0 "version" field,
  // which the journal's copy adds: a journal past 16 MiB, whose 4-fold reserve would pass the 64 MiB a reader takes.
  writeFileSync(join(dirs.pluginDir, 'big'), `#!/usr/bin/env node
const cmd = process.env.CNI_COMMAND;
if (cmd === 'VERSION') { process.stdout.write('{"cniVersion":"0.4.0","supportedVersions":["0.4.0"]}'); process.exit(0); }
if (cmd === 'DEL') { require('fs').appendFileSync(${JSON.stringify(dels)}, 'DEL\\n'); process.exit(0); }
const ips = [];
for (let i = 0, size = 0; size < 14 * 1024 * 1024; i++) {
  ips.push({ address: '10.' + ((i >> 16) & 255) + '.' + ((i >> 8) & 255) + '.' + (i & 255) + '/32' });
  size += JSON.stringify(ips[i]).length + 1;
}
process.stdout.write(JSON.stringify({ cniVersion: '0.4.0', ips }));
`);
  chmodSync(join(dirs.pluginDir, 'big'), 0o755);
  writeConflist(dirs, net, [{ type: 'big' }], '0.4.0');
  const before = nsSnapshot(rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [net]: { type: 'cni' } } });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr.slice(0, 2000) });
  const p = traced(rig, 'poststop', ociState(id, bundle, 'stopped'), dirs.env);
  t.equal(p.status, 0, 'poststop exits 0: the journal is readable', { stderr: p.stderr.slice(0, 2000) });
  t.equal(existsSync(dels) ? readFileSync(dels, 'utf8') : '', 'DEL\n', 'the DEL ran');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
  t.same(cacheEntries(dirs), [], 'nothing cached');
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
});

t.test('a conflist nested deeper than JSON can be written back: refused in one line, nothing run or left', async (t) => {
  const s = recordedNetwork(t);
  const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
  writeFileSync(join(s.dirs.confDir, `10-${s.net}.conflist`), `{"cniVersion":"1.0.0","name":"${s.net}","plugins":[{"type":"rec-a","record":"${s.record}","x":${deep}}]}`);
  refusedUntouched(t, s, uniqueId('ctr'), {}, /CNI network's config or runtimeConfig is nested too deeply/);
});

t.test('a runtimeConfig nested deeper than JSON can be written back, from the annotation: refused in one line, nothing run or left', async (t) => {
  const s = recordedNetwork(t);
  const policy = join(s.rig.sb.tempDir('policy'), 'policy.json');
  writeFileSync(policy, JSON.stringify({ annotation: { allowNetworks: ['*'], allowCapabilities: ['*'] } }), { mode: 0o644 });
  const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
  const annotation = `{"${s.net}":{"type":"cni","runtimeConfig":{"x":${deep}}}}`;
  const before = nsSnapshot(s.rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(s.rig.sb, s.rig.ctr, { annotations: { 'oci-netdev.netDevices': annotation } });
  const r = traced(s.rig, 'create-runtime', ociState(id, bundle, 'creating'), { ...s.dirs.env, OCI_NETDEV_POLICY: policy });
  t.not(r.status, 0, 'createRuntime fails');
  const line = userStderr(r.stderr);
  t.equal(line.split('\n').length, 1, 'in one line', { line });
  t.match(line, /runtimeConfig is nested too deeply/, 'saying why');
  t.same(readRecords(s.record).filter((c) => c.command !== 'VERSION'), [], 'no plugin ran');
  t.same(stateEntries(s.rig.stateDir), [], 'no state');
  t.same(nsSnapshot(s.rig.simhost), before, 'the host is as before');
});

/** A rig with a bridge network named after `tag` on `subnet`, and a stand-in NIC on the host. */
function bridgeAndNic(t: Test, tag: string, subnet: string): { rig: Rig; dirs: CniDirs; net: string; bridge: string; nic: string } {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  const net = uniqueId(tag);
  const bridge = uniqueName('br');
  shOk('ip', ['-n', rig.simhost, 'link', 'add', bridge, 'type', 'bridge']);
  bridgeNetwork(dirs, net, bridge, subnet);
  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  return { rig, dirs, net, bridge, nic };
}

/**
 * A bridge network's DEL deletes whatever device has CNI_IFNAME in the container: a network must
 * never be run on a name another device holds, or the DEL owed after its failed ADD takes that device.
 */
function takenName(t: Test, ifname: string, devices: (nic: string) => Record<string, object>): void {
  const { rig, dirs, net, nic } = bridgeAndNic(t, 'taken', '10.77.0.0/24');
  const before = nsSnapshot(rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { ...devices(nic), [net]: { type: 'cni', name: ifname } } });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.not(r.status, 0, 'createRuntime fails');
  const line = userStderr(r.stderr);
  t.equal(line.split('\n').length, 1, 'in one line', { line });
  t.match(line, `network ${net}: interface name ${ifname} is already taken in the container`, 'saying why');
  t.ok(ipDetails(rig.ctr).lo, 'lo is still in the container');
  t.same(nonLoopback(rig.ctr), [], 'nothing else is');
  t.same(nsSnapshot(rig.simhost), before, `the host is as before: ${nic} is home`);
  t.same(leases(dirs, net), [], 'no lease');
  t.same(stateEntries(rig.stateDir), [], 'no state: nothing owed');
}

t.test('a cni entry named lo: refused before its plugins run, lo untouched', async (t) => {
  takenName(t, 'lo', () => ({}));
});

t.test('a cni entry named eth0 after a moved NIC named eth%d, which the kernel named eth0: refused, the NIC comes home whole', async (t) => {
  takenName(t, 'eth0', (nic) => ({ [nic]: { name: 'eth%d' } }));
});

t.test('a plugin that never answers ADD: killed at the time limit, the DEL chain runs, the moved NIC comes home', async (t) => {
  const s = recordedNetwork(t);
  writeRecorders(s.dirs, ['rec-hang']);
  writeConflist(s.dirs, s.net, [{ type: 'rec-a', record: s.record }, { type: 'rec-hang', record: s.record, sleepMs: 600_000 }]);
  const nic = uniqueName('nic');
  s.rig.sb.createVethPair(s.rig.simhost, nic, uniqueName('peer'));
  const before = nsSnapshot(s.rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(s.rig.sb, s.rig.ctr, { netDevices: { [nic]: { name: 'net0' }, [s.net]: { type: 'cni' } } });
  // The plugins' limit is 60 s: the hook gets longer.
  const r = runHook(s.rig.simhost, 'create-runtime', ociState(id, bundle, 'creating'), { stateDir: s.rig.stateDir, env: s.dirs.env, timeoutMs: 180_000 });
  t.not(r.status, 0, 'createRuntime fails');
  t.match(userStderr(r.stderr), `network ${s.net}: ADD: rec-hang: ADD did not finish within 60000 ms`, 'naming the plugin and the limit');
  const pid = Number(readFileSync(`${s.record}.pid`, 'utf8'));
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the plugin was killed');
  t.same(readRecords(s.record).map((c) => `${c.command} ${c.type}`), ['ADD rec-a', 'ADD rec-hang', 'DEL rec-hang', 'DEL rec-a'], 'the DEL chain ran');
  t.same(nsSnapshot(s.rig.simhost), before, 'the host is as before: the NIC is home');
  t.same(nonLoopback(s.rig.ctr), [], 'nothing in the container');
  t.same(stateEntries(s.rig.stateDir), [], 'no state');
});

t.test("libcni's cache on a full file system: ADD fails in one line, the DEL chain runs, the moved NIC comes home", async (t) => {
  const s = recordedNetwork(t);
  // A tmpfs with room for its root and results/ only: the cache file cannot be made.
  const cacheDir = join(s.rig.sb.tempDir('fullcache'), 'mnt');
  mkdirSync(cacheDir);
  shOk('mount', ['-t', 'tmpfs', '-o', 'size=64k,nr_inodes=2,mode=0700', 'tmpfs', cacheDir]);
  s.rig.sb.defer(() => shOk('umount', [cacheDir]));
  mkdirSync(join(cacheDir, 'results'));
  const nic = uniqueName('nic');
  s.rig.sb.createVethPair(s.rig.simhost, nic, uniqueName('peer'));
  const before = nsSnapshot(s.rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(s.rig.sb, s.rig.ctr, { netDevices: { [nic]: { name: 'net0' }, [s.net]: { type: 'cni' } } });
  const r = traced(s.rig, 'create-runtime', ociState(id, bundle, 'creating'), { ...s.dirs.env, OCI_NETDEV_CNI_CACHE_DIR: cacheDir });
  t.not(r.status, 0, 'createRuntime fails');
  const line = userStderr(r.stderr);
  t.equal(line.split('\n').length, 1, 'in one line', { line });
  t.match(line, new RegExp(`network ${s.net}: cannot write the result cache .*ENOSPC`), 'saying why');
  t.same(readRecords(s.record).map((c) => c.command), ['ADD', 'DEL'], 'the DEL ran');
  t.same(readdirSync(join(cacheDir, 'results')), [], 'no cache entry, no temp file');
  t.same(nsSnapshot(s.rig.simhost), before, 'the host is as before: the NIC is home');
  t.same(stateEntries(s.rig.stateDir), [], 'no state');
});

t.test("the container deletes its network's eth0 and renames the moved NIC to eth0: poststop's DEL does not take the NIC, which comes home", async (t) => {
  const { rig, dirs, net, bridge, nic } = bridgeAndNic(t, 'swap', '10.78.0.0/24');
  // The bridge plugin brings the bridge up with the gateway address: the rest of the host must be as before.
  const host = () => Object.fromEntries(Object.entries(nsSnapshot(rig.simhost)).filter(([name]) => name !== bridge));
  const before = host();
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'net0' }, [net]: { type: 'cni', name: 'eth0' } } });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.equal(r.status, 0, 'createRuntime exits 0', { stderr: r.stderr });
  t.equal(leases(dirs, net).length, 1, 'the network leased an address');
  // The container, with CAP_NET_ADMIN: its network's device gone, the NIC under that device's name.
  shOk('ip', ['-n', rig.ctr, 'link', 'del', 'eth0']);
  shOk('ip', ['-n', rig.ctr, 'link', 'set', 'net0', 'down']);
  shOk('ip', ['-n', rig.ctr, 'link', 'set', 'net0', 'name', 'eth0']);
  const p = traced(rig, 'poststop', ociState(id, bundle, 'stopped'), dirs.env);
  t.equal(p.status, 0, 'poststop exits 0', { stderr: p.stderr });
  t.same(host(), before, `the host is as before: ${nic} is home`);
  t.same(nonLoopback(rig.ctr), [], 'nothing in the container');
  t.same(leases(dirs, net), [], 'the lease is released');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

t.test("the container renames the moved NIC to its network's eth0 while the chain's ADD runs, which then fails: the DEL owed does not take the NIC, which comes home", async (t) => {
  const { rig, dirs, net, bridge, nic } = bridgeAndNic(t, 'midadd', '10.79.0.0/24');
  // The bridge's ADD made eth0; the next plugin is the container's process at work (it deletes its
  // network's eth0 and gives the NIC that name), then fails, so the DEL chain is owed at once.
  writeFileSync(join(dirs.pluginDir, 'swapper'), `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'; exit 0 ;;
ADD) nsenter --net="$CNI_NETNS" sh -c 'ip link del eth0 && ip link set net0 down && ip link set net0 name eth0'
  echo '{"cniVersion":"1.0.0","code":111,"msg":"swapper fails ADD"}'; exit 1 ;;
esac
exit 0
`);
  chmodSync(join(dirs.pluginDir, 'swapper'), 0o755);
  bridgeNetwork(dirs, net, bridge, '10.79.0.0/24', [{ type: 'swapper' }]);
  const host = () => Object.fromEntries(Object.entries(nsSnapshot(rig.simhost)).filter(([name]) => name !== bridge));
  const before = host();
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'net0' }, [net]: { type: 'cni', name: 'eth0' } } });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), dirs.env);
  t.not(r.status, 0, 'createRuntime fails');
  t.match(userStderr(r.stderr), 'swapper fails ADD', 'naming the plugin\'s error');
  t.same(host(), before, `the host is as before: ${nic} is home`);
  t.same(nonLoopback(rig.ctr), [], 'nothing in the container');
  t.same(leases(dirs, net), [], 'no lease');
  t.same(stateEntries(rig.stateDir), [], 'no state left');
});

/** A root-owned 0644 policy file in the rig. */
function policyOf(rig: Rig, doc: object): string {
  const file = join(rig.sb.tempDir('policy'), 'policy.json');
  writeFileSync(file, JSON.stringify(doc), { mode: 0o644 });
  chmodSync(file, 0o644);
  return file;
}

/** createRuntime of the annotation's `entry` for network `net` fails with exactly `message`, nothing run, changed or left. */
function annotationRefused(t: Test, rig: Rig, dirs: CniDirs, env: Record<string, string>, net: string, entry: object, message: string, what: string): void {
  const before = nsSnapshot(rig.simhost);
  const nat = () => shOk(...inSimHost(rig.simhost, ['iptables-save', '-t', 'nat'])).split('\n').filter((l) => l.startsWith('-A ') || l.startsWith(':CNI'));
  const rules = nat();
  const bundle = configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [net]: { type: 'cni', name: 'eth1', ...entry } }) } });
  const r = traced(rig, 'create-runtime', ociState(uniqueId('ctr'), bundle, 'creating'), env);
  t.not(r.status, 0, `${what}: createRuntime fails`);
  t.equal(userStderr(r.stderr), `oci-netdev: device ${net}: ${message}`, `${what}: one line naming the field, the rule and the policy`);
  t.same(nat(), rules, `${what}: no NAT rule added`);
  t.same(nsSnapshot(rig.simhost), before, `${what}: the host's devices and addresses are as before`);
  t.same(leases(dirs, net), [], `${what}: no address leased`);
  t.same(stateEntries(rig.stateDir), [], `${what}: no state`);
  t.same(nonLoopback(rig.ctr), [], `${what}: nothing in the container`);
}

t.test("the annotation's port mappings under a policy that allows a bridge + portmap network: host port 22 and other capabilities refused, nothing run or changed", async (t) => {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  const net = uniqueId('pm');
  bridgeNetwork(dirs, net, uniqueName('br'), '10.75.0.0/24', [{ type: 'portmap', capabilities: { portMappings: true } }]);
  const policy = policyOf(rig, { annotation: { allowNetworks: [net] } });
  const env = { ...dirs.env, OCI_NETDEV_POLICY: policy };
  const cases: [string, object, string][] = [
    ['host port 22 on every address', { portMappings: [{ hostPort: 8080, containerPort: 80 }, { hostPort: 22, containerPort: 22 }] },
      `portMappings[1].hostPort 22 is refused for annotation oci-netdev.netDevices by policy ${policy}: it lies in no range of annotation.allowHostPorts, which allows only 1024-65535 by default`],
    ['host port 22 in runtimeConfig', { runtimeConfig: { portMappings: [{ hostPort: 22, containerPort: 22, protocol: 'tcp', hostIP: '127.0.0.1' }] } },
      `portMappings[0].hostPort 22 is refused for annotation oci-netdev.netDevices by policy ${policy}: it lies in no range of annotation.allowHostPorts, which allows only 1024-65535 by default`],
    ['an address of its choosing', { runtimeConfig: { ips: ['10.75.0.1/24'] } },
      `runtimeConfig.ips is refused for annotation oci-netdev.netDevices by policy ${policy}: it matches no pattern of annotation.allowCapabilities, which allows only portMappings by default`],
    ['CNI_ARGS IP=', { args: { IP: '10.75.0.1' } },
      `CNI_ARGS key IP is refused for annotation oci-netdev.netDevices by policy ${policy}: it matches no pattern of annotation.allowArgs, which allows no CNI_ARGS key by default`],
  ];
  for (const [what, entry, message] of cases) annotationRefused(t, rig, dirs, env, net, entry, message, what);
});

t.test("the annotation's hostIP ::ffff:127.0.0.1 (IPv4-mapped) under allowHostIPs [\"::/0\"]: judged as 127.0.0.1 and refused, no NAT rule", async (t) => {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  const net = uniqueId('pm');
  bridgeNetwork(dirs, net, uniqueName('br'), '10.74.0.0/24', [{ type: 'portmap', capabilities: { portMappings: true } }]);
  const policy = policyOf(rig, { annotation: { allowNetworks: [net], allowHostIPs: ['::/0'] } });
  annotationRefused(t, rig, dirs, { ...dirs.env, OCI_NETDEV_POLICY: policy }, net, { portMappings: [{ hostPort: 8080, containerPort: 80, hostIP: '::ffff:127.0.0.1' }] },
    `portMappings[0].hostIP ::ffff:127.0.0.1 (judged as 127.0.0.1) is refused for annotation oci-netdev.netDevices by policy ${policy}: it lies within no prefix of annotation.allowHostIPs ["::/0"]`,
    'a mapped loopback hostIP');
});

/**
 * A bridge + host-local network whose ranges come from the ipRanges capability only (host-local
 * would add its own ranges after them), then `more` plugins.
 */
function ipRangesNetwork(dirs: CniDirs, name: string, bridge: string, more: object[] = []): void {
  writeConflist(dirs, name, [
    {
      type: 'bridge', bridge, isGateway: true, ipMasq: false, capabilities: { ipRanges: true },
      ipam: { type: 'host-local', dataDir: dirs.ipamDir },
    },
    ...more,
  ]);
}

t.test("the annotation's ipRanges set the host bridge's address: judged by allowHostAddresses and the in-use rule, and a failed ADD leaves none", async (t) => {
  const rig = makeRig(t);
  const dirs = cniDirs(rig.sb);
  writeRecorders(dirs, ['rec-a']);
  const bridge = uniqueName('br');
  shOk('ip', ['-n', rig.simhost, 'link', 'add', bridge, 'type', 'bridge']);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', bridge, 'up']);
  const net = uniqueId('ipr');
  const failing = uniqueId('iprf');
  const other = uniqueId('ipro');
  ipRangesNetwork(dirs, net, bridge);
  ipRangesNetwork(dirs, failing, bridge, [{ type: 'rec-a', fail: 'ADD', record: join(dirs.confDir, 'calls.jsonl') }]);
  ipRangesNetwork(dirs, other, uniqueName('bro'));
  const policy = policyOf(rig, { annotation: { allowNetworks: [net, failing, other], allowCapabilities: ['ipRanges'], allowHostAddresses: ['10.76.0.0/16'] } });
  const env = { ...dirs.env, OCI_NETDEV_POLICY: policy };
  const refusedBy = `is refused for annotation oci-netdev.netDevices by policy ${policy}`;
  annotationRefused(t, rig, dirs, env, net, { runtimeConfig: { ipRanges: [[{ subnet: '128.0.0.0/1' }]] } },
    `runtimeConfig.ipRanges[0][0].subnet 128.0.0.0/1 ${refusedBy}: it lies within no prefix of annotation.allowHostAddresses ["10.76.0.0/16"]`,
    'half of IPv4 as the subnet (128.0.0.1/1 on the host bridge)');
  annotationRefused(t, rig, dirs, env, net, { runtimeConfig: { ipRanges: [[{ subnet: '10.76.1.0/24', gateway: '10.77.0.1' }]] } },
    `runtimeConfig.ipRanges[0][0].gateway 10.77.0.1/24 ${refusedBy}: it lies within no prefix of annotation.allowHostAddresses ["10.76.0.0/16"]`,
    'a gateway outside');

  const addresses = () => ipDetails(rig.simhost)[bridge].addr_info.filter((a) => a.scope === 'global');
  t.same(addresses(), [], 'the bridge has no address yet');
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [failing]: { type: 'cni', name: 'eth1', runtimeConfig: { ipRanges: [[{ subnet: '10.76.5.0/24' }]] } } }) } });
  const r = traced(rig, 'create-runtime', ociState(id, bundle, 'creating'), env);
  t.not(r.status, 0, 'an allowed range, the chain failing after the bridge plugin: createRuntime fails');
  t.match(userStderr(r.stderr), 'rec-a refuses ADD', "naming the plugin's error");
  t.same(addresses(), [], 'the bridge has no address after the failed ADD');
  t.same(stateEntries(rig.stateDir), [], 'no state');

  // The network's own gateway already on its bridge is no change; on another bridge it is in use.
  shOk('ip', ['-n', rig.simhost, 'addr', 'add', '10.76.5.1/24', 'dev', bridge]);
  const ranges = { ipRanges: [[{ subnet: '10.76.5.0/24' }]] };
  annotationRefused(t, rig, dirs, env, other, { runtimeConfig: ranges },
    `runtimeConfig.ipRanges[0][0].gateway 10.76.5.1/24 ${refusedBy}: it is in use by host device ${bridge}, and annotation.allowAddressesInUse is false by default`,
    "another network's bridge address");
  annotationRefused(t, rig, dirs, env, net, { runtimeConfig: { ipRanges: [[{ subnet: '10.76.0.0/20' }]] } },
    `runtimeConfig.ipRanges[0][0].gateway 10.76.0.1/20 ${refusedBy}: it overlaps 10.76.5.1/24, in use by host device ${bridge}, and annotation.allowAddressesInUse is false by default`,
    'a wider prefix on the same bridge');
  const ok = configBundle(rig.sb, rig.ctr, { annotations: { 'oci-netdev.netDevices': JSON.stringify({ [net]: { type: 'cni', name: 'eth1', runtimeConfig: ranges } }) } });
  const okId = uniqueId('ctr');
  const added = traced(rig, 'create-runtime', ociState(okId, ok, 'creating'), env);
  t.equal(added.status, 0, 'the same range on the bridge that has its gateway: attached', { stderr: added.stderr });
  t.match(leases(dirs, net), [/^10\.76\.5\.\d+$/], 'leased from the range');
  t.equal(traced(rig, 'poststop', ociState(okId, ok, 'stopped'), env).status, 0, 'poststop');
  t.same(addresses().map((a) => `${a.local}/${a.prefixlen}`), ['10.76.5.1/24'], "the bridge keeps its own address");
});
