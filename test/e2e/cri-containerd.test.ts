// containerd's CRI plugin, driven as the kubelet drives it (RunPodSandbox, PodSandboxStatus,
// StopPodSandbox, RemovePodSandbox over gRPC), with the oci-netdev CNI plugin moving a stand-in
// NIC (host-local IPAM) into the pod: the pod has it as eth0 with its own address and the lease,
// and after stop (DEL) and remove (DEL again, without a namespace) the simulated host is exactly
// as before, with no lease and no state left. Nothing under /etc/cni or /opt/cni is touched: the
// daemon has its own CNI dirs.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startContainerd } from '../helpers/cri';
import { reservations } from '../helpers/cni';
import { makeStateDir } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { stateEntries } from '../helpers/netdevices';
import { Sandbox, settledTo, shOk, steady } from '../helpers/sandbox';

t.test('the kubelet against containerd CRI: RunPodSandbox moves the NIC into the pod, StopPodSandbox and RemovePodSandbox bring it home exactly', async (t) => {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const stateDir = makeStateDir(sb);
  const ipamDir = sb.tempDir('ipam');
  const nic = uniqueName('nic');
  sb.createVethPair(simhost, nic, uniqueName('peer'));
  shOk('ip', ['-n', simhost, 'link', 'set', nic, 'mtu', '1400']);
  shOk('ip', ['-n', simhost, 'addr', 'add', '192.0.2.61/24', 'dev', nic]);
  const containerd = await startContainerd(sb, simhost, stateDir);
  const before = await steady(simhost);
  const network = uniqueId('pods');
  writeFileSync(join(containerd.confDir, '10-pods.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: network,
    plugins: [{ type: 'oci-netdev', device: nic, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.94.0.0/24' }]] } }],
  }));
  const { cri } = containerd;
  const id = await cri.runPodSandbox(uniqueId('pod'), uniqueId('uid'), containerd.logDir);
  t.match(id, /^[0-9a-f]{64}$/, 'RunPodSandbox gives a sandbox id');
  const running = await cri.podSandboxStatus(id);
  t.same([running.state, running.ip], ['ready', '10.94.0.2'], "the sandbox is ready with IPAM's address");
  t.ok(running.netns, 'its network namespace is named', { running });
  const inPod = JSON.parse(shOk('nsenter', [`--net=${running.netns!}`, 'ip', '-j', 'addr', 'show', 'eth0'])) as { mtu: number; addr_info: { family: string; local: string; prefixlen: number }[] }[];
  t.equal(inPod[0]?.mtu, 1400, 'the NIC is eth0 in the pod, its MTU kept');
  t.same(inPod[0]?.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`).sort(), ['10.94.0.2/24', '192.0.2.61/24'],
    'with its own address and the lease');
  t.notOk(JSON.parse(shOk('ip', ['-n', simhost, '-j', 'link'])).some((l: { ifname: string }) => l.ifname === nic), 'and no longer on the host');
  t.same(reservations(ipamDir, network), ['10.94.0.2'], 'host-local holds the lease');

  await cri.stopPodSandbox(id);
  t.equal((await cri.podSandboxStatus(id)).state, 'notready', 'StopPodSandbox: the sandbox is not ready');
  t.same(await settledTo(simhost, before), before, 'after the DEL of StopPodSandbox the host is exactly as before');
  t.same(reservations(ipamDir, network), [], 'the lease is free');

  await cri.removePodSandbox(id);
  t.same(await settledTo(simhost, before), before, 'RemovePodSandbox (a second DEL, without a namespace) changes nothing');
  t.same(stateEntries(stateDir), [], 'no state is left');
});
