// `make deb`: the package dpkg-deb builds ships the single executable (no Node.js dependency);
// unpacked into a scratch root with `dpkg -x`, it moves a NIC (a veth end in a throwaway simulated
// host) into a runc container and back, through the hook entry of the hooks.d file it ships, where no
// node is reachable and /tmp is noexec; its maintainer scripts enable the gc timer and nothing else.
import t from 'tap';
import { chmodSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { EXECUTABLE, makeStateDir } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { linkSnapshot, REPO_ROOT, Sandbox, sh, shOk } from '../helpers/sandbox';
import { runContainerWithoutNode } from '../helpers/runtime';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const ARCH = shOk('dpkg', ['--print-architecture']).trim();

interface HooksD {
  hook: { path: string; args: string[]; env: string[]; timeout: number };
  stages: string[];
}

t.test('make deb: a package that installs oci-netdev, and what it installed moves a device', async (t) => {
  const sb = new Sandbox(t);
  const out = sb.tempDir('deb');
  // -o build: `make build` already ran, and rebuilding dist/ would pull it from under the other tests.
  const made = sh('make', ['-C', REPO_ROOT, '--no-print-directory', '-o', 'build', 'deb', `DEB_DIR=${out}`], { timeoutMs: 300_000 });
  t.equal(made.status, 0, `make deb: ${made.stderr}`);
  const deb = join(out, `oci-netdev_${VERSION}_${ARCH}.deb`);

  const field = (name: string) => shOk('dpkg-deb', ['--field', deb, name]).trim();
  t.same([field('Package'), field('Version'), field('Architecture'), field('Depends')],
    ['oci-netdev', VERSION, ARCH, 'libc6 (>= 2.17), libstdc++6 (>= 6), libgcc-s1'], 'it depends on what the executable and koffi\'s module link, not on Node.js');
  const contents = shOk('dpkg-deb', ['--contents', deb]).split('\n').filter(Boolean);
  const paths = contents.map((l) => l.split(/\s+/)[5]).filter((p) => !p.endsWith('/')).sort();
  for (const p of ['./usr/bin/oci-netdev', './usr/bin/oci-netdev-koffi.node', './opt/cni/bin/oci-netdev', './opt/cni/bin/oci-netdev-koffi.node', './usr/share/man/man1/oci-netdev.1',
    './usr/share/man/man5/oci-netdev.5', './usr/lib/systemd/system/oci-netdev-gc.service', './usr/lib/systemd/system/oci-netdev-gc.timer',
    './usr/share/containers/oci/hooks.d/oci-netdev.json', './usr/share/bash-completion/completions/oci-netdev', './usr/share/doc/oci-netdev/copyright']) {
    t.ok(paths.includes(p), `the package holds ${p}`);
  }
  t.ok(contents.every((l) => l.split(/\s+/)[1] === 'root/root'), 'every file is root\'s');
  t.same(paths.filter((p) => p.startsWith('./usr/lib/oci-netdev/') || /node_modules|\.js$/.test(p)), [], 'no Node launcher tree, no JavaScript');

  const root = sb.tempDir('root');
  shOk('dpkg', ['-x', deb, root]);
  const executable = readFileSync(EXECUTABLE);
  for (const dir of ['usr/bin', 'opt/cni/bin']) {
    t.ok(lstatSync(join(root, dir, 'oci-netdev')).isFile() && readFileSync(join(root, dir, 'oci-netdev')).equals(executable), `${dir}/oci-netdev is the executable make build made, a file`);
    t.ok(readFileSync(join(root, dir, 'oci-netdev-koffi.node')).equals(readFileSync(join(REPO_ROOT, 'dist/oci-netdev-koffi.node'))), `koffi's module is beside it in ${dir}`);
  }
  t.match(readFileSync(join(root, 'usr/lib/systemd/system/oci-netdev-gc.service'), 'utf8'), /^ExecStart=\/usr\/bin\/oci-netdev gc$/m);
  const installed = join(root, 'usr/bin/oci-netdev');
  const v = sh(join(root, 'usr/bin/oci-netdev'), ['--version']);
  t.equal(v.stdout, `oci-netdev ${VERSION}\n`, `the installed command runs: ${v.stderr}`);

  // The package's hooks.d entry, as runc runs it: its args, env and timeout; its path moved into the
  // scratch root, and a private state dir (the tests' own, never /run/oci-netdev).
  const hooksD = JSON.parse(readFileSync(join(root, 'usr/share/containers/oci/hooks.d/oci-netdev.json'), 'utf8')) as HooksD;
  t.equal(hooksD.hook.path, '/usr/bin/oci-netdev');
  t.same(hooksD.stages, ['createRuntime', 'poststop']);
  const stateDir = makeStateDir(sb);
  const entry = { ...hooksD.hook, path: installed, env: [...hooksD.hook.env, `OCI_NETDEV_STATE_DIR=${stateDir}`] };
  const simhost = sb.createNetns('simhost');
  const nic = uniqueName('nic');
  sb.createVethPair(simhost, nic, uniqueName('peer'));
  shOk('ip', ['-n', simhost, 'addr', 'add', '192.0.2.61/24', 'dev', nic]);
  const before = linkSnapshot(simhost, nic);
  const bundle = makeBundle(sb, {
    args: ['ip', '-o', 'addr', 'show', 'dev', 'eth1'],
    netDevices: { [nic]: { name: 'eth1' } },
    hooks: { createRuntime: [entry], poststop: [entry] },
  });
  const run = runContainerWithoutNode(sb, 'runc', simhost, bundle, uniqueId('deb'));
  t.match(run.stdout, /eth1\s+inet 192\.0\.2\.61\/24.*\nrunc: 0\n\/tmp:\n$/s,
    `with no node reachable, the container saw the NIC as eth1 with its address, and /tmp stayed empty: ${run.stderr}`);
  t.same(linkSnapshot(simhost, nic), before, 'and the NIC is back on the host as it was');
});

t.test('the maintainer scripts enable the gc timer (and start it only under a running systemd)', async (t) => {
  const sb = new Sandbox(t);
  const bin = sb.tempDir('bin');
  const calls = join(bin, 'calls');
  // systemctl itself would act on this machine: a stand-in that records its arguments.
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${calls}\n`);
  chmodSync(join(bin, 'systemctl'), 0o755);
  const script = (name: string, arg: string) => {
    writeFileSync(calls, '');
    const r = sh('/bin/sh', [join(REPO_ROOT, 'deploy/debian', name), arg], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    t.equal(r.status, 0, `${name} ${arg}: ${r.stderr}`);
    return readFileSync(calls, 'utf8').split('\n').filter(Boolean);
  };
  const systemdRuns = sh('test', ['-d', '/run/systemd/system']).status === 0;
  t.same(script('postinst', 'configure'), systemdRuns
    ? ['enable oci-netdev-gc.timer', 'daemon-reload', 'start oci-netdev-gc.timer'] : ['enable oci-netdev-gc.timer'],
  `postinst configure (systemd ${systemdRuns ? '' : 'not '}running here)`);
  t.same(script('postinst', 'abort-upgrade'), [], 'postinst does nothing else');
  t.same(script('prerm', 'remove'), systemdRuns
    ? ['stop oci-netdev-gc.timer oci-netdev-gc.service', 'disable oci-netdev-gc.timer'] : ['disable oci-netdev-gc.timer'], 'prerm remove');
  t.same(script('prerm', 'upgrade'), [], 'an upgrade keeps the timer');
  t.same(script('postrm', 'remove'), systemdRuns ? ['daemon-reload'] : []);
});
