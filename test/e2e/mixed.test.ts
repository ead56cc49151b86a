// runc and crun run a busybox bundle whose config.json asks for a mix of a moved host device, veth
// pairs and macvlans with MAC, MTU and addresses (issue 3). The hooks are added with
// `oci-netdev inject`; the runtime runs in a simulated host and makes the container's netns itself.
// Inside the container every device must carry its name, MAC, MTU and addresses and be up; after
// the container exits the simulated host must be identical to before and nothing created remains.
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { groupedDevices, parseIpAddr, SeenDevice, stateEntries } from '../helpers/netdevices';
import { RUNTIMES, runContainer } from '../helpers/runtime';
import { nsSnapshot, Sandbox, shOk } from '../helpers/sandbox';
import { makeStateDir } from '../helpers/hook';

for (const runtime of RUNTIMES) {
  t.test(`${runtime}: a mixed config of moved, veth and macvlan devices, inside and after exit`, async (t) => {
    const sb = new Sandbox(t);
    const simhost = sb.createNetns('simhost');
    const stateDir = makeStateDir(sb);
    const [nic, vh, master] = [uniqueName('nic'), uniqueName('vh'), uniqueName('mst')];
    sb.createVethPair(simhost, nic, uniqueName('peer'));
    sb.createVethPair(simhost, master, uniqueName('mpeer'));
    shOk('ip', ['-n', simhost, 'addr', 'add', '192.0.2.20/24', 'dev', nic]);
    shOk('ip', ['-n', simhost, 'addr', 'add', '2001:db8:2::20/64', 'dev', nic, 'nodad']);
    const before = nsSnapshot(simhost);

    const bundle = makeBundle(sb, {
      args: ['sh', '-c', 'ip addr'],
      netDevices: {
        [nic]: { name: 'eth1', mtu: 1400, mac: '02:E1:00:00:00:01' },
        [vh]: { type: 'veth', name: 'eth2', mtu: 1450, mac: '02:E2:00:00:00:02', addresses: ['10.20.0.2/24', 'fd20::2/64'] },
        mv0: { type: 'macvlan', master, name: 'eth3', mtu: 1300, mac: '02:e3:00:00:00:03', addresses: ['10.30.0.2/24', 'fd30::2/64'] },
        mv1: { type: 'macvlan', master, mode: 'vepa', name: 'eth4' },
      },
    });
    const injected = shOk(OCI_NETDEV, ['--state-dir', stateDir, 'inject', bundle]);
    t.match(injected, /added 2 hook\(s\)/, 'inject adds both hooks');

    const r = runContainer(sb, runtime, simhost, bundle, uniqueId(runtime), 120_000);
    t.equal(r.status, 0, `${runtime} run exits 0`, { stderr: r.stderr, stdout: r.stdout });
    const seen = parseIpAddr(r.stdout);
    t.same(Object.keys(seen).sort(), ['eth1', 'eth2', 'eth3', 'eth4', 'lo'], 'the container sees its devices under their names', { stdout: r.stdout });
    const want: Record<string, Partial<SeenDevice>> = {
      eth1: { mtu: 1400, mac: '02:e1:00:00:00:01', addresses: ['192.0.2.20/24', '2001:db8:2::20/64'] },
      eth2: { mtu: 1450, mac: '02:e2:00:00:00:02', addresses: ['10.20.0.2/24', 'fd20::2/64'] },
      eth3: { mtu: 1300, mac: '02:e3:00:00:00:03', addresses: ['10.30.0.2/24', 'fd30::2/64'] },
      eth4: { mtu: 1500, addresses: [] },
    };
    for (const [name, w] of Object.entries(want)) {
      const d = seen[name];
      if (!d) continue;
      t.ok(d.flags.includes('UP'), `${name} is up`, { flags: d.flags });
      t.equal(d.mtu, w.mtu, `${name} MTU`);
      if (w.mac) t.equal(d.mac, w.mac, `${name} MAC`);
      t.same(d.addresses.sort(), w.addresses!.sort(), `${name} addresses`);
    }
    t.ok(seen.eth2?.flags.includes('LOWER_UP'), 'the veth has carrier (its host end is up)');

    t.same(nsSnapshot(simhost), before, 'after exit the simulated host is identical to before');
    t.same(groupedDevices(simhost), [], 'no created device remains');
    t.same(stateEntries(stateDir), [], 'no state remains');
  });
}
