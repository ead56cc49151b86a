// gateway, routes, hostBridge, hostAddresses and hostMac (issue 12): what the schema and
// src/config accept and refuse, the policy's allowBridges, and what the planner makes of them
// (the addRoutes step, the route entries, the bridge checks, gateways of a moved device).
import t, { Test } from 'tap';
import { ofKind } from '../helpers/records';
import { fakeLink } from '../helpers/links';
import { ConfigError, PlanError, PolicyError } from '../../src/errors';
import { parseNetDevices } from '../../src/config/load';
import { checkPolicy, defaultPolicy, parsePolicy } from '../../src/config/policy';
import type { DeviceSpec } from '../../src/config/types';
import { planAttach } from '../../src/plan/plan';
import type { Observed } from '../../src/plan/observed';
import type { AddressInfo } from '../../src/netlink/address';
import { routeMessage } from '../../src/netlink/route';
import { thrown } from '../helpers/assert';

/** parseNetDevices must refuse `entry` of device d0 with one ConfigError naming `field`. */
function rejects(t: Test, entry: object, field: string, message: string): void {
  const err = thrown(() => parseNetDevices({ d0: entry }, 'config'));
  if (!(err instanceof ConfigError)) {
    t.fail(`expected a ConfigError for ${JSON.stringify(entry)}, got ${String(err)}`);
    return;
  }
  t.equal(err.field, field, `names field ${field}: ${err.message}`);
  t.equal(err.message, `device d0: ${field}: ${message}`);
}

const one = (entry: object): DeviceSpec => parseNetDevices({ d0: entry }, 'config')[0];

t.test('accepted: gateway and routes on veth and macvlan, routes on host, host end fields on veth', async (t) => {
  t.same(one({ type: 'veth', addresses: ['10.0.0.2/24', 'fd00::2/64'], gateway: '10.0.0.1', routes: [{ dst: '::/0', gw: 'fd00::1' }, { dst: '192.0.2.0/24', gw: '10.0.0.9', metric: 5 }, { dst: '198.51.100.0/24' }] }), {
    key: 'd0', kind: 'veth', name: 'd0', source: 'config', addresses: ['10.0.0.2/24', 'fd00::2/64'], gateway: '10.0.0.1',
    routes: [{ dst: '::/0', gw: 'fd00::1' }, { dst: '192.0.2.0/24', gw: '10.0.0.9', metric: 5 }, { dst: '198.51.100.0/24' }],
  });
  t.equal(one({ type: 'macvlan', master: 'm0', addresses: ['10.0.0.2/24'], gateway: '10.0.0.1' }).gateway, '10.0.0.1', 'macvlan gateway');
  t.equal(one({ type: 'veth', gateway: 'fe80::1' }).gateway, 'fe80::1', 'an IPv6 link-local gateway needs no address');
  t.same(one({ type: 'veth', routes: [{ dst: '10.9.0.0/16' }, { dst: '0.0.0.0/0', gw: '10.9.0.1' }] }).routes?.length, 2, 'a gateway inside a route without gw');
  t.same(one({ routes: [{ dst: '0.0.0.0/0', gw: '203.0.113.1' }] }).routes, [{ dst: '0.0.0.0/0', gw: '203.0.113.1' }], 'host: checked at planning');
  t.same(one({ type: 'veth', hostBridge: 'br0', hostMac: '02:AA:00:00:00:01', hostAddresses: ['10.1.0.1/24'] }), {
    key: 'd0', kind: 'veth', name: 'd0', source: 'config', hostBridge: 'br0', hostMac: '02:aa:00:00:00:01', hostAddresses: ['10.1.0.1/24'],
  }, 'host end fields; the MAC in lower case');
  t.equal(one({ type: 'veth', addresses: ['10.0.0.2/24'], routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }, { dst: '0.0.0.0/0', gw: '10.0.0.3', metric: 10 }] }).routes?.length, 2, 'two default routes with different metrics');
});

