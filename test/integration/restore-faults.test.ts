// Restore converges and never gives up on a device that is still away (issue 9, items 2 and 3):
// a fallback name cut in bytes for a UTF-8 name, an altname that clashes on the host, poststop
// killed with SIGKILL at many points and finished by gc, containers whose init does not exist or
// is a zombie, and a device that is away for a while and comes home once it can. Everything runs
// through the CLI in a simulated host (a throwaway netns) with a container netns; veth ends stand
// in for NICs, and a NIC's veth peer on the host proves which device came back.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeId } from '../../src/state/statedir';
import { runHook, startHook } from '../helpers/hook';
import { ok } from '../helpers/assert';
import { allHome } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, ipDetails, makeRig, ociState, Rig, stateEntries } from '../helpers/netdevices';
import { addAddress, NsSnapshot, nsSnapshot, ShResult, shOk, settledTo, sleep, steady } from '../helpers/sandbox';

/** A stand-in NIC in the simulated host: one end of a veth pair whose other end stays there. */
function hostNic(rig: Rig, name = uniqueName('nic')): { dev: string; peer: string } {
  const peer = uniqueName('peer');
  rig.sb.createVethPair(rig.simhost, name, peer);
  return { dev: name, peer };
}

/** A NIC with a non-default MTU and MAC and IPv4 and IPv6 addresses, so a restore has all of them to put back. */
function configuredNic(rig: Rig, n: number, name?: string): { dev: string; peer: string } {
  const nic = hostNic(rig, name);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', nic.dev, 'mtu', String(1400 + n), 'address', `02:00:5e:00:9${n % 10}:${(n + 16).toString(16)}`]);
  addAddress(rig.simhost, nic.dev, `10.99.${n}.1/24`, ['broadcast', '+']);
  addAddress(rig.simhost, nic.dev, `2001:db8:99:${n.toString(16)}::1/64`, ['nodad']);
  return nic;
}

function run(rig: Rig, command: 'create-runtime' | 'poststop', id: string, bundle: string, extra: object = {}): ShResult {
  const status = command === 'poststop' ? 'stopped' : 'creating';
  return runHook(rig.simhost, command, ociState(id, bundle, status, extra), { stateDir: rig.stateDir });
}

const warnings = (r: ShResult): string[] => r.stderr.split('\n').filter((l) => /WARNING/.test(l));
const journalOf = (rig: Rig, id: string): string => join(rig.stateDir, encodeId(id), 'journal.json');

/** The device a veth end is linked to, as iproute2 names it from the end's side (the peer proof). */
const peerLink = (ns: string, end: string): string | undefined => ipDetails(ns)[end]?.link;

