// podman 4.3 with its CNI backend (a private containers.conf with network_backend = "cni", a
// private --network-config-dir and store) as a real libcni client of the oci-netdev CNI plugin:
// a conflist whose first plugin is oci-netdev (a stand-in NIC, host-local IPAM), then Debian's
// tuning. The running container sees the NIC as eth0 with tuning's MAC and MTU and the IPAM
// address; after `podman rm` the simulated host is identical and no state is left.
import t from 'tap';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { cniPath } from '../helpers/cni';
import { makeStateDir } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { parseIpAddr, stateEntries } from '../helpers/netdevices';
import { makePodman, PODMAN_ULIMITS } from '../helpers/podman';
import { nsSnapshot, Sandbox, settledTo, shOk, steady } from '../helpers/sandbox';

t.test('podman with CNI: oci-netdev then tuning hand the NIC as eth0; podman rm restores the host', async (t) => {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const stateDir = makeStateDir(sb);
  const nic = uniqueName('nic');
  sb.createVethPair(simhost, nic, uniqueName('peer'));
  shOk('ip', ['-n', simhost, 'addr', 'add', '192.0.2.60/24', 'dev', nic]);
  const before = await steady(simhost);

  const dir = sb.tempDir('podcni');
  const netDir = join(dir, 'net.d');
  const ipamDir = join(dir, 'ipam');
  shOk('mkdir', ['-p', netDir]);
  const network = uniqueId('net');
  const conflist = {
    cniVersion: '1.0.0',
    name: network,
    plugins: [
      { type: 'oci-netdev', device: nic, stateDir, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.126.0.0/24' }]] } },
      { type: 'tuning', mac: '02:00:5e:00:53:66', mtu: 1360, dataDir: join(dir, 'tuning') },
    ],
  };
  writeFileSync(join(netDir, `${network}.conflist`), JSON.stringify(conflist));
  const containersConf = join(dir, 'containers.conf');
  writeFileSync(containersConf, `[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ${JSON.stringify(cniPath(sb, stateDir))}\nnetwork_config_dir = "${netDir}"\n`);
  const podman = makePodman(sb, simhost, { stateDir, extraArgs: ['--network-config-dir', netDir], env: { CONTAINERS_CONF: containersConf } });
  const rootfs = join(makeBundle(sb, { args: [] }), 'rootfs');

  const name = uniqueId('podman');
  const started = podman.run(['run', '--detach', '--name', name, '--network', network, ...PODMAN_ULIMITS, '--rootfs', rootfs, 'sleep', '600']);
  t.equal(started.status, 0, 'podman run --detach exits 0', { stderr: started.stderr, stdout: started.stdout });
  const r = podman.run(['exec', name, 'ip', 'addr']);
  t.equal(r.status, 0, 'podman exec exits 0', { stderr: r.stderr });
  const seen = parseIpAddr(r.stdout);
  t.same(Object.keys(seen).sort(), ['eth0', 'lo'], 'the container sees eth0 and nothing else of the host', { stdout: r.stdout });
  t.equal(seen.eth0?.mac, '02:00:5e:00:53:66', 'eth0 has the MAC tuning set');
  t.equal(seen.eth0?.mtu, 1360, 'and its MTU');
  t.same(seen.eth0?.addresses.filter((a) => !a.includes(':')).sort(), ['10.126.0.2/24', '192.0.2.60/24'], 'the IPAM address, and the NIC\'s own');
  t.notOk(nic in nsSnapshot(simhost), 'the NIC is off the host');
  t.equal(stateEntries(stateDir).length, 1, 'the attachment is on record while the container runs');

  const rm = podman.run(['rm', '--force', '--time', '0', name]);
  t.equal(rm.status, 0, 'podman rm --force exits 0', { stderr: rm.stderr });
  t.same(await settledTo(simhost, before), before, 'the host is identical to before');
  t.same(stateEntries(stateDir), [], 'no state left');
  const held = existsSync(join(ipamDir, network)) ? readdirSync(join(ipamDir, network)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')) : [];
  t.same(held, [], 'host-local holds no address');
});
