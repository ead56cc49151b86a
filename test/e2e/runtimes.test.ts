// runc 1.1.5 and crun 1.8.1 (neither moves netDevices itself) run a busybox bundle whose
// config.json declares linux.netDevices, with the hooks added by `oci-netdev inject`. The runtime
// runs under nsenter --net in a throwaway netns that plays the host, makes the container's netns
// itself, and runs our createRuntime and poststop hooks there. The container prints what it sees;
// after it exits the simulated host must be identical to before. A config the hook refuses must
// keep the container from starting, and change nothing.
import t, { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV } from '../helpers/hook';
import { pinsIn } from '../helpers/host';
import { stateEntries } from '../helpers/netdevices';
import { uniqueId, uniqueName } from '../helpers/names';
import { RUNTIMES, runContainer } from '../helpers/runtime';
import { addAddress, Sandbox, shOk, settledTo, steady } from '../helpers/sandbox';

const MARKER = 'ONDT-CONTAINER-RAN';
const PRINT = ['sh', '-c', `echo ${MARKER}; ip -o link; ip -o addr`];

interface SeenLink {
  flags: string[];
  mtu: number;
  mac: string;
}

interface SeenAddr {
  family: string;
  cidr: string;
  broadcast: string | null;
  scope: string;
  label: string | null;
}

/** Parses busybox `ip -o link` and `ip -o addr` lines (one device or address per line). */
function parseSeen(out: string): { links: Record<string, SeenLink>; addrs: Record<string, SeenAddr[]> } {
  const links: Record<string, SeenLink> = {};
  const addrs: Record<string, SeenAddr[]> = {};
  for (const line of out.split('\n')) {
    const link = /^\d+: ([^:@\s]+)(?:@\S+)?: <([^>]*)> mtu (\d+) .*link\/\S+ (\S+)/.exec(line);
    if (link) {
      links[link[1]] = { flags: link[2].split(','), mtu: Number(link[3]), mac: link[4] };
      continue;
    }
    const addr = /^\d+: (\S+)\s+(inet6?) (\S+) (.*)$/.exec(line);
    if (!addr) continue;
    const words = addr[4].split('\\')[0].trim().split(/\s+/);
    const after = (w: string) => (words.includes(w) ? words[words.indexOf(w) + 1] : null);
    (addrs[addr[1]] ??= []).push({
      family: addr[2],
      cidr: addr[3],
      broadcast: after('brd'),
      scope: after('scope') ?? '',
      // The kernel labels every IPv4 address; busybox prints the label last.
      label: addr[2] === 'inet' ? words[words.length - 1] : null,
    });
  }
  return { links, addrs };
}


/** Adds both hooks with `oci-netdev --state-dir DIR inject BUNDLE` and checks what it wrote. */
function inject(t: Test, bundle: string, stateDir: string): void {
  t.match(shOk(OCI_NETDEV, ['--state-dir', stateDir, 'inject', bundle]), /added 2 hook\(s\)/, 'inject adds both hooks');
  const hooks = (JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { hooks: Record<string, { path: string; args: string[] }[]> }).hooks;
  for (const [stage, command] of [['createRuntime', 'create-runtime'], ['poststop', 'poststop']]) {
    t.match(hooks[stage], [{ path: OCI_NETDEV, args: ['oci-netdev', '--state-dir', stateDir, command] }], `${stage} hook runs ${command} with the state dir`);
  }
}

