// Under runc 1.1.5, with the hooks `oci-netdev inject` writes: the container's first process
// finds the moved NIC's global IPv6 addresses ready (not tentative), so a program that binds at
// start does not fail. (The link-local address is the kernel's: it makes it again in the
// container, with DAD.) The container joins a namespace made beforehand, whose DAD is slowed to 20
// probes, so an address that went through DAD again would surely still be tentative.
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { runContainer } from '../helpers/runtime';
import { addAddress, netnsPath, Sandbox, settledTo, shOk, steady } from '../helpers/sandbox';

const MARKER = 'ONDT-CONTAINER-RAN';

/** busybox `ip -6 addr` lines of global addresses: "inet6 2001:db8::1/64 scope global [flags]". */
const globalLines = (out: string): string[] => out.split('\n').map((l) => l.trim()).filter((l) => /^inet6 \S+ scope global/.test(l));

t.test('runc: the moved NIC\'s global IPv6 addresses are not tentative when the first process runs', async (t) => {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const ctr = sb.createNetns('ctr');
  const stateDir = makeStateDir(sb);
  const nic = uniqueName('nic');
  sb.createVethPair(simhost, nic, uniqueName('peer'));
  addAddress(simhost, nic, '2001:db8:51::1/64');
  addAddress(simhost, nic, '2001:db8:52::1/64', ['nodad']);
  shOk('nsenter', [`--net=${netnsPath(ctr)}`, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.dad_transmits=20']);
  const before = await steady(simhost);

  const bundle = makeBundle(sb, { args: ['sh', '-c', `echo ${MARKER}; ip -6 addr`], netnsPath: netnsPath(ctr), netDevices: { [nic]: { name: 'eth1' } } });
  t.match(shOk(OCI_NETDEV, ['--state-dir', stateDir, 'inject', bundle]), /added 2 hook\(s\)/, 'inject adds both hooks');
  const r = runContainer(sb, 'runc', simhost, bundle, uniqueId('runc'), 120_000);
  t.equal(r.status, 0, 'runc run exits 0', { stderr: r.stderr, stdout: r.stdout });
  t.match(r.stdout, MARKER, 'the container ran');

  const lines = globalLines(r.stdout);
  t.same(lines.map((l) => l.split(' ')[1]).sort(), ['2001:db8:51::1/64', '2001:db8:52::1/64'], 'both global addresses are there', { stdout: r.stdout });
  t.same(lines.filter((l) => /tentative|dadfailed/.test(l)), [], 'none is tentative', { stdout: r.stdout });

  t.same(await settledTo(simhost, before), before, 'after exit the simulated host is identical to before');
});
