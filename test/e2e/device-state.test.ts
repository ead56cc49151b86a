// runc runs a busybox container with two stand-in NICs that carry what a move destroys (routes in
// several tables and both families, permanent neighbours, non-default sysctls, an htb qdisc with a
// class and a filter, a pfifo root). The hooks come from `oci-netdev inject`; runc runs under
// nsenter --net in a throwaway netns that plays the host. After the container exits, all of it is
// back on the simulated host, and the finite-lifetime IPv6 address has its prefix route.
import t from 'tap';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV } from '../helpers/hook';
import { uniqueId } from '../helpers/names';
import { runContainer } from '../helpers/runtime';
import { inSimHost, Sandbox, shOk, settledTo, steady } from '../helpers/sandbox';
import { dadDone, deviceStates, deviceStatesSettledTo, FINITE_V6, richNics } from '../helpers/device-state';

const MARKER = 'ONDT-CONTAINER-RAN';

t.test('runc: after the container exits, routes, neighbours, sysctls and tc of its NICs are back', async (t) => {
  const sb = new Sandbox(t);
  const simhost = sb.createNetns('simhost');
  const stateDir = makeStateDir(sb);
  const { dual, v4only } = richNics(sb, simhost);
  const links = await steady(simhost);
  await dadDone(simhost, [dual, v4only]);
  const before = deviceStates(simhost, [dual, v4only]);

  const bundle = makeBundle(sb, { args: ['sh', '-c', `echo ${MARKER}; ip -o link`], netDevices: { [dual]: { name: 'eth1' }, [v4only]: {} } });
  shOk(OCI_NETDEV, ['--state-dir', stateDir, 'inject', bundle]);
  const r = runContainer(sb, 'runc', simhost, bundle, uniqueId('runc'), 120_000);
  t.equal(r.status, 0, 'runc run exits 0', { stderr: r.stderr, stdout: r.stdout });
  t.match(r.stdout, MARKER, 'the container ran');
  t.match(r.stdout, /: eth1[:@]/, 'with the NIC in it');

  t.same(await settledTo(simhost, links), links, 'links and addresses as before');
  const after = await deviceStatesSettledTo(simhost, before);
  for (const dev of [dual, v4only]) {
    for (const k of Object.keys(before[dev]) as (keyof typeof before[string])[]) t.same(after[dev][k], before[dev][k], `${dev}: ${k} as before`);
  }
  const prefix = JSON.parse(shOk(...inSimHost(simhost, ['ip', '-j', '-6', 'route', 'show', FINITE_V6.prefix, 'dev', dual]))) as unknown[];
  t.equal(prefix.length, 1, 'the finite-lifetime IPv6 address has its prefix route back');
});