t.test('refused: schema', async (t) => {
  rejects(t, { gateway: '10.0.0.1' }, 'gateway', "is only allowed for type veth or macvlan; give a moved device's default route in routes (got \"10.0.0.1\")");
  rejects(t, { type: 'macvlan', master: 'm0', hostBridge: 'br0' }, 'hostBridge', 'is only allowed for type veth (got "br0")');
  rejects(t, { hostMac: '02:00:00:00:00:01' }, 'hostMac', 'is only allowed for type veth (got "02:00:00:00:00:01")');
  rejects(t, { type: 'veth', hostAddresses: ['10.0.0.1/24'], gateway: 1 }, 'gateway', 'must be an IP address string (got 1)');
  rejects(t, { type: 'veth', routes: [{ gw: '10.0.0.1' }] }, 'routes[0].dst', 'must be an object with dst and optional gw and metric');
  rejects(t, { type: 'veth', routes: [{ dst: '10.0.0.0/8', via: '10.0.0.1' }] }, 'routes[0].via', 'unknown field');
  rejects(t, { type: 'veth', routes: [{ dst: '10.0.0.0/8', metric: -1 }] }, 'routes[0].metric', 'must be an integer from 0 to 4294967295 (got -1)');
  rejects(t, { type: 'veth', routes: {} }, 'routes', 'must be an array of at most 256 routes');
  rejects(t, { type: 'veth', hostMac: '02:00:00:00:01' }, 'hostMac', 'must be a MAC address xx:xx:xx:xx:xx:xx (got "02:00:00:00:01")');
});

t.test('refused: meaning', async (t) => {
  rejects(t, { type: 'veth', gateway: 'gw.example' }, 'gateway', 'must be an IPv4 or IPv6 address (got "gw.example")');
  rejects(t, { type: 'veth', routes: [{ dst: '10.0.0.1' }] }, 'routes[0].dst', 'must be a CIDR, ADDRESS/PREFIX (got "10.0.0.1")');
  rejects(t, { type: 'veth', routes: [{ dst: '10.0.0.1/8' }] }, 'routes[0].dst', 'has host bits set; the network is 10.0.0.0/8 (got "10.0.0.1/8")');
  rejects(t, { type: 'veth', routes: [{ dst: '2001:db8::1/32' }] }, 'routes[0].dst', 'has host bits set; the network is 2001:db8::/32 (got "2001:db8::1/32")');
  rejects(t, { type: 'veth', routes: [{ dst: '10.0.0.0/8', gw: 'fd00::1' }] }, 'routes[0].gw', 'must be an IPv4 address, as dst is (got "fd00::1")');
  rejects(t, { type: 'veth', addresses: ['10.0.0.2/24'], gateway: '10.0.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.3' }] },
    'gateway', 'is the same route as routes[0] (0.0.0.0/0 metric 0); give one a different metric');
  rejects(t, { type: 'veth', routes: [{ dst: 'fd00::/64' }, { dst: 'fd00:0::/64', metric: 1024 }] },
    'routes[1]', 'is the same route as routes[0] (fd00::/64 metric 1024); give one a different metric');
  rejects(t, { type: 'veth', gateway: '10.0.0.1' }, 'gateway',
    '10.0.0.1 is in no route of the entry without gw, and the device has no IPv4 address; the kernel would refuse it');
  rejects(t, { type: 'veth', addresses: ['10.0.0.2/24', 'fd00::2/64'], routes: [{ dst: '::/0', gw: 'fd01::1' }] }, 'routes[0]',
    "gw fd01::1 is on no subnet of the device's IPv6 addresses (fd00::2/64) and in no route of the entry without gw; the kernel would refuse it");
  rejects(t, { type: 'veth', addresses: ['10.0.0.2/24'], gateway: '10.0.0.2' }, 'gateway', '10.0.0.2 is an address of the device itself');
  rejects(t, { type: 'veth', hostBridge: 'a/b' }, 'hostBridge', 'must not contain \'/\' (got "a/b")');
  rejects(t, { type: 'veth', hostAddresses: ['10.0.0.1'] }, 'hostAddresses[0]', 'must be a CIDR, ADDRESS/PREFIX (got "10.0.0.1")');
  rejects(t, { type: 'veth', hostMac: '01:00:5e:00:00:01' }, 'hostMac', 'must be a unicast address (got 01:00:5e:00:00:01)');
});

