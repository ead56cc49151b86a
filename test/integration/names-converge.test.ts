// Names at restore converge (issue 18, item 2). While two containers hold NICs, a host agent takes
// one NIC's name, and an altname of it: that NIC comes home under a fallback name that is no other
// container's NIC's name, the other NIC comes home under its own, and the record of the first stays
// open (status shows it, gc warns, the device is held) until gc can put its name and altname back.
// The hooks run in this process with a throwaway namespace as the host; veth ends stand in for
// NICs, and a NIC's veth peer on the host proves which device came back.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { encodeId } from '../../src/state/statedir';
import { ok, refused } from '../helpers/assert';
import { createRuntime, poststop } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, configBundle, ipDetails, makeRig, stateEntries } from '../helpers/netdevices';
import { addAddress, NsSnapshot, settledTo, shOk, steady } from '../helpers/sandbox';

function altnames(ns: string, dev: string): string[] {
  const [link] = JSON.parse(shOk('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])) as { altnames?: string[] }[];
  return link.altnames ?? [];
}

/** A snapshot of a device as it is when restored under `name`: IPv4 labels follow the name. */
function renamed(snap: NsSnapshot[string], name: string): NsSnapshot[string] {
  return { ...snap, name, addresses: snap.addresses.map((a) => ({ ...a, label: a.label === snap.name ? name : a.label })) };
}

t.test('a host agent takes a NIC\'s name and altname while it is away, and another container holds the NIC named like its fallback: no name is taken twice, and gc converges once the names are free', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const ctr2 = w.sb.createNetns('ctr');
  // NIC a, with an altname; NIC b, named as a's first fallback would be (NAME-r0).
  const a = uniqueName('a');
  const b = `${a}-r0`;
  const alt = uniqueName('alt');
  const [peerA, peerB] = [uniqueName('peer'), uniqueName('peer')];
  w.sb.createVethPair(w.simhost, a, peerA);
  w.sb.createVethPair(w.simhost, b, peerB);
  shOk('ip', ['-n', w.simhost, 'link', 'set', a, 'mtu', '1450', 'address', '02:00:5e:00:53:a1', 'alias', 'uplink']);
  shOk('ip', ['-n', w.simhost, 'link', 'property', 'add', 'dev', a, 'altname', alt]);
  addAddress(w.simhost, a, '192.0.2.61/24', ['broadcast', '+']);
  addAddress(w.simhost, a, '2001:db8:61::1/64', ['nodad']);
  addAddress(w.simhost, b, '192.0.2.62/24', ['broadcast', '+']);
  const before = await steady(w.simhost);

  const [id1, id2] = [uniqueId('ctr'), uniqueId('ctr')];
  const bundle1 = configBundle(w.sb, w.ctr, { netDevices: { [a]: { name: 'eth1' } } });
  const bundle2 = configBundle(w.sb, ctr2, { netDevices: { [b]: { name: 'eth1' } } });
  ok(t, createRuntime(w, id1, bundle1), 'create-runtime of the container holding a');
  ok(t, createRuntime(w, id2, bundle2), 'create-runtime of the container holding b');

  // A host agent makes a device named a, with a's altname, while both NICs are away.
  const agentPeer = uniqueName('ag');
  w.sb.createVethPair(w.simhost, a, agentPeer);
  shOk('ip', ['-n', w.simhost, 'link', 'property', 'add', 'dev', agentPeer, 'altname', alt]);
  const agent = await steady(w.simhost);

  const r1 = poststop(w, id1, bundle1);
  ok(t, r1, 'poststop of the first container');
  const fallback = `${a}-r1`;
  t.equal(ipDetails(w.simhost)[peerA]?.link, fallback, `a is home as ${fallback}: ${b}, the other container's NIC's name, is skipped`);
  t.match(r1.stderr, new RegExp(`WARNING: .*device ${a}: name ${a} is taken on the host .*restored as ${fallback}`), 'a warning names the fallback', { stderr: r1.stderr });
  t.match(r1.stderr, new RegExp(`WARNING: .*device ${a}: altname ${alt} is .*taken`), 'a warning names the altname left out', { stderr: r1.stderr });
  t.match(r1.stderr, /oci-netdev gc/, 'and says gc puts them back');
  t.ok(existsSync(join(w.stateDir, encodeId(id1), 'journal.json')), 'the record of the first container stays open');

  const r2 = poststop(w, id2, bundle2);
  ok(t, r2, 'poststop of the second container');
  t.equal(r2.stderr, '', 'without a warning: its name is its own');
  t.equal(ipDetails(w.simhost)[peerB]?.link, b, `b is home under its own name ${b}`);
  t.same(stateEntries(w.stateDir), [encodeId(id1)], 'only the first container\'s record is open');

  // What the host has now: no name twice, the agent's devices untouched.
  const away: NsSnapshot = { ...agent, [fallback]: renamed(before[a], fallback), [b]: before[b] };
  t.same(await settledTo(w.simhost, away), away, 'a under its fallback name with its MTU, MAC, alias and addresses; b as before; the agent\'s devices untouched');
  t.same(altnames(w.simhost, agentPeer), [alt], 'the agent keeps the altname it took');
  t.same(altnames(w.simhost, fallback), [], 'a is home without it');

  const st = JSON.parse(cli(w, ['status', '--json']).stdout) as Array<{ containerId: string; devices: object[] }>;
  t.match(st, [{ containerId: id1, devices: [{ key: a, state: 'restored', hostName: fallback, missingAltNames: [alt] }] }], 'status shows the NIC home under its fallback name, without its altname');
  const text = cli(w, ['status']).stdout;
  t.match(text, new RegExp(`${a}.*home as ${fallback}.*waits for ${a}.*altname ${alt}`), 'and says so in text', { stdout: text });

  // While the record is open, the NIC under its fallback name is held.
  const id3 = uniqueId('ctr');
  const ctr3 = w.sb.createNetns('ctr');
  refused(t, createRuntime(w, id3, configBundle(w.sb, ctr3, { netDevices: { [fallback]: {} } })), `oci-netdev: device ${fallback} is held by container ${id1}`, 'asking for the NIC under its fallback name');

  // gc while the names are still taken: the record stays; a warning, not a failure.
  const busy = cli(w, ['gc']);
  t.equal(busy.status, 0, 'gc exits 0 while the names are taken', { stdout: busy.stdout, stderr: busy.stderr });
  t.match(busy.stdout, new RegExp(`^${id1}: kept \\(.*${a}.*home as ${fallback}`, 'm'), 'gc says what it waits for', { stdout: busy.stdout });
  t.match(busy.stderr, new RegExp(`WARNING: .*${a}.*${fallback}`), 'and warns', { stderr: busy.stderr });
  t.same(await settledTo(w.simhost, away), away, 'nothing changed on the host');

  // The agent's devices go: gc puts the name and the altname back and closes the record.
  shOk('ip', ['-n', w.simhost, 'link', 'del', a]);
  const gc = cli(w, ['gc']);
  t.equal(gc.status, 0, 'gc exits 0', { stdout: gc.stdout, stderr: gc.stderr });
  t.match(gc.stdout, new RegExp(`^${id1}: restored`, 'm'), 'gc restores the name', { stdout: gc.stdout });
  t.same(await settledTo(w.simhost, before), before, 'the host is exactly as before: every name, MTU, MAC, alias and address');
  t.equal(ipDetails(w.simhost)[peerA]?.link, a, `our NIC is ${a} again`);
  t.same(altnames(w.simhost, a), [alt], 'with its altname');
  t.same(stateEntries(w.stateDir), [], 'the record is closed');
  const again = cli(w, ['gc']);
  t.equal(again.stdout, 'gc: nothing to do\n', 'gc then has nothing to do');
});
