// Host entries that pick their device by hwaddr, pciBusID or kernelpath: parsing (src/config/load.ts),
// resolution over the host's link dump (src/plan/select.ts), the policy on the device found, and
// the DAD flag of the addresses the planner puts in the container. Veths have no parent bus
// device, so pciBusID and kernelpath are shown here over LinkInfo as the kernel reports a PCI NIC.
import t from 'tap';
import { ofKind } from '../helpers/records';
import { PolicyError } from '../../src/errors';
import { fakeLink } from '../helpers/links';
import { parseNetDevices } from '../../src/config/load';
import { checkPolicy, parsePolicy } from '../../src/config/policy';
import { defaultPolicy } from '../../src/config/policy';
import type { DeviceSpec } from '../../src/config/types';
import { ConfigError, PlanError } from '../../src/errors';
import { AF_INET6, IFA_F_NODAD, IFA_F_PERMANENT } from '../../src/netlink/constants';
import type { AddressInfo } from '../../src/netlink/address';
import { forContainer, planAttach } from '../../src/plan/plan';
import { resolveSelectors, selects } from '../../src/plan/select';
import { thrown } from '../helpers/assert';

/** Two ports of a dual-port PCI card and a VF, as rtnetlink describes them (no kind, a parent device). */
const pci = (index: number, name: string, dev: string, extra = {}) =>
  fakeLink(index, name, { kind: null, parentBus: 'pci', parentDev: dev, ...extra });
const hostLinks = [
  fakeLink(1, 'lo', { flags: 0x9, kind: null, mac: '00:00:00:00:00:00' }),
  pci(2, 'enp59s0f0', '0000:3b:00.0', { mac: '02:aa:00:00:00:01', permanentMac: 'b8:59:9f:00:00:01' }),
  pci(3, 'enp59s0f1', '0000:3b:00.1', { mac: 'b8:59:9f:00:00:02', permanentMac: 'b8:59:9f:00:00:02' }),
  pci(4, 'enp59s0f0v0', '0000:3b:02.0', { mac: '02:aa:00:00:00:03' }),
  fakeLink(5, 'usb0', { kind: null, parentBus: 'usb', parentDev: '1-1:1.0', mac: '02:aa:00:00:00:05' }),
  fakeLink(6, 'veth9', { mac: '02:aa:00:00:00:06' }),
];

const one = (entry: object, key = 'net1'): DeviceSpec => parseNetDevices({ [key]: entry }, 'config')[0];
const resolve = (entry: object, links = hostLinks) => resolveSelectors([one(entry)], links)[0];
t.test('parsing: one selector per host entry, normalised; the key only names the entry', async (t) => {
  t.same(one({ hwaddr: 'B8:59:9F:00:00:02' }), { key: 'net1', kind: 'host', name: 'net1', source: 'config', select: { by: 'hwaddr', value: 'b8:59:9f:00:00:02' } });
  t.same(one({ pciBusID: '0000:3B:00.1', name: 'eth1' }).select, { by: 'pciBusID', value: '0000:3b:00.1' });
  t.same(one({ pciBusID: '3b:02.0' }).select, { by: 'pciBusID', value: '0000:3b:02.0' }, 'the PCI domain defaults to 0000');
  t.same(one({ kernelpath: '/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1/' }).select,
    { by: 'kernelpath', value: '/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1' }, 'a trailing slash is dropped');
  t.equal(one({ dad: true }).dad, true, 'dad is read');
  t.equal(one({}).dad, undefined, 'and absent by default');
  t.equal(one({ type: 'veth', dad: true }).dad, true, 'dad is for every type');

  const both = thrown(() => one({ hwaddr: 'b8:59:9f:00:00:02', pciBusID: '0000:3b:00.1' })) as ConfigError;
  t.type(both, ConfigError);
  t.equal(both.message, 'device net1: hwaddr and pciBusID: give only one of hwaddr, pciBusID and kernelpath');
  t.match(thrown(() => one({ hwaddr: 'b8-59-9f-00-00-02' })).message, 'device net1: hwaddr: must be a MAC address');
  t.match(thrown(() => one({ pciBusID: '3b:00' })).message, 'device net1: pciBusID: must be a PCI address such as 0000:3b:00.1');
  t.match(thrown(() => one({ pciBusID: '0000:3b:00.8' })).message, 'must be a PCI address');
  t.match(thrown(() => one({ kernelpath: '/sys/class/net/eth1' })).message, 'device net1: kernelpath: must be a sysfs device path');
  t.match(thrown(() => one({ kernelpath: '/sys/devices/' })).message, 'must be a sysfs device path');
  t.match(thrown(() => one({ dad: 'yes' })).message, 'device net1: dad: must be boolean');
  for (const type of ['veth', 'macvlan']) {
    const err = thrown(() => one({ type, ...(type === 'macvlan' && { master: 'enp59s0f1' }), hwaddr: 'b8:59:9f:00:00:02' }));
    t.match(err.message, 'device net1: hwaddr: is only allowed for type host', `${type}: no selector`);
  }
});