const bridged = (source: DeviceSpec['source'], bridge = 'br0'): DeviceSpec => ({ key: 'vh0', kind: 'veth', name: 'c0', source, hostBridge: bridge });

t.test('policy: allowBridges, every bridge for config.json and none for the annotation by default', async (t) => {
  const d = defaultPolicy('/p');
  t.doesNotThrow(() => checkPolicy([bridged('config')], d), 'config.json may use any bridge');
  const open = parsePolicy(JSON.stringify({ annotation: { allowDevices: ['vh*'] } }), '/p');
  const err = thrown(() => checkPolicy([bridged('annotation')], open));
  t.ok(err instanceof PolicyError);
  t.equal((err as PolicyError).message,
    'device vh0: host bridge br0 is refused for annotation oci-netdev.netDevices by policy /p: it matches no pattern of annotation.allowBridges, which allows no bridge by default');
  t.equal((err as PolicyError).rule, 'annotation.allowBridges');
  const some = parsePolicy(JSON.stringify({ config: { allowBridges: ['cni*'] } }), '/p');
  t.doesNotThrow(() => checkPolicy([bridged('config', 'cni0')], some), 'a matching bridge passes');
  t.match((thrown(() => checkPolicy([bridged('config')], some))).message, /it matches no pattern of config\.allowBridges \["cni\*"\]$/);
  t.doesNotThrow(() => checkPolicy([{ key: 'vh0', kind: 'veth', name: 'c0', source: 'config' }], some), 'no hostBridge, no bridge rule');
  t.match((thrown(() => parsePolicy('{"config":{"allowBridges":"br0"}}', '/p'))).message, /config\.allowBridges: must be an array/);
});

const addr = (index: number, address: string, prefixlen: number): AddressInfo & { index: number } => ({
  index, family: address.includes(':') ? 10 : 2, prefixlen, flags: 0x80, scope: 0, address, preferredLifetime: 0xffffffff, validLifetime: 0xffffffff,
});

const observed = (): Observed => ({
  hostLinks: [fakeLink(1, 'lo', { flags: 0x9, kind: null }), fakeLink(5, 'nic0'), fakeLink(7, 'br0', { kind: 'bridge', mtu: 1500 }), fakeLink(8, 'vx0')],
  hostAddresses: [addr(5, '192.0.2.1', 24), addr(5, '2001:db8::1', 64)],
  containerLinks: [fakeLink(1, 'lo', { flags: 0x9, kind: null })],
  containerAddresses: [],
});
const ctx = { group: 0x12345, claims: new Map<string, string>(), macvlanMasters: new Map<number, string>(), policy: defaultPolicy() };