function altnames(ns: string, dev: string): string[] {
  const [link] = JSON.parse(shOk('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])) as { altnames?: string[] }[];
  return link.altnames ?? [];
}

/** A snapshot of a device as it should be when restored under `name`: IPv4 labels follow the name. */
function renamed(snap: NsSnapshot[string], name: string): NsSnapshot[string] {
  return { ...snap, name, addresses: snap.addresses.map((a) => ({ ...a, label: a.label === snap.name ? name : a.label })) };
}

/** The end state every case asks for: all home (allHome), and gc has nothing to do. */
async function allHomeGcIdle(t: Test, rig: Rig, hostExpected: NsSnapshot, ctrBefore: NsSnapshot): Promise<void> {
  await allHome(t, rig, hostExpected, ctrBefore);
  const gc = cli(rig, ['gc']);
  ok(t, gc, 'a gc afterwards');
  t.equal(gc.stdout, 'gc: nothing to do\n', 'gc has nothing to do');
}

/** `base` padded with two-byte characters to exactly `bytes` bytes of UTF-8: fewer UTF-16 units than bytes. */
function utf8Name(base: string, bytes: number): string {
  let name = base;
  while (Buffer.byteLength(name) + 2 <= bytes) name += 'é';
  if (Buffer.byteLength(name) < bytes) name += 'x';
  return name;
}

t.test('a 14-byte UTF-8 name taken on the host at restore: back under a fallback of at most 15 bytes, with a warning', async (t) => {
  const rig = makeRig(t);
  const dev = utf8Name(uniqueName('u'), 14);
  t.equal(Buffer.byteLength(dev), 14, `${dev} is 14 bytes of UTF-8`);
  t.ok(dev.length < 14, 'and fewer UTF-16 units');
  const { peer } = configuredNic(rig, 1, dev);
  const before = await steady(rig.simhost);
  const ctrBefore = nsSnapshot(rig.ctr);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: { name: uniqueName('c') } } });
  ok(t, run(rig, 'create-runtime', id, bundle), 'create-runtime');
  t.notOk(dev in nsSnapshot(rig.simhost), 'the NIC left the host');

  // While the container holds the NIC, a new device takes its name on the host.
  const squatterPeer = uniqueName('sq');
  rig.sb.createVethPair(rig.simhost, dev, squatterPeer);
  const squatters = await steady(rig.simhost);

  const r = run(rig, 'poststop', id, bundle);
  ok(t, r, 'poststop');
  const after = nsSnapshot(rig.simhost);
  const arrived = Object.keys(after).filter((n) => !(n in squatters));
  t.equal(arrived.length, 1, 'one device arrived on the host', { arrived });
  const fallback = arrived[0];
  if (fallback !== undefined) {
    t.ok(Buffer.byteLength(fallback) <= 15, `the fallback ${fallback} is at most 15 bytes (${Buffer.byteLength(fallback)})`);
    t.notOk(fallback.includes('\uFFFD'), 'and no character of the name is cut in half');
    t.equal(peerLink(rig.simhost, peer), fallback, 'it is our NIC: its veth peer on the host links to it');
    t.ok(warnings(r).some((l) => l.includes(dev) && l.includes(fallback)), 'a warning names the device and its fallback name', { stderr: r.stderr });
  }
  t.equal(peerLink(rig.simhost, squatterPeer), dev, 'the new device keeps the original name');
  // Everything as before, but the original name belongs to the new device and the NIC has the fallback.
  const expected: NsSnapshot = { ...before, [dev]: squatters[dev], [squatterPeer]: squatters[squatterPeer] };
  if (fallback !== undefined) expected[fallback] = renamed(before[dev], fallback);
  t.same(await settledTo(rig.simhost, expected), expected, 'the host is as expected: every device, name, MTU, MAC, flag and address');
  t.ok(existsSync(journalOf(rig, id)), 'the record stays open while the name is taken');
  // The new device goes: gc gives the NIC its name back.
  shOk('ip', ['-n', rig.simhost, 'link', 'del', dev]);
  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc once the name is free');
  t.match(gc.stdout, new RegExp(`^${id}: restored`, 'm'), 'gc gives the name back', { stdout: gc.stdout });
  await allHomeGcIdle(t, rig, before, ctrBefore);
});

for (const clash of ['name', 'altname'] as const) {
  t.test(`an altname clashing with a host device's ${clash} at restore: the NIC comes home without it`, async (t) => {
    const rig = makeRig(t);
    const { dev, peer } = configuredNic(rig, 2);
    const other = hostNic(rig, uniqueName('oth')).dev;
    let taken = other;
    if (clash === 'altname') {
      taken = uniqueName('alt');
      shOk('ip', ['-n', rig.simhost, 'link', 'property', 'add', 'dev', other, 'altname', taken]);
    }
    const otherAltnames = altnames(rig.simhost, other);
    const before = await steady(rig.simhost);
    const ctrBefore = nsSnapshot(rig.ctr);
    const id = uniqueId('ctr');
    const target = uniqueName('c');
    const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: { name: target, mtu: 1300 } } });
    ok(t, run(rig, 'create-runtime', id, bundle), 'create-runtime');
    // What any process with CAP_NET_ADMIN in the container may do.
    shOk('ip', ['-n', rig.ctr, 'link', 'property', 'add', 'dev', target, 'altname', taken]);

    const r = run(rig, 'poststop', id, bundle);
    ok(t, r, 'poststop');
    t.ok(warnings(r).some((l) => l.includes(dev) && l.includes(taken)), 'a warning names the device and the altname taken from it', { stderr: r.stderr });
    t.same(await settledTo(rig.simhost, before), before, 'the host is as before: the NIC is back with its name, MTU, MAC and addresses');
    t.equal(peerLink(rig.simhost, peer), dev, 'it is our NIC: its veth peer on the host links to it');
    if (dev in nsSnapshot(rig.simhost)) t.notOk(altnames(rig.simhost, dev).includes(taken), `${taken} is not on the NIC`);
    t.same(altnames(rig.simhost, other), otherAltnames, `the device owning ${taken} keeps its altnames`);
    const gc = cli(rig, ['gc']);
    t.notMatch(gc.stdout + gc.stderr, /lost/, 'gc does not call anything lost', { stdout: gc.stdout, stderr: gc.stderr });
    await allHomeGcIdle(t, rig, before, ctrBefore);
  });
}

