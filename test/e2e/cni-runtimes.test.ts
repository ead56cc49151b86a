// The classic CNI example with nothing but runc (or crun) and oci-netdev (issue 11): a bridge +
// host-local + portmap + firewall network declared as a type "cni" entry of linux.netDevices,
// hooks added by `oci-netdev inject` with the --cni options. busybox httpd in the container
// answers on the host's port 8080; the container pings its gateway; after the container is
// deleted the veth, the rules and the lease are gone. The runtime runs in a simulated host.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { listContainers, RUNTIMES } from '../helpers/runtime';
import { inSimHost, Sandbox, sh, shOk } from '../helpers/sandbox';
import { ipDetails } from '../helpers/netdevices';
import { DEBIAN_CNI } from '../helpers/cni';
import { bridgeNetwork, cacheEntries, cniDirs, leases } from '../helpers/cni-networks';

const PAGE = 'ONDT-CNI-HTTPD';

const veths = (ns: string): string[] => Object.values(ipDetails(ns)).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
const cniRules = (simhost: string): string[] =>
  [...shOk(...inSimHost(simhost, ['iptables-save', '-t', 'nat'])).split('\n'), ...shOk(...inSimHost(simhost, ['iptables-save', '-t', 'filter'])).split('\n')]
    .filter((l) => /^-A CNI-(DN-|HOSTPORT-DNAT .*dnat name)/.test(l) || (/^-A CNI-FORWARD /.test(l) && / -[ds] 10\.8\d\./.test(l)));

RUNTIMES.forEach((runtime, n) => {
  t.test(`${runtime}: a bridge network with port 8080 -> 80; httpd answers from the host; all gone after delete`, async (t) => {
    const sb = new Sandbox(t);
    const simhost = sb.createNetns('simhost');
    const stateDir = makeStateDir(sb);
    const dirs = cniDirs(sb);
    const net = uniqueId('web');
    const subnet = `10.8${n}.0`;
    bridgeNetwork(dirs, net, uniqueName('br'), `${subnet}.0/24`, [
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'firewall' },
    ]);
    const gateway = `${subnet}.1`;
    const bundle = makeBundle(sb, {
      args: ['sh', '-c', `httpd -p 80 -h /www; ping -c 1 -W 5 ${gateway} && echo PING-OK; sleep 60`],
      netDevices: { [net]: { type: 'cni', portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } },
    });
    mkdirSync(join(bundle, 'rootfs/www'));
    writeFileSync(join(bundle, 'rootfs/www/index.html'), `${PAGE}\n`);
    const injected = shOk(OCI_NETDEV, ['--state-dir', stateDir, '--cni-conf-dir', dirs.confDir, '--cni-path', DEBIAN_CNI,
      '--cni-cache-dir', dirs.cacheDir, 'inject', bundle]);
    t.match(injected, /added 2 hook\(s\)/);
    const hooks = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')).hooks;
    t.match(hooks.createRuntime[0].args, ['oci-netdev', '--state-dir', stateDir, '--cni-conf-dir', dirs.confDir, '--cni-path', DEBIAN_CNI,
      '--cni-cache-dir', dirs.cacheDir, 'create-runtime'], 'the hook entries carry the CNI options');

    const root = sb.tempDir(`${runtime}-root`);
    const id = uniqueId('ctr');
    sb.defer(() => {
      sh(...inSimHost(simhost, [runtime, '--root', root, 'delete', '--force', id]));
      if (listContainers(runtime, root).includes(id)) throw new Error(`${runtime} delete --force ${id} left it behind`);
    });
    const [cmd, argv] = inSimHost(simhost, [runtime, '--root', root, 'run', '--bundle', bundle, id]);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));

    // The page through the port mapping, from the host's namespace, once httpd listens.
    let page = '';
    for (let i = 0; i < 100 && !page.includes(PAGE); i++) {
      await new Promise((res) => setTimeout(res, 200));
      page = sh(...inSimHost(simhost, ['wget', '-q', '-T', '2', '-O', '-', `http://${gateway}:8080/`])).stdout;
    }
    t.match(page, PAGE, `httpd answers wget http://${gateway}:8080/ from the host`, { out });
    for (let i = 0; i < 50 && !out.includes('PING-OK'); i++) await new Promise((res) => setTimeout(res, 200));
    t.match(out, 'PING-OK', 'the container pings its gateway');
    t.equal(veths(simhost).length, 1, 'one veth on the host while it runs');
    t.equal(leases(dirs, net).length, 1, 'one lease');
    t.ok(cniRules(simhost).length > 0, 'portmap and firewall rules are in place');
    const st = JSON.parse(shOk(...inSimHost(simhost, [OCI_NETDEV, '--state-dir', stateDir, 'status', '--json'])));
    t.match(st, [{ containerId: id, networks: [{ network: net, ifname: 'eth0', state: 'added', addresses: [new RegExp(`^${subnet.replace(/\./g, '\\.')}\\.\\d+/24$`)] }] }],
      'status shows the network, its address and port mapping');

    shOk(...inSimHost(simhost, [runtime, '--root', root, 'kill', id, 'KILL']));
    await exited;
    // `run` in the foreground deletes the container, which runs poststop; make sure it is gone.
    sh(...inSimHost(simhost, [runtime, '--root', root, 'delete', '--force', id]));
    t.same(veths(simhost), [], 'the veth is gone');
    t.same(cniRules(simhost), [], 'no portmap or firewall rule of the container is left', { rules: cniRules(simhost) });
    t.same(leases(dirs, net), [], 'the host-local reservation is gone');
    t.same(cacheEntries(dirs), [], 'the cache entry is gone');
  });
});
