// The host's network namespace is part of the record (issue 18, item 3): gc, poststop, CNI DEL and
// CNI GC run from a namespace that is not the host's (a shell in the wrong netns, a pod without
// host networking) change nothing there and lose nothing, say in one line which namespace is
// expected and how to get there; run in the host's namespace, they then restore exactly. The
// stand-in NIC is a veth end whose peer stays on the host (found again through its peer); one
// whose peer is in a third namespace (nothing ties it to the host) is restored by gc only once an
// operator moves it home (unprovenIdentity), so it is not used here.
import t, { Test } from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadKoffi } from '../../native/koffi-loader';
import { Netns } from '../../src/netns/netns';
import { encodeId, encodeJournal } from '../../src/state/statedir';
import type { Journal } from '../../src/state/statedir';
import { execPlugin, nicSetup, reservations } from '../helpers/cni';
import { OCI_NETDEV, runHook } from '../helpers/hook';
import { pinsIn } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { configBundle, makeRig, ociState, Rig, stateEntries } from '../helpers/netdevices';
import { addAddress, inSimHost, netnsPath, NsSnapshot, sh, ShResult, shOk, settledTo, steady } from '../helpers/sandbox';

/** Two stand-in NICs with addresses: `tied` has its veth peer on the host, `untied` in a namespace of its own. */
function standIns(rig: Rig): { tied: string; untied: string } {
  const tied = uniqueName('tied');
  rig.sb.createVethPair(rig.simhost, tied, uniqueName('peer'));
  const far = rig.sb.createNetns('far');
  const untied = uniqueName('unt');
  shOk('ip', ['-n', rig.simhost, 'link', 'add', untied, 'type', 'veth', 'peer', 'name', uniqueName('fp'), 'netns', far]);
  shOk('ip', ['-n', rig.simhost, 'link', 'set', untied, 'mtu', '1420', 'up']);
  addAddress(rig.simhost, tied, '10.61.0.1/24', ['broadcast', '+']);
  addAddress(rig.simhost, untied, '10.62.0.1/24', ['broadcast', '+']);
  return { tied, untied };
}

/** The inode of a namespace file: the number in `net:[...]`. */
const nsIno = (path: string): number => Number(shOk('stat', ['-L', '-c', '%i', path]).trim());

/** The namespace's SO_NETNS_COOKIE, asked of a socket made in it (getsockopt called here, not through the code under test). */
function nsCookie(path: string): string {
  const koffi = loadKoffi();
  const getsockopt = koffi.load('libc.so.6').func('int getsockopt(int, int, int, void *, void *)') as (...a: unknown[]) => number;
  using ns = Netns.open(path);
  using sock = ns.socket();
  const value = Buffer.alloc(8);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(8);
  const SOL_SOCKET = 1;
  const SO_NETNS_COOKIE = 71;
  if (getsockopt(sock.fd, SOL_SOCKET, SO_NETNS_COOKIE, value, len) !== 0) throw new Error(`getsockopt(SO_NETNS_COOKIE): errno ${koffi.errno()}`);
  return value.readBigUInt64LE().toString();
}

/** The journal of `id` in `stateDir`, and a way to write it back changed (checksummed again). */
function journalOf(stateDir: string, id: string): { journal: Journal; write: () => void } {
  const file = join(stateDir, encodeId(id), 'journal.json');
  const { journal } = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]) as { journal: Journal };
  return { journal, write: () => writeFileSync(file, encodeJournal(journal)) };
}

/** `oci-netdev ARGS` with the rig's state dir, in the namespace `ns`. */
const cliIn = (rig: Rig, ns: string, args: string[]): ShResult => sh(...inSimHost(ns, [OCI_NETDEV, '--state-dir', rig.stateDir, ...args]));

/** The one line that says where to run instead: the container, the host's namespace and a way in. */
function namesTheHost(t: Test, line: string, rig: Rig, id: string): void {
  t.match(line, `container ${id}: its devices belong to the host's network namespace net:[${nsIno(netnsPath(rig.simhost))}]`, 'it names the container and the host namespace expected');
  t.match(line, 'nothing changed', 'says nothing changed');
  t.match(line, `run oci-netdev gc in the host's network namespace (e.g. nsenter --net=${netnsPath(rig.simhost)} oci-netdev gc)`, 'and how to get there');
}

