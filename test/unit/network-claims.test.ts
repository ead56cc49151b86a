// The claims check of CNI networks (src/engine/networks.ts refuseHeldByNetworks) for
// runtimeConfig.deviceID, the device plugin's PCI or auxiliary address a plugin that declares the
// deviceID capability (host-device) moves the NIC of. No PCI NIC here: the host's link dump is made
// up, and the held map is what the claims scan gives (host device name -> holder).
import t from 'tap';
import { fakeLink } from '../helpers/links';
import { refuseHeldByNetworks } from '../../src/engine/networks';
import type { JournalNetwork } from '../../src/state/statedir';
import { DeviceBusyError } from '../../src/errors';

const nic = fakeLink(7, 'nicA', { kind: null, permanentMac: '00:11:22:33:44:55', parentBus: 'pci', parentDev: '0000:3b:00.1' });
const sf = fakeLink(8, 'nicB', { kind: null, parentBus: 'auxiliary', parentDev: 'mlx5_core.sf.4' });
const held = new Map([['nicA', 'web-1'], ['nicB', 'web-2']]);

const network = (plugin: object, runtimeConfig: Record<string, unknown>): JournalNetwork => ({
  network: 'sriov', ifname: 'net1', args: [], runtimeConfig, config: { cniVersion: '1.0.0', name: 'sriov', plugins: [plugin] },
  cniPath: ['/opt/cni/bin'], cacheDir: '/var/lib/cni', state: 'pending',
});
const hostDevice = { type: 'host-device', capabilities: { deviceID: true } };

t.test("runtimeConfig.deviceID naming a held device's PCI address, matched against a made-up link dump as pciBusID is: refused naming the holder", async (t) => {
  for (const deviceID of ['0000:3b:00.1', '3b:00.1', '0000:3B:00.1']) {
    const err = t.throws(() => refuseHeldByNetworks([network(hostDevice, { deviceID })], [nic, sf], held));
    t.type(err, DeviceBusyError, deviceID);
    t.equal((err as Error).message, `device sriov: plugin host-device's runtimeConfig.deviceID ${deviceID} picks nicA is held by container web-1`, deviceID);
  }
  t.throws(() => refuseHeldByNetworks([network(hostDevice, { deviceID: 'mlx5_core.sf.4' })], [nic, sf], held),
    { message: "device sriov: plugin host-device's runtimeConfig.deviceID mlx5_core.sf.4 picks nicB is held by container web-2" }, 'an auxiliary device too');
});

t.test('runtimeConfig.deviceID is not refused where it names nothing held', async (t) => {
  t.doesNotThrow(() => refuseHeldByNetworks([network({ type: 'host-device' }, { deviceID: '0000:3b:00.1' })], [nic], held),
    'a plugin that does not declare the capability is not given the deviceID');
  t.doesNotThrow(() => refuseHeldByNetworks([network(hostDevice, { deviceID: '0000:3b:00.2' })], [nic], held), 'another PCI function');
  t.doesNotThrow(() => refuseHeldByNetworks([network(hostDevice, { deviceID: '0000:3b:00.1' })], [nic], new Map()), 'a device no one holds');
});
