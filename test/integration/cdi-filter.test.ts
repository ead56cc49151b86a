// `cdi generate --include GLOB --exclude GLOB`: without them the spec lists every NIC the policy
// allows, veth peers included; with them only the names that match an --include (when any is
// given) and no --exclude. Bad input (a bad glob, a --device the filter leaves out) writes nothing.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OCI_NETDEV } from '../helpers/hook';
import { uniqueName } from '../helpers/names';
import { inSimHost, Sandbox, sh } from '../helpers/sandbox';

t.test('cdi generate --include and --exclude limit the devices of the spec', async (t) => {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const [nic1, peer1, nic2, peer2] = [uniqueName('nic'), uniqueName('peer'), uniqueName('nic'), uniqueName('peer')];
  sb.createVethPair(simhost, nic1, peer1);
  sb.createVethPair(simhost, nic2, peer2);
  const stateDir = sb.tempDir('state');
  const out = join(sb.tempDir('cdi'), 'oci-netdev.json');
  const generate = (args: string[]) => sh(...inSimHost(simhost, [OCI_NETDEV, '--state-dir', stateDir, 'cdi', 'generate', '--out', out, ...args]));
  const names = () => (JSON.parse(readFileSync(out, 'utf8')) as { devices: { name: string }[] }).devices.map((d) => d.name).sort();

  const all = generate([]);
  t.equal(all.status, 0, all.stderr);
  t.same(names(), [nic1, peer1, nic2, peer2].sort(), 'without a filter: every NIC, the veth peers too');

  const nicGlob = nic1.replace(/\d+$/, '*');
  const included = generate(['--include', nicGlob]);
  t.equal(included.stdout, `${out}: 2 device(s) of kind oci-netdev.dev/net: ${nic1}, ${nic2}\n`,
    `--include ${nicGlob}: the NICs only, and no "skipped" line for what the filter leaves out: ${included.stderr}`);
  t.same(names(), [nic1, nic2]);

  const excluded = generate(['--exclude', '*peer*', '--exclude', nic2, '--device', `${nic1}:name=net1`]);
  t.equal(excluded.status, 0, excluded.stderr);
  t.same(names(), [nic1], '--exclude, repeated: the names matching none of them');

  const both = generate(['--include', nicGlob, '--include', peer1, '--exclude', nic2]);
  t.equal(both.status, 0, both.stderr);
  t.same(names(), [nic1, peer1].sort(), 'matching an --include and no --exclude');

  const before = readFileSync(out, 'utf8');
  const badGlob = generate(['--include', 'ont[']);
  t.same([badGlob.status, badGlob.stderr], [1, "oci-netdev: --include ont[: has an unterminated '[' at character 4\n"], 'a bad glob: one line naming it');
  const filteredDevice = generate(['--exclude', nic2, '--device', `${nic2}:mtu=1400`]);
  t.same([filteredDevice.status, filteredDevice.stderr], [1, `oci-netdev: --device ${nic2}: cannot be offered: it matches --exclude ${nic2}\n`],
    'a --device the filter leaves out');
  const noInclude = generate(['--include', nicGlob, '--device', peer2]);
  t.same([noInclude.status, noInclude.stderr], [1, `oci-netdev: --device ${peer2}: cannot be offered: it matches no --include\n`]);
  const nothing = generate(['--include', 'nothing-matches*']);
  t.same([nothing.status, nothing.stderr], [1, 'oci-netdev: no host device can be offered; nothing written\n']);
  t.equal(readFileSync(out, 'utf8'), before, 'and none of them changed the spec');
  t.ok(existsSync(out));
});