interface Attached {
  rig: Rig;
  id: string;
  bundle: string;
  hostBefore: NsSnapshot;
  inside: NsSnapshot;
  wrong: string;
  wrongBefore: NsSnapshot;
}

/**
 * Stand-ins (both unless `tiedOnly`) attached to a container whose init is gone (a pid that cannot
 * exist), and a wrong namespace with a device of its own.
 */
async function attachedThenGone(t: Test, tiedOnly = false): Promise<Attached> {
  const rig = makeRig(t);
  const { tied, untied } = standIns(rig);
  const hostBefore = await steady(rig.simhost);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [tied]: { name: 'eth1' }, ...(tiedOnly ? {} : { [untied]: { name: 'eth2' } }) } });
  const pid = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const r = runHook(rig.simhost, 'create-runtime', ociState(id, bundle, 'creating', { pid }), { stateDir: rig.stateDir });
  t.equal(r.status, 0, 'create-runtime exits 0', { stderr: r.stderr });
  const wrong = rig.sb.createNetns('wrong');
  rig.sb.createVethPair(wrong, uniqueName('w'), uniqueName('wp'));
  return { rig, id, bundle, hostBefore, inside: await steady(rig.ctr), wrong, wrongBefore: await steady(wrong) };
}

/** Nothing moved: the wrong namespace, the container and the state are as they were. */
async function nothingChanged(t: Test, a: Attached): Promise<void> {
  t.same(await settledTo(a.wrong, a.wrongBefore), a.wrongBefore, 'the wrong namespace is as it was: nothing came into it');
  t.same(await settledTo(a.rig.ctr, a.inside), a.inside, 'the devices are still in the container, untouched');
  t.ok(existsSync(join(a.rig.stateDir, encodeId(a.id), 'journal.json')), 'the journal stays');
  t.equal(pinsIn(a.rig.stateDir).length, 1, 'and so does the pin');
}

t.test('gc from a namespace that is not the host\'s changes nothing and loses nothing; gc in the host\'s then restores exactly', async (t) => {
  const a = await attachedThenGone(t, true);
  const wrongGc = cliIn(a.rig, a.wrong, ['gc']);
  t.equal(wrongGc.status, 1, 'gc in the wrong namespace exits 1', { stdout: wrongGc.stdout, stderr: wrongGc.stderr });
  const lines = wrongGc.stdout.trimEnd().split('\n');
  t.equal(lines.length, 2, 'one line for the container and the summary', { stdout: wrongGc.stdout });
  t.match(lines[0], `${a.id}: failed (`, 'the container is not restored');
  namesTheHost(t, lines[0], a.rig, a.id);
  t.equal(lines[1], 'gc: 0 restored, 0 kept, 1 failed', 'the summary says it failed');
  await nothingChanged(t, a);

  const gc = cliIn(a.rig, a.rig.simhost, ['gc']);
  t.equal(gc.status, 0, 'gc in the host\'s namespace exits 0', { stdout: gc.stdout, stderr: gc.stderr });
  t.match(gc.stdout, `${a.id}: restored (container is gone)`, 'and restores the container');
  t.same(await settledTo(a.rig.simhost, a.hostBefore), a.hostBefore, 'the host is exactly as before');
  t.same(stateEntries(a.rig.stateDir), [], 'no state left');
  t.same(pinsIn(a.rig.stateDir), [], 'no pin left');
});

