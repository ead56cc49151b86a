// podman 4.3 (Debian) with the hooks.d file from `oci-netdev hooks-d` and the annotation
// oci-netdev.netDevices (issue 3): `podman run --network none --rootfs DIR` inside a simulated
// host gives the container a namespace of its own; the hook moves a stand-in NIC there and creates
// a veth pair and a macvlan, with MAC, MTU and addresses. After `podman rm` the simulated host is
// identical to before. podman keeps its store private to the test (test/helpers/podman.ts).
import t, { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { annotationPolicy, groupedDevices, parseIpAddr, SeenDevice, stateEntries } from '../helpers/netdevices';
import { csvAnnotation, makePodman, PODMAN_ULIMITS } from '../helpers/podman';
import { nsSnapshot, Sandbox, shOk } from '../helpers/sandbox';

const ANNOTATION = 'oci-netdev.netDevices';

function setup(t: Test) {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const stateDir = makeStateDir(sb);
  const podman = makePodman(sb, simhost, { stateDir, policyFile: annotationPolicy(sb) });
  const rootfs = join(makeBundle(sb, { args: [] }), 'rootfs');
  return { sb, simhost, stateDir, podman, rootfs };
}

t.test('podman: the annotation brings a moved NIC, a veth and a macvlan; podman rm restores the host', async (t) => {
  const { sb, simhost, stateDir, podman, rootfs } = setup(t);
  const [nic, vh, master] = [uniqueName('nic'), uniqueName('vh'), uniqueName('mst')];
  sb.createVethPair(simhost, nic, uniqueName('peer'));
  sb.createVethPair(simhost, master, uniqueName('mpeer'));
  shOk('ip', ['-n', simhost, 'addr', 'add', '192.0.2.30/24', 'dev', nic]);
  shOk('ip', ['-n', simhost, 'addr', 'add', '2001:db8:3::30/64', 'dev', nic, 'nodad']);
  const before = nsSnapshot(simhost);

  const devices = {
    [nic]: { name: 'eth1', mtu: 1400, mac: '02:F1:00:00:00:01' },
    [vh]: { type: 'veth', name: 'eth2', mtu: 1450, mac: '02:f2:00:00:00:02', addresses: ['10.40.0.2/24', 'fd40::2/64'] },
    mv0: { type: 'macvlan', master, mode: 'private', name: 'eth3', mtu: 1300, mac: '02:f3:00:00:00:03', addresses: ['10.50.0.2/24'] },
  };
  const name = uniqueId('podman');
  const r = podman.run([
    'run', '--name', name, '--network', 'none', ...PODMAN_ULIMITS,
    '--annotation', csvAnnotation(ANNOTATION, JSON.stringify(devices)),
    '--rootfs', rootfs, 'ip', 'addr',
  ]);
  t.equal(r.status, 0, 'podman run exits 0', { stderr: r.stderr, stdout: r.stdout });

  const seen = parseIpAddr(r.stdout);
  t.same(Object.keys(seen).sort(), ['eth1', 'eth2', 'eth3', 'lo'], 'the container sees its devices, and nothing of the host', { stdout: r.stdout });
  const want: Record<string, Partial<SeenDevice>> = {
    eth1: { mtu: 1400, mac: '02:f1:00:00:00:01', addresses: ['192.0.2.30/24', '2001:db8:3::30/64'] },
    eth2: { mtu: 1450, mac: '02:f2:00:00:00:02', addresses: ['10.40.0.2/24', 'fd40::2/64'] },
    eth3: { mtu: 1300, mac: '02:f3:00:00:00:03', addresses: ['10.50.0.2/24'] },
  };
  for (const [dev, w] of Object.entries(want)) {
    const d = seen[dev];
    if (!d) continue;
    t.ok(d.flags.includes('UP'), `${dev} is up`, { flags: d.flags });
    t.equal(d.mtu, w.mtu, `${dev} MTU`);
    t.equal(d.mac, w.mac, `${dev} MAC`);
    t.same(d.addresses.sort(), w.addresses!.sort(), `${dev} addresses`);
  }

  const inspect = podman.run(['inspect', '--format', '{{json .Config.Annotations}}', name]);
  t.equal(inspect.status, 0, 'podman inspect exits 0', { stderr: inspect.stderr });
  t.same(JSON.parse(JSON.parse(inspect.stdout)[ANNOTATION]), devices, 'the CSV-quoted annotation reached podman intact');

  const rm = podman.run(['rm', name]);
  t.equal(rm.status, 0, 'podman rm exits 0', { stderr: rm.stderr });
  t.equal(podman.run(['ps', '--all', '--quiet']).stdout, '', 'podman holds no container');
  t.same(nsSnapshot(simhost), before, 'after podman rm the simulated host is identical to before');
  t.same(groupedDevices(simhost), [], 'no created device remains');
  t.same(stateEntries(stateDir), [], 'no state remains');
});

t.test('podman: without the annotation the hook does nothing; a bad entry stops the container and changes nothing', async (t) => {
  const { sb, simhost, stateDir, podman, rootfs } = setup(t);
  const nic = uniqueName('nic');
  sb.createVethPair(simhost, nic, uniqueName('peer'));
  const before = nsSnapshot(simhost);

  const plain = podman.run(['run', '--rm', '--network', 'none', ...PODMAN_ULIMITS, '--rootfs', rootfs, 'ip', 'addr']);
  t.equal(plain.status, 0, 'a container without the annotation runs', { stderr: plain.stderr });
  t.same(Object.keys(parseIpAddr(plain.stdout)), ['lo'], 'and gets no device');
  t.same(stateEntries(stateDir), [], 'the hook kept no state');

  // crun drops a hook's stderr unless the annotation run.oci.hooks.stderr names a file for it.
  const hookErr = join(sb.tempDir('hook-stderr'), 'stderr');
  const absent = uniqueName('gone');
  const bad = podman.run([
    'run', '--rm', '--network', 'none', ...PODMAN_ULIMITS,
    '--annotation', csvAnnotation(ANNOTATION, JSON.stringify({ [nic]: { name: 'eth1' }, mv0: { type: 'macvlan', master: absent } })),
    '--annotation', `run.oci.hooks.stderr=${hookErr}`,
    '--rootfs', rootfs, 'echo', 'ran',
  ]);
  t.not(bad.status, 0, 'podman run fails');
  t.notMatch(bad.stdout, /ran/, 'the container never ran');
  t.ok(bad.stderr.includes(`error executing hook \`${OCI_NETDEV}\` (exit code: 1)`), `podman reports the failed hook: ${bad.stderr}`);
  t.equal(readFileSync(hookErr, 'utf8'), `oci-netdev: device mv0: macvlan master ${absent} does not exist on the host\n`, 'the hook said why, in one line');
  t.equal(podman.run(['ps', '--all', '--quiet']).stdout, '', 'podman holds no container');
  t.same(nsSnapshot(simhost), before, 'the simulated host is as before');
  t.same(stateEntries(stateDir), [], 'no state remains');
});