t.test('SIGKILL of poststop after each of many netlink requests, then gc: exit 0, nothing "lost", all restored', async (t) => {
  const rig = makeRig(t);
  const nics = [1, 2, 3].map((n) => configuredNic(rig, 10 + n).dev);
  const veth = uniqueName('vh');
  const netDevices = {
    [nics[0]]: { name: uniqueName('c') },
    [nics[1]]: { name: uniqueName('c'), mtu: 1280, mac: '02:00:5e:00:99:aa' },
    [nics[2]]: {},
    [veth]: { type: 'veth', name: uniqueName('c'), addresses: ['10.98.0.2/24', 'fd98::2/64'] },
  };
  const before = await steady(rig.simhost);
  const ctrBefore = nsSnapshot(rig.ctr);
  const traced = { OCI_NETDEV_TRACE: '1' };
  const traceLines = (stderr: string): number => stderr.split('\n').filter((l) => l.startsWith('trace: ')).length;

  // One whole poststop first, to know how many requests it makes.
  const firstId = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices });
  ok(t, run(rig, 'create-runtime', firstId, bundle), 'create-runtime');
  const whole = runHook(rig.simhost, 'poststop', ociState(firstId, bundle, 'stopped'), { stateDir: rig.stateDir, env: traced });
  ok(t, whole, 'an uninterrupted poststop');
  const total = traceLines(whole.stderr);
  t.ok(total >= 12, `poststop makes ${total} netlink requests`);
  t.same(await settledTo(rig.simhost, before), before, 'and restores the host');

  // Ten kill points spread over the whole run, from the first request to the last: each costs a
  // createRuntime, a poststop and a gc (2-6 s on a loaded machine), so the test stays near a minute.
  const points = [...new Set(Array.from({ length: 10 }, (_, i) => 1 + Math.round((i * (total - 2)) / 9)))];
  const bad: string[] = [];
  let killedMidway = 0;
  for (const n of points) {
    const id = uniqueId('ctr');
    const created = run(rig, 'create-runtime', id, bundle);
    if (created.status !== 0) {
      t.fail(`kill point ${n}: create-runtime fails, the host is no longer as before`, { stderr: created.stderr });
      break;
    }
    let killed = false;
    const hook = startHook(rig.simhost, 'poststop', ociState(id, bundle, 'stopped'), {
      stateDir: rig.stateDir,
      env: traced,
      onStderr: (soFar) => {
        if (killed || traceLines(soFar) < n) return;
        killed = true;
        process.kill(hook.pid, 'SIGKILL');
      },
    });
    const r = await hook.done;
    if (r.signal === 'SIGKILL') killedMidway++;
    const seen = traceLines(r.stderr);
    const left = existsSync(journalOf(rig, id));
    const gc = cli(rig, ['gc']);
    const problems = [
      ...(gc.status !== 0 ? [`gc exits ${gc.status}`] : []),
      ...(/lost/.test(gc.stdout + gc.stderr) ? ['gc says "lost"'] : []),
      ...(left && !new RegExp(`^${id}: restored`, 'm').test(gc.stdout) ? ['gc does not report the restore of the journal left'] : []),
    ];
    const host = await settledTo(rig.simhost, before);
    if (JSON.stringify(host) !== JSON.stringify(before)) problems.push('the host is not as before');
    const ctr = await settledTo(rig.ctr, ctrBefore);
    if (JSON.stringify(ctr) !== JSON.stringify(ctrBefore)) problems.push('devices are left in the container');
    if (stateEntries(rig.stateDir).length) problems.push('state is left');
    if (problems.length) {
      bad.push(`killed after ${seen} requests: ${problems.join(', ')}`);
      t.fail(`kill after request ${n} (${r.signal ?? `exit ${r.status}`}, ${seen} seen): ${problems.join(', ')}`, { gcStdout: gc.stdout, gcStderr: gc.stderr });
    } else {
      t.pass(`kill after request ${n} (${r.signal ?? `exit ${r.status}`}, ${seen} seen): gc exits 0, nothing lost, all restored`);
    }
    if (problems.some((p) => !p.startsWith('gc'))) break; // the next round would start from a broken host
  }
  t.ok(killedMidway >= points.length / 2, `${killedMidway} of ${points.length} poststop runs were killed mid-way`);
  t.same(bad, [], 'every kill point ends restored, with gc exiting 0 and nothing called "lost"');
  await allHomeGcIdle(t, rig, before, ctrBefore);
});

t.test('liveness: a state pid that does not exist is a container that is gone; gc restores it', async (t) => {
  const rig = makeRig(t);
  const { dev } = configuredNic(rig, 20);
  const before = await steady(rig.simhost);
  const ctrBefore = nsSnapshot(rig.ctr);
  // Pids run from 1 to pid_max - 1: pid_max itself never exists.
  const pid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  t.notOk(existsSync(`/proc/${pid}`), `pid ${pid} does not exist`);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: { name: uniqueName('c') } } });
  ok(t, run(rig, 'create-runtime', id, bundle, { pid }), 'create-runtime');

  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc');
  t.match(gc.stdout, new RegExp(`^${id}: restored`, 'm'), 'gc restores the container', { stdout: gc.stdout });
  await allHomeGcIdle(t, rig, before, ctrBefore);
});