t.test('plan: addRoutes after configure, routes without a gateway first', async (t) => {
  const specs = parseNetDevices({ vh0: { type: 'veth', name: 'eth0', addresses: ['10.0.0.2/24'], gateway: '10.0.0.1', routes: [{ dst: '10.9.0.0/16', gw: '10.0.0.7', metric: 9 }, { dst: '10.8.0.0/16' }] } }, 'config');
  const plan = planAttach(specs, observed(), ctx);
  t.same(plan.steps.map((s) => s.do), ['createVeth', 'renameInContainer', 'copyAddresses', 'configure', 'addRoutes']);
  t.same(plan.steps.at(-1)?.undo, undefined, 'no undo: routes go with the device');
  const routes = plan.devices[0].containerRoutes!;
  t.same(routes.map((r) => [r.dst, r.dstLen, r.gateway, r.priority, r.scope]), [
    ['10.8.0.0', 16, undefined, undefined, 253],
    ['10.9.0.0', 16, '10.0.0.7', 9, 0],
    [undefined, 0, '10.0.0.1', undefined, 0],
  ], 'a link route, then routes through gateways; the default route has no RTA_DST');
  t.ok(routes.every((r) => r.table === 254 && r.protocol === 4 && r.type === 1 && r.oif === 0), 'main table, proto static, unicast; oif filled in at apply');
  const msg = routeMessage({ ...routes[2], oif: 42 }, 42, 42).finish(1);
  t.equal(msg.readUInt16LE(4), 24, 'RTM_NEWROUTE');
  t.equal(ofKind(plan.devices[0], 'veth').hostBridge, undefined);
  t.same(planAttach(parseNetDevices({ vh0: { type: 'veth' } }, 'config'), observed(), ctx).steps.map((s) => s.do).includes('addRoutes'), false, 'no routes, no step');
});

t.test('plan: a moved device\'s gateways are checked against the addresses it takes along', async (t) => {
  const ok = planAttach(parseNetDevices({ nic0: { routes: [{ dst: '0.0.0.0/0', gw: '192.0.2.254' }, { dst: '2001:db8:5::/48', gw: '2001:db8::fe' }] } }, 'config'), observed(), ctx);
  t.same(ok.steps.map((s) => s.do), ['moveIn', 'copyAddresses', 'configure', 'addRoutes']);
  const err = thrown(() => planAttach(parseNetDevices({ nic0: { routes: [{ dst: '0.0.0.0/0', gw: '198.51.100.1' }] } }, 'config'), observed(), ctx));
  t.ok(err instanceof ConfigError);
  t.equal((err).message,
    "device nic0: routes[0]: gw 198.51.100.1 is on no subnet of the device's IPv4 addresses (192.0.2.1/24) and in no route of the entry without gw; the kernel would refuse it");
});

t.test('plan: hostBridge must exist, be a bridge, and keep its MTU; the host end keeps MAC and addresses', async (t) => {
  const plan = planAttach(parseNetDevices({ vh0: { type: 'veth', hostBridge: 'br0', hostMac: '02:00:00:00:00:aa', hostAddresses: ['10.1.0.1/24', 'fd01::1/64'] } }, 'config'), observed(), ctx);
  const rec = ofKind(plan.devices[0], 'veth');
  t.same(rec.hostBridge, { name: 'br0', index: 7 });
  t.equal(rec.hostMac, '02:00:00:00:00:aa');
  t.same(rec.hostAddresses?.map((a) => [a.address, a.prefixlen, a.flags]), [['10.1.0.1', 24, 0], ['fd01::1', 64, 0x2]], 'IPv6 without DAD');
  const refused = (entry: object) => thrown(() => planAttach(parseNetDevices({ vh0: { type: 'veth', ...entry } }, 'config'), observed(), ctx));
  for (const [entry, message] of [
    [{ hostBridge: 'br9' }, 'device vh0: hostBridge br9 does not exist on the host'],
    [{ hostBridge: 'vx0' }, 'device vh0: hostBridge vx0 is not a bridge (it is a veth)'],
    [{ hostBridge: 'lo' }, 'device vh0: hostBridge lo is not a bridge (it is a device without a kind)'],
    [{ hostBridge: 'br0', mtu: 1400 }, 'device vh0: hostBridge br0 has MTU 1500; mtu 1400 would lower it for the whole bridge'],
  ] as const) {
    const err = refused(entry);
    t.ok(err instanceof PlanError, message);
    t.equal(err.message, message);
  }
  t.doesNotThrow(() => planAttach(parseNetDevices({ vh0: { type: 'veth', hostBridge: 'br0', mtu: 9000 } }, 'config'), observed(), ctx), 'a larger MTU is fine');
});
