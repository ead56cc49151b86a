// `make install` into a scratch DESTDIR, then the installed copy alone: --version, validate, and
// a device moved in and back by hook entries that the installed `inject` wrote, run as a runtime
// runs them. The installed tree lies outside the repository, so koffi can only be found where make
// install put it. `make install-launcher` (the Node launcher, where no executable is built) is checked
// too.
import t, { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueId, uniqueName } from '../helpers/names';
import { inSimHost, linkSnapshot, REPO_ROOT, sh, shOk } from '../helpers/sandbox';
import type { ShResult } from '../helpers/sandbox';
import { configBundle, makeRig, ociState, Rig } from '../helpers/netdevices';

/** Runs argv with exactly `env` (sh adds to this process's environment), as runtimes start hooks. */
function bare(argv: string[], env: Record<string, string>, input = ''): ShResult {
  const r = spawnSync(argv[0], argv.slice(1), { env, input, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

interface Hook {
  path: string;
  args: string[];
  env: string[];
}

/** `make TARGET` into a fresh DESTDIR with PREFIX=/usr; returns the DESTDIR. */
function makeInstall(t: Test, rig: Rig, target: string): string {
  const destdir = rig.sb.tempDir('destdir');
  // -o build: `make build` already ran, and rebuilding dist/ would pull it from under the other
  // test files running now.
  const made = sh('make', ['-C', REPO_ROOT, '-o', 'build', target, `DESTDIR=${destdir}`, 'PREFIX=/usr'], { timeoutMs: 120_000 });
  t.equal(made.status, 0, `make ${target}: ${made.stderr}`);
  return destdir;
}

const cniVersion = (plugin: string) => bare([plugin], { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
const SUPPORTED = { cniVersion: '1.0.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] };

t.test('make install puts a working oci-netdev under DESTDIR/PREFIX', async (t) => {
  const rig = makeRig(t);
  const destdir = makeInstall(t, rig, 'install');

  const bin = join(destdir, 'usr/bin/oci-netdev');
  const plugin = join(destdir, 'opt/cni/bin/oci-netdev');
  t.same(readdirSync(join(destdir, 'usr/bin')).sort(), ['oci-netdev', 'oci-netdev-koffi.node'], 'PREFIX/bin: the executable and koffi beside it');
  t.same(readdirSync(join(destdir, 'opt/cni/bin')).sort(), ['oci-netdev', 'oci-netdev-koffi.node'], 'CNI_BIN_DIR: the same two');
  t.ok(lstatSync(plugin).isFile() && lstatSync(bin).isFile(), 'files, not links');
  t.same(readFileSync(plugin), readFileSync(join(REPO_ROOT, 'dist/oci-netdev')), 'the plugin is the executable');
  t.equal(lstatSync(bin).mode & 0o777, 0o755, 'executable');
  t.same(readdirSync(join(destdir, 'usr/lib')), ['systemd'], 'in PREFIX/lib only the gc units: no launcher tree');
  t.equal(readFileSync(join(destdir, 'usr/share/man/man1/oci-netdev.1'), 'utf8'), readFileSync(join(REPO_ROOT, 'man/oci-netdev.1'), 'utf8'), 'the man page');
  t.equal(readFileSync(join(destdir, 'usr/share/doc/oci-netdev/koffi-LICENSE.txt'), 'utf8'), readFileSync(join(REPO_ROOT, 'node_modules/koffi/LICENSE.txt'), 'utf8'),
    "koffi's licence");

  const cni = cniVersion(plugin);
  t.match(JSON.parse(cni.stdout || '{}'), SUPPORTED, `with CNI_COMMAND set, the installed plugin answers as a CNI plugin: ${cni.stderr}`);

  const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
  const v = bare([bin, '--version'], {});
  t.same({ status: v.status, stdout: v.stdout, stderr: v.stderr }, { status: 0, stdout: `oci-netdev ${version}\n`, stderr: '' },
    '--version, with no environment');

  const nic = uniqueName('nic');
  rig.sb.createVethPair(rig.simhost, nic, uniqueName('peer'));
  const before = linkSnapshot(rig.simhost, nic);
  const bundle = configBundle(rig.sb, rig.ctr, { netDevices: { [nic]: { name: 'eth1' } } });
  const checked = sh(...inSimHost(rig.simhost, [bin, 'validate', '--live', '--state-dir', rig.stateDir, bundle]));
  t.equal(checked.stdout, `${bundle}/config.json: ok, 1 device(s), attachable on this host now\n`, `validate --live: ${checked.stderr}`);

  // inject, then the entries as a runtime runs them: their path, args and env, the state on stdin.
  shOk(bin, ['--state-dir', rig.stateDir, 'inject', bundle]);
  const hooks = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')).hooks as Record<string, Hook[]>;
  t.equal(hooks.createRuntime[0].path, bin, 'the entries name the installed executable');
  const runEntry = (h: Hook, state: object) => {
    const env = Object.fromEntries(h.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const [cmd, args] = inSimHost(rig.simhost, [h.path, ...h.args.slice(1)]);
    return bare([`/usr/bin/${cmd}`, ...args], env, JSON.stringify(state));
  };
  const id = uniqueId('inst');
  const created = runEntry(hooks.createRuntime[0], ociState(id, bundle, 'creating', { pid: process.pid }));
  t.equal(created.status, 0, `create-runtime: ${created.stderr}`);
  t.equal(linkSnapshot(rig.ctr, 'eth1').mac, before.mac, 'the device is in the container as eth1');
  const stopped = runEntry(hooks.poststop[0], ociState(id, bundle, 'stopped'));
  t.equal(stopped.status, 0, `poststop: ${stopped.stderr}`);
  t.same(linkSnapshot(rig.simhost, nic), before, 'and back on the host as it was');
});

t.test('make install-launcher puts the Node launcher under DESTDIR/PREFIX/lib/oci-netdev', async (t) => {
  const rig = makeRig(t);
  const destdir = makeInstall(t, rig, 'install-launcher');
  const lib = join(destdir, 'usr/lib/oci-netdev');
  t.equal(realpathSync(join(destdir, 'usr/bin/oci-netdev')), join(lib, 'bin/oci-netdev'), 'PREFIX/bin/oci-netdev links to the launcher');
  t.same(readdirSync(join(lib, 'dist')).sort(), ['oci-netdev.cache', 'oci-netdev.js'], 'the bundle and its code cache, no compiled modules');
  t.same(readdirSync(join(lib, 'node_modules/koffi/build/koffi')).sort(), [`linux_${process.arch}`, `musl_${process.arch}`],
    "koffi's native modules for this machine only");
  t.equal(readlinkSync(join(destdir, 'opt/cni/bin/oci-netdev')), '/usr/lib/oci-netdev/bin/oci-netdev', 'CNI_BIN_DIR/oci-netdev links to the installed launcher');
  const cni = cniVersion(join(lib, 'bin/oci-netdev'));
  t.match(JSON.parse(cni.stdout || '{}'), SUPPORTED, `the installed launcher answers as a CNI plugin: ${cni.stderr}`);
});