t.test('hwaddr: the permanent MAC where the kernel reports one, else the current MAC', async (t) => {
  t.equal(resolve({ hwaddr: 'b8:59:9f:00:00:01' }).device, 'enp59s0f0', 'by its permanent MAC, though its MAC was changed');
  t.match(thrown(() => resolve({ hwaddr: '02:aa:00:00:00:01' })).message,
    'device net1: hwaddr 02:aa:00:00:00:01 matches no device in the host network namespace', 'not by the current MAC of a NIC that has a permanent one');
  t.equal(resolve({ hwaddr: '02:AA:00:00:00:03' }).device, 'enp59s0f0v0', 'a VF without a permanent MAC: its current one');
  t.equal(resolve({ hwaddr: '02:aa:00:00:00:06' }).device, 'veth9', 'a virtual device too');
});

t.test('pciBusID: the NIC whose parent is that PCI device', async (t) => {
  t.equal(resolve({ pciBusID: '0000:3b:00.1' }).device, 'enp59s0f1');
  t.equal(resolve({ pciBusID: '3b:02.0' }).device, 'enp59s0f0v0', 'a VF by its address');
  t.match(thrown(() => resolve({ pciBusID: '0000:3b:00.2' })).message, 'device net1: pciBusID 0000:3b:00.2 matches no device');
  t.notOk(selects({ by: 'pciBusID', value: '0000:3b:00.1' }, { ...hostLinks[2], parentBus: 'usb' }), 'the bus must be pci');
});

t.test('kernelpath: the NIC whose parent is the last component of that sysfs path', async (t) => {
  t.equal(resolve({ kernelpath: '/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0' }).device, 'enp59s0f0');
  t.equal(resolve({ kernelpath: '/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0' }).device, 'usb0', 'any bus');
  t.match(thrown(() => resolve({ kernelpath: '/sys/devices/pci0000:3a/0000:3a:00.0' })).message, 'device net1: kernelpath /sys/devices/pci0000:3a/0000:3a:00.0 matches no device');
});

t.test('several matches, a device another entry asks for, a macvlan master: one-line errors', async (t) => {
  // A card with two ports behind one PCI function (mlx4 does this).
  const twoPorts = [...hostLinks, pci(7, 'enp59s0d1', '0000:3b:00.1')];
  const err = thrown(() => resolve({ pciBusID: '0000:3b:00.1' }, twoPorts));
  t.type(err, PlanError);
  t.equal(err.message, 'device net1: pciBusID 0000:3b:00.1 matches 2 devices in the host network namespace (enp59s0f1, enp59s0d1); it must match one');
  t.equal((err as PlanError).device, 'net1');

  const specs = parseNetDevices({ 'enp59s0f1': {}, net1: { pciBusID: '0000:3b:00.1' } }, 'config');
  t.equal(thrown(() => resolveSelectors(specs, hostLinks)).message,
    'device net1: pciBusID 0000:3b:00.1 selects enp59s0f1, which entry enp59s0f1 also asks for');
  const twice = parseNetDevices({ a: { hwaddr: 'b8:59:9f:00:00:02' }, b: { pciBusID: '0000:3b:00.1' } }, 'config');
  t.match(thrown(() => resolveSelectors(twice, hostLinks)).message, /^device a: hwaddr b8:59:9f:00:00:02 selects enp59s0f1, which entry b also asks for$/);
  const master = parseNetDevices({ net1: { hwaddr: 'b8:59:9f:00:00:02' }, mv0: { type: 'macvlan', master: 'enp59s0f1' } }, 'config');
  t.equal(thrown(() => resolveSelectors(master, hostLinks)).message,
    'device net1: hwaddr b8:59:9f:00:00:02 selects enp59s0f1, which must stay on the host as the master of macvlan entry mv0');
  t.same(resolveSelectors(parseNetDevices({ eth9: {} }, 'config'), hostLinks), parseNetDevices({ eth9: {} }, 'config'), 'entries without a selector pass unchanged');
});

