// The test helpers themselves: snapshots see what iproute2 sees, and teardown leaves nothing.
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_PREFIX, NAME_PREFIX, RUN_DIR, uniqueName } from '../helpers/names';
import { addAddress, inSimHost, linkSnapshot, mountPoints, netnsPath, nsSnapshot, Sandbox, shOk } from '../helpers/sandbox';

t.test('uniqueName makes kernel-valid names in the test family', async (t) => {
  for (const role of ['nic', 'a-very-long-role-name']) {
    const name = uniqueName(role);
    t.ok(name.startsWith(DEV_PREFIX) && Buffer.byteLength(name) <= 15, `${name} is valid`);
  }
});

t.test('snapshots normalize what ip shows', async (t) => {
  const sb = new Sandbox(t);
  const ns = sb.createNetns('snap');
  t.ok(ns.startsWith(NAME_PREFIX), 'netns name is in the test family');
  const [nic, peer] = [uniqueName('nic'), uniqueName('peer')];
  sb.createVethPair(ns, nic, peer);
  shOk('ip', ['-n', ns, 'link', 'set', nic, 'mtu', '1400', 'alias', 'stand-in nic']);
  addAddress(ns, nic, '192.0.2.10/24', ['broadcast', '+']);
  addAddress(ns, nic, '192.0.2.11/24', ['label', `${nic}:1`]);
  addAddress(ns, nic, '2001:db8::10/64', ['nodad']);

  const snap = linkSnapshot(ns, nic);
  t.same(snap, {
    name: nic,
    kind: 'veth',
    mtu: 1400,
    mac: snap.mac,
    flags: ['BROADCAST', 'LOWER_UP', 'MULTICAST', 'UP'],
    up: true,
    alias: 'stand-in nic',
    addresses: [
      { family: 'inet', local: '192.0.2.10', prefixlen: 24, scope: 'global', label: nic, broadcast: '192.0.2.255', flags: [] },
      { family: 'inet', local: '192.0.2.11', prefixlen: 24, scope: 'global', label: `${nic}:1`, broadcast: null, flags: ['secondary'] },
      { family: 'inet6', local: '2001:db8::10', prefixlen: 64, scope: 'global', label: null, broadcast: null, flags: ['nodad'] },
    ],
  });
  t.match(snap.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'mac is the link address');
  t.same(Object.keys(nsSnapshot(ns)).sort(), ['lo', nic, peer].sort(), 'nsSnapshot has every device');
  t.match(shOk(...inSimHost(ns, ['ip', '-o', 'link'])), nic, 'inSimHost runs in the netns');
});

t.test('teardown removes netns, and temp dirs with mounts inside', async (t) => {
  const sb = new Sandbox({ teardown: () => {} });
  const ns = sb.createNetns('gone');
  const dir = sb.tempDir('gone');
  const pin = join(dir, 'pin');
  writeFileSync(pin, '');
  shOk('mount', ['--bind', netnsPath(ns), pin]);
  sb.teardown();
  t.notOk(existsSync(netnsPath(ns)), 'netns deleted');
  t.notOk(mountPoints().includes(pin), 'mount under the temp dir detached');
  t.notOk(existsSync(dir), 'temp dir removed');
  t.notOk(existsSync(RUN_DIR), 'the run dir went with its last temp dir');
});
