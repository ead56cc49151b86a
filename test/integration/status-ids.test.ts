// `oci-netdev status` shows a 64-hex container id (what podman, CRI-O and containerd use) as its
// first 12 digits, as podman does; --no-trunc shows it whole, --json always does. Other ids are
// shown as they are.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { execPlugin, nicSetup } from '../helpers/cni';
import { ok } from '../helpers/assert';
import { bundleFor, createRuntime, hostNic, poststop } from '../helpers/host';
import { uniqueId } from '../helpers/names';
import { cli } from '../helpers/netdevices';

t.test('status: 64-hex ids of hook containers and CNI attachments are cut to 12, --no-trunc and --json keep them whole', async (t) => {
  const s = nicSetup(t);
  const cniId = randomBytes(32).toString('hex');
  const network = uniqueId('net');
  const conf = { cniVersion: '1.0.0', name: network, type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir };
  const run = { ...s.run, containerId: cniId };
  const add = execPlugin(run, 'ADD', 'oci-netdev', conf);
  t.equal(add.status, 0, `CNI ADD: ${add.stderr}`);
  t.teardown(() => execPlugin(run, 'DEL', 'oci-netdev', conf));

  const hookId = randomBytes(32).toString('hex');
  const nic = hostNic(s.rig);
  const bundle = bundleFor(s.rig, { [nic]: { name: 'eth1' } });
  ok(t, createRuntime(s.rig, hookId, bundle, { pid: process.pid }), 'createRuntime');
  t.teardown(() => poststop(s.rig, hookId, bundle));

  const short = (id: string) => id.slice(0, 12);
  const headers = (args: string[]) => {
    const r = cli(s.rig, ['status', ...args]);
    t.equal(r.status, 0, `status ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l && !l.startsWith(' ')).map((l) => l.replace(/; \d+[smhd][\dmhs]* old;/, '; AGE;')).sort();
  };
  t.same(headers([]), [
    `${short(hookId)} (attached; pid ${process.pid} running; AGE; bundle ${bundle})`,
    `cni:${network}:${short(cniId)}:eth0 (attached; no pid; AGE; CNI network ${network}, container ${short(cniId)}, eth0)`,
  ].sort(), 'each 64-hex id cut to 12 digits, in the CNI attachment id too');
  t.same(headers(['--no-trunc']), [
    `${hookId} (attached; pid ${process.pid} running; AGE; bundle ${bundle})`,
    `cni:${network}:${cniId}:eth0 (attached; no pid; AGE; CNI network ${network}, container ${cniId}, eth0)`,
  ].sort(), '--no-trunc: whole ids');
  const json = JSON.parse(cli(s.rig, ['status', '--json']).stdout) as { containerId: string; origin?: { containerId: string } }[];
  t.same(json.map((e) => [e.containerId, e.origin?.containerId ?? null]).sort(),
    [[hookId, null], [`cni:${network}:${cniId}:eth0`, cniId]].sort(), '--json: whole ids');

  const plain = uniqueId('ctr');
  const bundle2 = bundleFor(s.rig, { [hostNic(s.rig)]: { name: 'eth2' } });
  ok(t, createRuntime(s.rig, plain, bundle2), 'createRuntime of a container with a short id');
  t.teardown(() => poststop(s.rig, plain, bundle2));
  t.ok(headers([]).some((l) => l.startsWith(`${plain} (attached;`)), 'an id that is not 64 hex digits is shown whole');
});