/** Whether /proc/pid/stat says the process is a zombie (state Z). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

t.test('liveness: a zombie container init is a container that is gone; gc restores it', async (t) => {
  const rig = makeRig(t);
  const { dev } = configuredNic(rig, 21);
  const before = await steady(rig.simhost);
  const ctrBefore = nsSnapshot(rig.ctr);
  // The outer shell becomes `sleep 600`, which never reaps its child: once the child dies it stays a zombie.
  const parent = spawn('sh', ['-c', 'sleep 1000 & echo $!; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const childPid = await new Promise<number>((resolve, reject) => {
    parent.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    parent.once('error', reject);
  });
  rig.sb.defer(() => {
    for (const pid of [childPid, parent.pid!]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: { name: uniqueName('c') } } });
  ok(t, run(rig, 'create-runtime', id, bundle, { pid: childPid }), 'create-runtime');

  const alive = cli(rig, ['gc']);
  ok(t, alive, 'gc while the init runs');
  t.match(alive.stdout, new RegExp(`^${id}: kept`, 'm'), 'keeps a running container', { stdout: alive.stdout });
  t.notOk(dev in nsSnapshot(rig.simhost), 'and leaves its device in the container');

  process.kill(childPid, 'SIGKILL');
  for (let i = 0; i < 100 && !isZombie(childPid); i++) await sleep(100);
  t.ok(isZombie(childPid), `the init ${childPid} is a zombie`);
  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc');
  t.match(gc.stdout, new RegExp(`^${id}: restored`, 'm'), 'gc restores the container', { stdout: gc.stdout });
  await allHomeGcIdle(t, rig, before, ctrBefore);
});

t.test('a device that is away at restore keeps its record; gc retries and brings it home once it can', async (t) => {
  const rig = makeRig(t);
  const { dev, peer } = configuredNic(rig, 30);
  const stays = configuredNic(rig, 31).dev;
  // A namespace of the container's own: a process in the container with CAP_NET_ADMIN can make one
  // (unshare -n) and move its device there, out of the hook's sight.
  const hideout = rig.sb.createNetns('hide');
  const before = await steady(rig.simhost);
  const ctrBefore = nsSnapshot(rig.ctr);
  const id = uniqueId('ctr');
  const target = uniqueName('c');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [dev]: { name: target }, [stays]: { name: uniqueName('c') } } });
  ok(t, run(rig, 'create-runtime', id, bundle), 'create-runtime');
  shOk('ip', ['-n', rig.ctr, 'link', 'set', target, 'netns', hideout]);

  const r = run(rig, 'poststop', id, bundle);
  t.not(r.status, 0, 'poststop does not claim success');
  t.match(r.stderr, dev, 'and names the device still away');
  t.ok(stays in nsSnapshot(rig.simhost), 'the other device is home');
  t.ok(existsSync(journalOf(rig, id)), 'the journal stays');

  const retry = cli(rig, ['gc']);
  t.not(retry.status, 0, 'gc, while the device is still away, says something is left undone');
  t.match(retry.stdout + retry.stderr, dev, 'naming the device');
  t.ok(existsSync(journalOf(rig, id)), 'the journal still stays');
  const saysLost = (r: ShResult, dev: string): boolean => (r.stdout + r.stderr).split(/[\n;]/).some((l) => l.includes(dev) && /lost/.test(l));
  t.notOk(saysLost(retry, stays), `gc does not call ${stays}, restored by poststop, lost`, { stdout: retry.stdout, stderr: retry.stderr });

  // The obstacle goes: the device is back in the container's namespace.
  shOk('ip', ['-n', hideout, 'link', 'set', target, 'netns', rig.ctr]);
  const gc = cli(rig, ['gc']);
  ok(t, gc, 'gc once the device can come home');
  t.notMatch(gc.stdout + gc.stderr, /lost/, 'and calls nothing lost', { stdout: gc.stdout, stderr: gc.stderr });
  t.match(gc.stdout, new RegExp(`^${id}: restored`, 'm'), 'gc restores it', { stdout: gc.stdout });
  t.equal(peerLink(rig.simhost, peer), dev, 'it is our NIC: its veth peer on the host links to it');
  await allHomeGcIdle(t, rig, before, ctrBefore);
});