t.test('the policy judges the device found, once it is found', async (t) => {
  const policy = parsePolicy(JSON.stringify({ config: { allowDevices: ['enp59s0f0v*'] } }), '/etc/oci-netdev/policy.json');
  const vf = one({ pciBusID: '0000:3b:02.0' });
  const pf = one({ pciBusID: '0000:3b:00.1' });
  t.doesNotThrow(() => checkPolicy([pf], policy), 'unresolved: left for later');
  t.doesNotThrow(() => checkPolicy(resolveSelectors([vf], hostLinks), policy), 'a VF the policy allows');
  const err = thrown(() => checkPolicy(resolveSelectors([pf], hostLinks), policy));
  t.type(err, PolicyError);
  t.match(err.message, /^device net1: host device enp59s0f1 \(pciBusID 0000:3b:00.1\) is refused for linux.netDevices by policy/);
  const named = one({ hwaddr: 'b8:59:9f:00:00:02' }, 'enp59s0f0v9');
  t.throws(() => checkPolicy(resolveSelectors([named], hostLinks), policy), PolicyError, 'the entry key matching the policy does not help');
});

t.test('the planner moves the device found and records its real name for the restore', async (t) => {
  const [spec] = resolveSelectors([one({ pciBusID: '0000:3b:00.1', name: 'eth1' })], hostLinks);
  const ctx = { group: 0x12345, claims: new Map<string, string>(), macvlanMasters: new Map<number, string>(), policy: defaultPolicy() };
  const observed = { hostLinks, hostAddresses: [], containerLinks: [hostLinks[0]], containerAddresses: [] };
  const plan = planAttach([spec], observed, ctx);
  t.equal(plan.devices[0].key, 'net1', 'the record keeps the entry key');
  t.equal(ofKind(plan.devices[0], 'host').original.name, 'enp59s0f1', 'and the device as it was, under its real name');
  t.equal(ofKind(plan.devices[0], 'host').original.index, 3);
  t.same(plan.devices[0].identity, { kind: null, permanentMac: 'b8:59:9f:00:00:02', parentBus: 'pci', parentDev: '0000:3b:00.1' });
  const busy = thrown(() => planAttach([spec], observed, { ...ctx, claims: new Map([['enp59s0f1', 'other']]) }));
  t.equal(busy.message, 'device enp59s0f1 is held by container other', 'claims are by the device found');
});

t.test('IPv6 addresses go into the container without DAD unless the entry keeps it', async (t) => {
  const v6 = (flags: number): AddressInfo => ({ family: AF_INET6, prefixlen: 64, flags, scope: 0, address: '2001:db8::1', preferredLifetime: 0xffffffff, validLifetime: 0xffffffff });
  t.equal(forContainer(v6(IFA_F_PERMANENT)).flags, IFA_F_PERMANENT | IFA_F_NODAD);
  t.equal(forContainer(v6(IFA_F_PERMANENT | IFA_F_NODAD), true).flags, IFA_F_PERMANENT, 'dad: true takes nodad off');
  const v4: AddressInfo = { family: 2, prefixlen: 24, flags: IFA_F_PERMANENT, scope: 0, address: '192.0.2.1' , preferredLifetime: 0xffffffff, validLifetime: 0xffffffff };
  t.equal(forContainer(v4).flags, IFA_F_PERMANENT, 'IPv4 has no DAD');

  const link = fakeLink(5, 'nic0');
  const hostAddresses = [{ ...v6(IFA_F_PERMANENT), index: 5 }];
  const observed = { hostLinks: [link], hostAddresses, containerLinks: [], containerAddresses: [] };
  const ctx = { group: 1, claims: new Map<string, string>(), macvlanMasters: new Map<number, string>(), policy: defaultPolicy() };
  const moved = ofKind(planAttach(parseNetDevices({ nic0: {} }, 'config'), observed, ctx).devices[0], 'host');
  t.equal(moved.containerAddresses[0].flags & IFA_F_NODAD, IFA_F_NODAD, 'a moved address: nodad in the container');
  t.equal(moved.original.addresses[0].flags, IFA_F_PERMANENT, 'the original flags are kept for the restore');
  const kept = planAttach(parseNetDevices({ nic0: { dad: true } }, 'config'), observed, ctx).devices[0];
  t.equal(kept.containerAddresses[0].flags & IFA_F_NODAD, 0, '"dad": true: with DAD');
  const veth = planAttach(parseNetDevices({ v0: { type: 'veth', addresses: ['fd00::1/64'], dad: true } }, 'config'), observed, ctx).devices[0];
  t.equal(veth.containerAddresses[0].flags & IFA_F_NODAD, 0, 'a created device\'s address keeps DAD with "dad": true');
  const plain = planAttach(parseNetDevices({ v0: { type: 'veth', addresses: ['fd00::1/64'] } }, 'config'), observed, ctx).devices[0];
  t.equal(plain.containerAddresses[0].flags & IFA_F_NODAD, IFA_F_NODAD, 'and skips it by default');
});
