// The hook side of CDI (issue 12) against the kernel: `create-runtime --device` run by hand, and a
// second run that asks for a device the container's journal lacks (a CDI device next to a
// container already attached another way) fails in one line and changes nothing.
import t from 'tap';
import { OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { configBundle, makeRig, nonLoopback, ociState, stateEntries, userStderr } from '../helpers/netdevices';
import { inSimHost, nsSnapshot, sh } from '../helpers/sandbox';

t.test('create-runtime --device attaches the entry; a later run with another device is refused; poststop restores', async (t) => {
  const rig = makeRig(t);
  const [nic1, nic2] = [uniqueName('nic'), uniqueName('nic')];
  rig.sb.createVethPair(rig.simhost, nic1, uniqueName('peer'));
  rig.sb.createVethPair(rig.simhost, nic2, uniqueName('peer'));
  const before = nsSnapshot(rig.simhost);
  const id = uniqueId('cdi');
  const bundle = configBundle(rig.sb, rig.ctr, {});
  const hook = (command: string, status: 'creating' | 'stopped', device: string) =>
    sh(...inSimHost(rig.simhost, [OCI_NETDEV, '--state-dir', rig.stateDir, command, '--device', device]), { input: JSON.stringify(ociState(id, bundle, status)) });

  const first = hook('create-runtime', 'creating', `${nic1}:name=net1,mtu=1400`);
  t.equal(first.status, 0, 'create-runtime --device exits 0', { stderr: first.stderr });
  t.same(nonLoopback(rig.ctr), ['net1'], 'the container holds the device under its --device name');
  const attached = nsSnapshot(rig.ctr);
  t.equal(attached.net1?.mtu, 1400, 'with its --device MTU');
  const host = nsSnapshot(rig.simhost);

  const again = hook('create-runtime', 'creating', `${nic1}:name=net1,mtu=1400`);
  t.equal(again.status, 0, 'the same request again is a no-op', { stderr: again.stderr });
  const late = hook('create-runtime', 'creating', nic2);
  t.equal(late.status, 1, 'a request for a device the journal lacks fails');
  t.equal(userStderr(late.stderr), `oci-netdev: container ${id} already has devices attached, without ${nic2}: ask for all of its devices one way (config.json and CDI, or the annotation)`);
  t.same(nsSnapshot(rig.ctr), attached, 'the container is unchanged');
  t.same(nsSnapshot(rig.simhost), host, 'the host is unchanged');

  const stop = hook('poststop', 'stopped', `${nic1}:name=net1,mtu=1400`);
  t.equal(stop.status, 0, 'poststop exits 0', { stderr: stop.stderr });
  t.equal(hook('poststop', 'stopped', nic2).status, 0, 'a second poststop exits 0');
  t.same(nsSnapshot(rig.simhost), before, 'the host is as before');
  t.same(stateEntries(rig.stateDir), [], 'no state remains');
});
