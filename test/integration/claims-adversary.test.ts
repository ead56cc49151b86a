// Adversary tests of the claims (src/state/statedir.ts claims files, src/engine/lifecycle.ts
// attachPlanned): a device's state read ahead while another container still held it must not be
// what a later createRuntime records, once that container let it go.
import t from 'tap';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { StateDir } from '../../src/state/statedir';
import type { Journal } from '../../src/state/statedir';
import { bundleFor, createRuntime, creating, hostNic, ok, poststop, refused, startHookIn } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { makeRig, nonLoopback } from '../helpers/netdevices';
import { netnsPath, nsSnapshot, shOk, sleep } from '../helpers/sandbox';

/** A journal of container `id` that holds host device `name` (ifindex `index`), nothing started. */
function holding(id: string, name: string, index: number): Journal {
  return {
    containerId: id, phase: 'detaching', createdAt: new Date().toISOString(), netnsPath: '/nonexistent', netnsDev: 1, netnsIno: 2,
    plan: { group: 0x10001, devices: [{
      key: name, kind: 'host', targetName: name, identity: { kind: 'veth', permanentMac: null, parentBus: null, parentDev: null },
      containerIndex: index, adopted: false, containerAddresses: [],
      original: { index, name, mtu: 1500, mac: null, up: true, alias: '', group: 0, altNames: [], addresses: [] },
    }], steps: [{ device: name, do: 'moveIn', undo: 'moveOut' }] },
    started: 0,
  };
}

/** Whether process `pid` has `file` open now. */
function hasOpen(pid: number, file: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

const routesOf = (ns: string, dev: string): string => shOk('ip', ['-n', ns, 'route', 'show', 'dev', dev]);

t.test('a device read ahead while another container was bringing it home: its routes, restored after the read, are not lost', async (t) => {
  const rig = makeRig(t);
  const nic = hostNic(rig);
  const index = Number(shOk('ip', ['-n', rig.simhost, '-o', 'link', 'show', nic]).split(':')[0]);
  const store = new StateDir(rig.stateDir);
  // Container A holds the NIC and is bringing it home (its poststop): the NIC is on the host, its
  // routes not back yet. Another hook holds the claims lock, so B reads the NIC's state ahead.
  const a = uniqueId('hold');
  store.lockContainer(a).release();
  store.createJournal(holding(a, nic, index));
  const claims = store.lockClaims();
  t.teardown(() => claims.release());
  const lockFile = join(rig.stateDir, 'claims.lock');
  const b = uniqueId('ctr');
  const bundle = bundleFor(rig, { [nic]: { name: 'eth5' } });
  const hook = startHookIn(rig, 'create-runtime', creating(b, bundle));
  t.teardown(async () => {
    if (hasOpen(hook.pid, lockFile)) process.kill(hook.pid, 'SIGKILL');
    await hook.done;
  });
  // B waits for the claims lock once it has read ahead (it keeps the lock file open while it waits).
  for (let seen = 0, polls = 0; seen < 2; polls++) {
    if (polls === 600) throw new Error('B never waited for the claims lock');
    await sleep(100);
    seen = hasOpen(hook.pid, lockFile) ? seen + 1 : 0;
  }
  // A's poststop finishes: the NIC's route is back, and A's state is gone. Then the lock is free.
  shOk('ip', ['-n', rig.simhost, 'route', 'add', '10.77.1.0/24', 'dev', nic]);
  const route = routesOf(rig.simhost, nic);
  t.match(route, /10\.77\.1\.0\/24/, 'the route A restored is on the NIC');
  store.remove(a);
  claims.release();
  ok(t, await hook.done, 'B\'s createRuntime');
  ok(t, poststop(rig, b, bundle), 'B\'s poststop');
  t.equal(routesOf(rig.simhost, nic), route, 'B\'s poststop brings the NIC home with the route it had when B took it');
});

t.test("a veth's host end renamed on the host is still held by its container: another container asking for it by its new name is refused", async (t) => {
  const rig = makeRig(t, { inProcess: true });
  const before = nsSnapshot(rig.simhost);
  const hostEnd = uniqueName('veth');
  const a = uniqueId('ctr');
  const bundleA = bundleFor(rig, { [hostEnd]: { type: 'veth', name: 'eth1' } });
  ok(t, createRuntime(rig, a, bundleA), 'A\'s createRuntime');
  // Renamed on the host (an admin, a udev rule): the name A's claims hold is gone.
  const renamed = uniqueName('ren');
  shOk('ip', ['-n', rig.simhost, 'link', 'set', hostEnd, 'name', renamed]);
  const ctr2 = rig.sb.createNetns('ctr2');
  const b = uniqueId('ctr');
  const bundleB = bundleFor(rig, { [renamed]: { name: 'net0' } }, netnsPath(ctr2));
  refused(t, createRuntime(rig, b, bundleB), renamed, new RegExp(`held by container ${a}`));
  t.same(nonLoopback(ctr2), [], 'nothing reached B\'s container');
  ok(t, poststop(rig, a, bundleA), 'A\'s poststop');
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
});