t.test('a journal of a release that did not record the host\'s namespace, gc from another namespace: a device tied to the host shows it is not, nothing changed', async (t) => {
  const a = await attachedThenGone(t, true);
  const { journal, write } = journalOf(a.rig.stateDir, a.id);
  delete journal.hostNetns;
  write();
  const wrongGc = cliIn(a.rig, a.wrong, ['gc']);
  t.equal(wrongGc.status, 1, 'gc in the wrong namespace exits 1', { stdout: wrongGc.stdout });
  t.match(wrongGc.stdout, `${a.id}: failed (container is gone: container ${a.id}: its journal, of an older release, does not name the host's network namespace, and device `,
    'saying the device is tied to another namespace');
  t.match(wrongGc.stdout, "nothing changed: run oci-netdev gc in the host's network namespace)", 'and where to run gc');
  t.notMatch(wrongGc.stdout + wrongGc.stderr, /lost/, 'and calls nothing lost');
  await nothingChanged(t, a);
  const gc = cliIn(a.rig, a.rig.simhost, ['gc']);
  t.equal(gc.status, 0, 'gc in the host\'s namespace exits 0', { stdout: gc.stdout, stderr: gc.stderr });
  t.same(await settledTo(a.rig.simhost, a.hostBefore), a.hostBefore, 'the host is exactly as before');
  t.same(stateEntries(a.rig.stateDir), [], 'no state left');
});

t.test('poststop from a namespace that is not the host\'s: one line, nothing changed; poststop in the host\'s restores', async (t) => {
  const a = await attachedThenGone(t, true);
  const state = JSON.stringify(ociState(a.id, a.bundle, 'stopped'));
  const wrong = sh(...inSimHost(a.wrong, [OCI_NETDEV, 'poststop', '--state-dir', a.rig.stateDir]), { input: state });
  t.equal(wrong.status, 1, 'poststop in the wrong namespace exits 1');
  const lines = wrong.stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, 'one line on stderr', { stderr: wrong.stderr });
  namesTheHost(t, lines[0], a.rig, a.id);
  await nothingChanged(t, a);

  const r = runHook(a.rig.simhost, 'poststop', ociState(a.id, a.bundle, 'stopped'), { stateDir: a.rig.stateDir });
  t.equal(r.status, 0, 'poststop in the host\'s namespace exits 0', { stderr: r.stderr });
  t.same(await settledTo(a.rig.simhost, a.hostBefore), a.hostBefore, 'the host is exactly as before');
  t.same(stateEntries(a.rig.stateDir), [], 'no state left');
});

t.test('CNI DEL and GC from a namespace that is not the host\'s: refused, nothing changed, IPAM\'s reservation kept; DEL in the host\'s restores', async (t) => {
  const s = nicSetup(t);
  const before = await steady(s.rig.simhost);
  const network = uniqueId('net');
  const conf = {
    cniVersion: '1.1.0', name: network, type: 'oci-netdev', device: s.nic, stateDir: s.rig.stateDir,
    ipam: { type: 'host-local', dataDir: s.ipamDir, ranges: [[{ subnet: '10.125.0.0/24' }]] },
  };
  const add = execPlugin(s.run, 'ADD', 'oci-netdev', conf);
  t.equal(add.status, 0, 'ADD in the host\'s namespace', { out: add.stdout, err: add.stderr });
  const inside = await steady(s.rig.ctr);
  const wrong = s.rig.sb.createNetns('wrong');
  const wrongBefore = await steady(wrong);
  const id = `cni:${network}:${s.run.containerId}:eth0`;

  const unchanged = async (what: string) => {
    t.same(await settledTo(wrong, wrongBefore), wrongBefore, `${what}: nothing came into the wrong namespace`);
    t.same(await settledTo(s.rig.ctr, inside), inside, `${what}: the NIC is still in the container`);
    t.same(reservations(s.ipamDir, network), ['10.125.0.2'], `${what}: host-local still holds the address`);
    t.equal(stateEntries(s.rig.stateDir).length, 1, `${what}: the journal stays`);
  };
  const del = execPlugin({ ...s.run, simhost: wrong }, 'DEL', 'oci-netdev', conf);
  t.equal(del.status, 1, 'DEL from the wrong namespace fails', { out: del.stdout });
  t.match(String(del.json?.msg), `container ${id}: its devices belong to the host's network namespace net:[${nsIno(netnsPath(s.rig.simhost))}]`, 'the error names the attachment and the namespace expected');
  await unchanged('after DEL');

  const gc = execPlugin({ ...s.run, simhost: wrong, netns: undefined }, 'GC', 'oci-netdev', { ...conf, 'cni.dev/valid-attachments': [] });
  t.equal(gc.status, 1, 'GC from the wrong namespace fails', { out: gc.stdout });
  t.match(String(gc.json?.msg), "belong to the host's network namespace", 'saying where to run it');
  await unchanged('after GC');

  const home = execPlugin(s.run, 'DEL', 'oci-netdev', conf);
  t.equal(home.status, 0, 'DEL in the host\'s namespace', { out: home.stdout });
  t.same(await settledTo(s.rig.simhost, before), before, 'the host is exactly as before');
  t.same(reservations(s.ipamDir, network), [], 'the address is released');
  t.same(stateEntries(s.rig.stateDir), [], 'no state left');
});

