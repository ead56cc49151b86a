// podman 4.3 asks for NICs by CDI name (issue 12): `oci-netdev cdi generate` writes a spec for the
// simulated host's stand-in NICs under /etc/cdi (a unique file, removed in teardown), and `podman
// run --device oci-netdev.dev/net=NIC` hands them over with no annotation. With two devices podman
// adds two hook pairs; the first createRuntime attaches both under one journal, and after `podman
// rm` the simulated host is identical to before.
import t, { Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { groupedDevices, parseIpAddr, stateEntries } from '../helpers/netdevices';
import { makePodman, PODMAN_ULIMITS } from '../helpers/podman';
import { inSimHost, nsSnapshot, Sandbox, sh, shOk } from '../helpers/sandbox';

const CDI_DIR = '/etc/cdi';
const KIND = 'oci-netdev.dev/net';

/** A simulated host with two stand-in NICs, a policy that allows only them, podman, and a rootfs. */
function setup(t: Test) {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const [nic1, nic2] = [uniqueName('nic'), uniqueName('nic')];
  sb.createVethPair(simhost, nic1, uniqueName('peer'));
  sb.createVethPair(simhost, nic2, uniqueName('peer'));
  shOk('ip', ['-n', simhost, 'addr', 'add', '192.0.2.41/24', 'dev', nic1]);
  shOk('ip', ['-n', simhost, 'addr', 'add', '2001:db8:41::1/64', 'dev', nic1, 'nodad']);
  shOk('ip', ['-n', simhost, 'addr', 'add', '198.51.100.42/24', 'dev', nic2]);
  const stateDir = makeStateDir(sb);
  const policyFile = join(sb.tempDir('policy'), 'policy.json');
  writeFileSync(policyFile, JSON.stringify({ config: { allowDevices: [nic1, nic2] } }), { mode: 0o644 });
  const podman = makePodman(sb, simhost, { stateDir });
  const rootfs = join(makeBundle(sb, { args: [] }), 'rootfs');
  return { sb, simhost, nic1, nic2, stateDir, policyFile, podman, rootfs };
}

/**
 * `oci-netdev cdi generate --out /etc/cdi/<unique>.json ...` in the simulated host. Teardown
 * removes the file, and /etc/cdi too when this test created it and it is empty.
 */
function generateSpec(sb: Sandbox, simhost: string, args: string[]): { file: string; result: ReturnType<typeof sh> } {
  const file = join(CDI_DIR, `${uniqueId('cdi')}.json`);
  const madeDir = !existsSync(CDI_DIR);
  sb.defer(() => {
    rmSync(file, { force: true });
    if (madeDir && existsSync(CDI_DIR) && readdirSync(CDI_DIR).length === 0) rmdirSync(CDI_DIR);
  });
  if (madeDir) mkdirSync(CDI_DIR, { mode: 0o755 });
  const result = sh(...inSimHost(simhost, [OCI_NETDEV, ...args, 'cdi', 'generate', '--out', file]));
  return { file, result };
}

t.test('cdi generate: one device per allowed NIC, hooks with the options and --device given', async (t) => {
  const { sb, simhost, nic1, nic2, stateDir, policyFile } = setup(t);
  const { file, result } = generateSpec(sb, simhost, ['--state-dir', stateDir, '--policy', policyFile, '--device', `${nic1}:name=net1,mtu=1400`]);
  t.equal(result.status, 0, 'cdi generate exits 0', { stderr: result.stderr });
  t.match(result.stdout, new RegExp(`^${file}: 2 device\\(s\\) of kind ${KIND}: ${nic1}, ${nic2}$`, 'm'), 'it says what it wrote');
  t.match(result.stdout, /^skipped lo: always-refused: loopback/m, 'the loopback device is always refused');
  t.equal(statSync(file).mode & 0o777, 0o644, 'the spec is mode 0644');
  const spec = JSON.parse(readFileSync(file, 'utf8'));
  t.equal(spec.cdiVersion, '0.5.0');
  t.equal(spec.kind, KIND);
  t.same(spec.devices.map((d: { name: string }) => d.name), [nic1, nic2], 'the allowed NICs only: not their peers, not lo');
  const hooks = spec.devices[0].containerEdits.hooks;
  t.same(hooks.map((h: { hookName: string }) => h.hookName), ['createRuntime', 'poststop']);
  t.same(hooks[0].args, ['oci-netdev', '--state-dir', stateDir, '--policy', policyFile, 'create-runtime', '--device', `${nic1}:name=net1,mtu=1400`]);
  t.same(spec.devices[1].containerEdits.hooks[1].args, ['oci-netdev', '--state-dir', stateDir, '--policy', policyFile, 'poststop', '--device', nic2]);
  const base = file.slice(CDI_DIR.length + 1);
  t.same(readdirSync(CDI_DIR).filter((n) => n.includes(base)), [base], 'no temp file is left beside it');

  const v11 = sh(...inSimHost(simhost, [OCI_NETDEV, '--policy', policyFile, 'cdi', 'generate', '--cdi-version', '1.1.0', '--out', file]));
  t.equal(v11.status, 0, 'cdi generate --cdi-version 1.1.0 exits 0', { stderr: v11.stderr });
  const spec11 = JSON.parse(readFileSync(file, 'utf8'));
  t.same(spec11.devices[0].containerEdits.netDevices, [{ hostInterfaceName: nic1, name: nic1 }], '1.1.0 adds netDevices edits');

  const refused = sh(...inSimHost(simhost, [OCI_NETDEV, '--policy', policyFile, 'cdi', 'generate', '--device', 'lo', '--out', file]));
  t.equal(refused.status, 1, 'a --device the spec cannot offer is an error');
  t.equal(refused.stderr, 'oci-netdev: --device lo: cannot be offered: always-refused: loopback (it is the loopback device)\n');
  t.same(JSON.parse(readFileSync(file, 'utf8')), spec11, 'and the file is unchanged');
});

t.test('podman run --device oci-netdev.dev/net=NIC, one and two at once; podman rm restores the host', async (t) => {
  const { sb, simhost, nic1, nic2, stateDir, policyFile, podman, rootfs } = setup(t);
  const before = nsSnapshot(simhost);
  const { result } = generateSpec(sb, simhost, ['--state-dir', stateDir, '--policy', policyFile, '--device', `${nic1}:name=net1,mtu=1400`]);
  t.equal(result.status, 0, 'cdi generate exits 0', { stderr: result.stderr });

  // One device.
  const one = uniqueId('cdi1');
  const r1 = podman.run(['run', '--name', one, '--network', 'none', ...PODMAN_ULIMITS, '--device', `${KIND}=${nic1}`, '--rootfs', rootfs, 'ip', 'addr']);
  t.equal(r1.status, 0, 'podman run exits 0', { stderr: r1.stderr });
  const seen1 = parseIpAddr(r1.stdout);
  t.same(Object.keys(seen1).sort(), ['lo', 'net1'], 'the container sees the NIC under its name from --device', { stdout: r1.stdout });
  t.equal(seen1.net1?.mtu, 1400, 'with the MTU from --device');
  t.same(seen1.net1?.addresses.sort(), ['192.0.2.41/24', '2001:db8:41::1/64'], 'and its addresses');
  t.equal(podman.run(['rm', one]).status, 0, 'podman rm exits 0');
  t.same(nsSnapshot(simhost), before, 'after podman rm the simulated host is identical to before');
  t.same(stateEntries(stateDir), [], 'no state remains');

  // Two devices: two hook pairs, one lifecycle.
  const two = uniqueId('cdi2');
  const r2 = podman.run(['run', '-d', '--name', two, '--network', 'none', ...PODMAN_ULIMITS,
    '--device', `${KIND}=${nic1}`, '--device', `${KIND}=${nic2}`, '--rootfs', rootfs, 'sleep', '1000']);
  t.equal(r2.status, 0, 'podman run -d with two devices exits 0', { stderr: r2.stderr });
  const exec = podman.run(['exec', two, 'ip', 'addr']);
  t.equal(exec.status, 0, 'podman exec exits 0', { stderr: exec.stderr });
  const seen2 = parseIpAddr(exec.stdout);
  t.same(Object.keys(seen2).sort(), ['lo', 'net1', nic2].sort(), 'the container sees both NICs', { stdout: exec.stdout });
  t.same(seen2[nic2]?.addresses, ['198.51.100.42/24'], 'the second with its address');
  t.equal(stateEntries(stateDir).length, 1, 'one container folder in the state dir');
  const status = sh(...inSimHost(simhost, [OCI_NETDEV, '--state-dir', stateDir, 'status', '--json']));
  t.equal(status.status, 0, 'status exits 0', { stderr: status.stderr });
  const entries = JSON.parse(status.stdout) as { devices: { key: string; state: string }[] }[];
  t.same(entries.map((e) => e.devices.map((d) => [d.key, d.state])), [[[nic1, 'in'], [nic2, 'in']]], 'one journal holds both devices');

  const rm = podman.run(['rm', '--force', '--time', '0', two]);
  t.equal(rm.status, 0, 'podman rm --force exits 0', { stderr: rm.stderr });
  t.equal(podman.run(['ps', '--all', '--quiet']).stdout, '', 'podman holds no container');
  t.same(nsSnapshot(simhost), before, 'after podman rm the simulated host is identical to before');
  t.same(groupedDevices(simhost), [], 'no created device remains');
  t.same(stateEntries(stateDir), [], 'no state remains');
});