for (const runtime of RUNTIMES) {
  t.test(`${runtime}: the container sees the moved devices; after exit the host is as before`, async (t) => {
    const sb = new Sandbox(t);
    const simhost = sb.createNetns('simhost');
    const stateDir = makeStateDir(sb);
    const [a, b] = [uniqueName('nic'), uniqueName('nic')];
    sb.createVethPair(simhost, a, uniqueName('peer'));
    sb.createVethPair(simhost, b, uniqueName('peer'));
    shOk('ip', ['-n', simhost, 'link', 'set', a, 'mtu', '1400', 'address', '02:00:5e:00:53:51', 'alias', 'uplink']);
    addAddress(simhost, a, '192.0.2.10/24', ['broadcast', '+']);
    addAddress(simhost, a, '192.0.2.11/24', ['label', `${a}:w`]);
    addAddress(simhost, a, '2001:db8:10::1/64', ['nodad']);
    addAddress(simhost, a, '169.254.10.1/16', ['scope', 'link']); // not global: stays behind
    addAddress(simhost, a, '203.0.113.10/24', ['valid_lft', '3000', 'preferred_lft', '3000']); // not permanent: stays behind
    shOk('ip', ['-n', simhost, 'link', 'set', b, 'down']);
    addAddress(simhost, b, '198.51.100.10/25', ['broadcast', '+']);
    addAddress(simhost, b, '2001:db8:11::1/64', ['nodad']);
    const before = await steady(simhost);

    const bundle = makeBundle(sb, { args: PRINT, netDevices: { [a]: { name: 'eth1' }, [b]: {} } });
    inject(t, bundle, stateDir);
    const r = runContainer(sb, runtime, simhost, bundle, uniqueId(runtime), 120_000);
    t.equal(r.status, 0, `${runtime} run exits 0`, { stderr: r.stderr, stdout: r.stdout });
    t.match(r.stdout, MARKER, 'the container ran');

    const { links, addrs } = parseSeen(r.stdout);
    t.same(Object.keys(links).sort(), ['eth1', b, 'lo'].sort(), 'the container sees lo and the two devices, under their names', { stdout: r.stdout });
    t.match(links.eth1, { mtu: 1400, mac: '02:00:5e:00:53:51' }, 'eth1: MTU and MAC kept');
    t.ok(links.eth1?.flags.includes('UP'), 'eth1 is up', { flags: links.eth1?.flags });
    t.ok(links[b]?.flags.includes('UP'), `${b} is up (it was down on the host)`, { flags: links[b]?.flags });
    t.equal(links[b]?.mac, before[b].mac, `${b}: MAC kept`);
    t.equal(links[b]?.mtu, before[b].mtu, `${b}: MTU kept`);
    const global = (dev: string) => (addrs[dev] ?? []).filter((x) => x.scope === 'global').sort((x, y) => x.cidr.localeCompare(y.cidr));
    t.same(global('eth1'), [
      { family: 'inet', cidr: '192.0.2.10/24', broadcast: '192.0.2.255', scope: 'global', label: 'eth1' },
      { family: 'inet', cidr: '192.0.2.11/24', broadcast: null, scope: 'global', label: 'eth1:w' },
      { family: 'inet6', cidr: '2001:db8:10::1/64', broadcast: null, scope: 'global', label: null },
    ], 'eth1: the global permanent IPv4 and IPv6 addresses, with broadcast and label', { stdout: r.stdout });
    t.same(global(b).map((x) => [x.cidr, x.broadcast]), [['198.51.100.10/25', '198.51.100.127'], ['2001:db8:11::1/64', null]], `${b}: its addresses`);
    t.notMatch(r.stdout, /169\.254\.10\.1|203\.0\.113\.10/, 'no link-scope or leased address in the container');

    t.same(await settledTo(simhost, before), before, 'after exit the simulated host is identical to before');
    t.same(pinsIn(stateDir), [], 'no pin remains');
    t.same(stateEntries(stateDir), [], 'no state remains');
  });

  t.test(`${runtime}: a config the hook refuses keeps the container from starting and changes nothing`, async (t) => {
    const sb = new Sandbox(t);
    const simhost = sb.createNetns('simhost');
    const stateDir = makeStateDir(sb);
    const present = uniqueName('nic');
    const missing = uniqueName('missing');
    sb.createVethPair(simhost, present, uniqueName('peer'));
    addAddress(simhost, present, '192.0.2.20/24', ['broadcast', '+']);
    addAddress(simhost, present, '2001:db8:20::1/64', ['nodad']);
    const before = await steady(simhost);

    // runc passes a failing hook's stderr on in its error; crun writes it where this annotation says.
    const hookStderr = join(sb.tempDir('hook-stderr'), 'stderr');
    const bundle = makeBundle(sb, {
      args: PRINT,
      netDevices: { [present]: { name: 'eth1' }, [missing]: { name: 'eth2' } },
      ...(runtime === 'crun' && { annotations: { 'run.oci.hooks.stderr': hookStderr } }),
    });
    inject(t, bundle, stateDir);
    const r = runContainer(sb, runtime, simhost, bundle, uniqueId(runtime), 120_000);
    t.not(r.status, 0, `${runtime} run fails`);
    t.notMatch(r.stdout, MARKER, 'the container process never ran');
    t.match(r.stderr, /hook/, 'because of the hook', { stderr: r.stderr });
    const reason = runtime === 'crun' ? readFileSync(hookStderr, 'utf8') : r.stderr;
    t.match(reason, new RegExp(`${missing}.*no such device`), 'which refused naming the missing device', { reason });
    t.same(await settledTo(simhost, before), before, 'the simulated host is unchanged');
    t.same(pinsIn(stateDir), [], 'no pin remains');
    t.same(stateEntries(stateDir), [], 'no state remains');
  });
}