t.test('a journal records the host\'s namespace and the boot it was written in', async (t) => {
  const rig = makeRig(t);
  const { tied } = standIns(rig);
  const id = uniqueId('ctr');
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [tied]: {} } });
  t.equal(runHook(rig.simhost, 'create-runtime', ociState(id, bundle, 'creating'), { stateDir: rig.stateDir }).status, 0, 'create-runtime');
  const line = readFileSync(join(rig.stateDir, encodeId(id), 'journal.json'), 'utf8').split('\n')[0];
  const { journal } = JSON.parse(line) as { journal: { hostNetns?: object } };
  const ns = shOk('stat', ['-L', '-c', '%d %i', netnsPath(rig.simhost)]).trim().split(' ').map(Number);
  const cookie = nsCookie(netnsPath(rig.simhost));
  t.not(cookie, nsCookie(netnsPath(rig.ctr)), 'the host and the container have cookies of their own');
  t.same(journal.hostNetns, { dev: ns[0], ino: ns[1], bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), cookie }, 'dev, inode, boot id and cookie');
  t.equal(runHook(rig.simhost, 'poststop', ociState(id, bundle, 'stopped'), { stateDir: rig.stateDir }).status, 0, 'poststop');
});

t.test('a journal whose host namespace has the recorded inode number but another cookie (the namespace died, its number was reused): refused, nothing changed; a journal without a cookie is restored', async (t) => {
  const a = await attachedThenGone(t, true);
  const hostIno = nsIno(netnsPath(a.rig.simhost));
  const { journal, write } = journalOf(a.rig.stateDir, a.id);
  const recorded = journal.hostNetns?.cookie;
  t.equal(recorded, nsCookie(netnsPath(a.rig.simhost)), 'the journal has the cookie of the host namespace');
  journal.hostNetns!.cookie = String(BigInt(recorded!) + 1000000n);
  write();
  for (const how of ['gc', 'poststop'] as const) {
    const r = how === 'gc' ? cliIn(a.rig, a.rig.simhost, ['gc'])
      : sh(...inSimHost(a.rig.simhost, [OCI_NETDEV, 'poststop', '--state-dir', a.rig.stateDir]), { input: JSON.stringify(ociState(a.id, a.bundle, 'stopped')) });
    t.equal(r.status, 1, `${how} exits 1`, { stdout: r.stdout, stderr: r.stderr });
    t.match(how === 'gc' ? r.stdout : r.stderr, `container ${a.id}: its devices belong to the host's network namespace net:[${hostIno}] of cookie ${journal.hostNetns!.cookie}, which is gone: this one has its inode number but cookie ${recorded}; nothing changed`,
      `${how} names the cookies`);
    await nothingChanged(t, a);
  }
  delete journal.hostNetns!.cookie;
  write();
  const gc = cliIn(a.rig, a.rig.simhost, ['gc']);
  t.equal(gc.status, 0, 'gc of a journal without a cookie (an older release, an older kernel) exits 0', { stdout: gc.stdout, stderr: gc.stderr });
  t.same(await settledTo(a.rig.simhost, a.hostBefore), a.hostBefore, 'the host is exactly as before');
  t.same(stateEntries(a.rig.stateDir), [], 'no state left');
});
