// What a node operator installs (deploy/): `make install`'s node files (the gc units, the hooks.d
// file, the man pages, the bash completion, the licence, the example policy) and `make uninstall`;
// the units as systemd-analyze verifies them; the example policy against the policy schema; the
// DaemonSet manifest; and the image `make image` builds with buildah from the repository, whose
// init script installs oci-netdev on a scratch "node".
import t from 'tap';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parsePolicy } from '../../src/config';
import { EXECUTABLE } from '../helpers/hook';
import { RUN_DIR, uniqueId } from '../helpers/names';
import { REPO_ROOT, Sandbox, sh, shOk } from '../helpers/sandbox';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const MANIFEST = join(REPO_ROOT, 'deploy/kubernetes/oci-netdev.yaml');
const EXAMPLE_POLICY = join(REPO_ROOT, 'deploy/policy.example.json');

/** `make -o build TARGET VARS...` in the repository: `make build` already ran, and rebuilding dist/ would pull it from under the other tests. */
function make(target: string, vars: string[], timeoutMs = 300_000) {
  return sh('make', ['-C', REPO_ROOT, '--no-print-directory', '-o', 'build', target, ...vars], { timeoutMs });
}

/** Every file and link under `root`, relative, sorted. */
function filesUnder(root: string): string[] {
  return shOk('find', [root, '!', '-type', 'd', '-printf', '%P\n']).split('\n').filter(Boolean).sort();
}

interface Manifest {
  kind: string;
  items: { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: DaemonSetSpec }[];
}
interface Container {
  name: string;
  image: string;
  command: string[];
  volumeMounts: { name: string; mountPath: string; mountPropagation?: string }[];
}
interface DaemonSetSpec {
  template: { spec: { hostNetwork: boolean; hostPID: boolean; initContainers: Container[]; containers: Container[]; volumes: { name: string; hostPath?: { path: string } }[] } };
}

t.test('make install puts the node files in place; make uninstall removes everything it put', async (t) => {
  const sb = new Sandbox(t);
  const destdir = sb.tempDir('destdir');
  const made = make('install', [`DESTDIR=${destdir}`, 'PREFIX=/usr']);
  t.equal(made.status, 0, `make install: ${made.stderr}`);
  const usr = join(destdir, 'usr');

  const hooksD = JSON.parse(readFileSync(join(usr, 'share/containers/oci/hooks.d/oci-netdev.json'), 'utf8')) as { hook: { path: string } };
  const printed = JSON.parse(shOk(EXECUTABLE, ['hooks-d'])) as { hook: { path: string } };
  t.same(hooksD, { ...printed, hook: { ...printed.hook, path: '/usr/bin/oci-netdev' } },
    'the hooks.d file (where podman and CRI-O look under /usr) is what the executable\'s hooks-d prints, naming it where it is installed');
  const service = readFileSync(join(usr, 'lib/systemd/system/oci-netdev-gc.service'), 'utf8');
  t.match(service, /^ExecStart=\/usr\/bin\/oci-netdev gc$/m, 'the service runs PREFIX/bin/oci-netdev gc');
  t.equal(readFileSync(join(usr, 'lib/systemd/system/oci-netdev-gc.timer'), 'utf8'), readFileSync(join(REPO_ROOT, 'deploy/systemd/oci-netdev-gc.timer'), 'utf8'));
  for (const [installed, built] of [['share/man/man5/oci-netdev.5', 'man/oci-netdev.5'], ['share/bash-completion/completions/oci-netdev', 'completion/oci-netdev.bash'],
    ['share/doc/oci-netdev/LICENSE', 'LICENSE'], ['share/doc/oci-netdev/policy.example.json', 'deploy/policy.example.json']]) {
    t.equal(readFileSync(join(usr, installed), 'utf8'), readFileSync(join(REPO_ROOT, built), 'utf8'), `${installed} is ${built}`);
  }

  // A CNI link that is not ours stays; ours goes with everything else.
  const other = sb.tempDir('other');
  const otherLink = join(other, 'opt/cni/bin/oci-netdev');
  mkdirSync(join(other, 'opt/cni/bin'), { recursive: true });
  symlinkSync('/somewhere/else', otherLink);
  t.equal(make('uninstall', [`DESTDIR=${other}`, 'PREFIX=/usr']).status, 0);
  t.equal(readlinkSync(otherLink), '/somewhere/else', 'uninstall keeps a CNI link that points elsewhere');

  const removed = make('uninstall', [`DESTDIR=${destdir}`, 'PREFIX=/usr']);
  t.equal(removed.status, 0, `make uninstall: ${removed.stderr}`);
  t.same(filesUnder(destdir), [], 'nothing install put in place is left');
});

t.test('the gc units pass systemd-analyze verify', async (t) => {
  const analyze = sh('sh', ['-c', 'command -v systemd-analyze']);
  if (analyze.status !== 0) {
    t.fail('systemd-analyze is not installed (Debian package systemd): the units cannot be verified');
    return;
  }
  const sb = new Sandbox(t);
  const destdir = sb.tempDir('destdir');
  t.equal(make('install', [`DESTDIR=${destdir}`, 'PREFIX=/usr']).status, 0, 'make install');
  // verify checks that ExecStart is executable and that the Documentation= man page exists: point
  // both at the scratch install, and verify the units from a folder of their own.
  const units = sb.tempDir('units');
  const service = readFileSync(join(destdir, 'usr/lib/systemd/system/oci-netdev-gc.service'), 'utf8');
  writeFileSync(join(units, 'oci-netdev-gc.service'), service.replace('ExecStart=/usr/bin/', `ExecStart=${destdir}/usr/bin/`));
  writeFileSync(join(units, 'oci-netdev-gc.timer'), readFileSync(join(destdir, 'usr/lib/systemd/system/oci-netdev-gc.timer')));
  const verify = sh('systemd-analyze', ['verify', join(units, 'oci-netdev-gc.timer'), join(units, 'oci-netdev-gc.service')],
    { env: { MANPATH: join(destdir, 'usr/share/man'), SYSTEMD_LOG_LEVEL: 'notice' } });
  t.same({ status: verify.status, stderr: verify.stderr }, { status: 0, stderr: '' }, 'systemd-analyze verify: no complaint');
  const broken = sh('systemd-analyze', ['verify', join(units, 'oci-netdev-gc.service')], { env: { MANPATH: '/nonexistent' } });
  t.match(broken.stderr, /man oci-netdev\(1\)/, 'the check is real: without the man page verify complains');
});

t.test('the example policy passes the policy schema, and the manifest ships it', async (t) => {
  const text = readFileSync(EXAMPLE_POLICY, 'utf8');
  const policy = parsePolicy(text, EXAMPLE_POLICY);
  t.same(policy.annotation.allowDevices.map((g) => g.pattern), ['enp3s0f1v*'], 'it parses, globs and all');
  const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Manifest;
  const configMap = manifest.items.find((i) => i.kind === 'ConfigMap');
  t.same(JSON.parse(configMap?.data?.['policy.json'] ?? 'null'), JSON.parse(text), 'the ConfigMap holds the example policy');
});

t.test('the DaemonSet manifest parses and runs the image make image builds', async (t) => {
  const manifest = JSON.parse(readFileSync(MANIFEST, 'utf8')) as Manifest;
  t.equal(manifest.kind, 'List');
  const ds = manifest.items.find((i) => i.kind === 'DaemonSet')?.spec?.template.spec;
  if (!ds) throw new Error('no DaemonSet in the manifest');
  const image = `localhost/oci-netdev:${VERSION}`;
  t.same([...ds.initContainers, ...ds.containers].map((c) => [c.name, c.image]), [['install', image], ['gc', image]], 'both containers run the image');
  t.same(ds.initContainers[0].command, ['/opt/oci-netdev/share/oci-netdev/install-on-host.sh'], 'the init container installs on the node');
  t.match(ds.containers[0].command.join(' '), /\/opt\/oci-netdev\/bin\/oci-netdev gc; sleep 300/, 'the gc loop');
  t.same([ds.hostNetwork, ds.hostPID], [true, true], "gc sees the host's namespace and the containers' pids");
  const state = ds.containers[0].volumeMounts.find((m) => m.mountPath === '/run/oci-netdev');
  t.equal(state?.mountPropagation, 'Bidirectional', 'the state dir is shared with the host, netns pins included');
  // -n: print the commands (a sub-make prints its own too), run nothing.
  const made = make('-n', ['image', `IMAGE_DIR=${join(RUN_DIR, 'not-made')}`]);
  t.match(made.stdout, ` -t ${image} `, 'make image tags the image the manifest names');
});

t.test('make image builds the image with buildah, and its init script installs oci-netdev on a node', async (t) => {
  if (sh('sh', ['-c', 'command -v buildah']).status !== 0) {
    t.fail('BUILDAH IS NOT INSTALLED: the image cannot be built on this machine (Debian package buildah)');
    return;
  }
  const sb = new Sandbox(t);
  const work = sb.tempDir('image');
  // Private storage (vfs) and chroot isolation: nothing of the machine's own images is touched. The
  // base is made here, since nothing is downloaded (the Containerfile's BASE is an ARG): busybox, and
  // the libraries the executable and koffi's module link, from this machine (what
  // debian:bookworm-slim provides); no node.
  const buildah = ['buildah', '--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs'];
  const env = { BUILDAH_ISOLATION: 'chroot' };
  sb.defer(() => void sh(buildah[0], [...buildah.slice(1), 'rm', '--all'], { env }));
  const base = `localhost/${uniqueId('base')}`;
  const rootfs = join(work, 'base');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  shOk('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
  for (const applet of shOk('/bin/busybox', ['--list']).split('\n').filter((a) => a && a !== 'busybox')) symlinkSync('busybox', join(rootfs, 'bin', applet));
  const libs = new Set([EXECUTABLE, join(REPO_ROOT, 'dist/oci-netdev-koffi.node')]
    .flatMap((f) => [...shOk('ldd', [f]).matchAll(/(\/\S+) \(0x/g)].map((m) => m[1])));
  for (const lib of libs) {
    mkdirSync(join(rootfs, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(rootfs, lib));
  }
  const from = shOk(buildah[0], [...buildah.slice(1), 'from', 'scratch'], { env }).trim();
  shOk(buildah[0], [...buildah.slice(1), 'copy', from, `${rootfs}/`, '/'], { env });
  shOk(buildah[0], [...buildah.slice(1), 'commit', '-q', from, base], { env });

  const image = `localhost/oci-netdev:${VERSION}`;
  const built = make('image', [`BUILDAH=${buildah.join(' ')}`, `IMAGE_BASE=${base}`, `IMAGE_DIR=${join(work, 'context')}`], 600_000);
  t.equal(built.status, 0, `make image: ${built.stderr.slice(-2000)}`);
  const names = shOk(buildah[0], [...buildah.slice(1), 'images', '--format', '{{.Name}}:{{.Tag}}'], { env }).split('\n');
  t.ok(names.includes(image), `the image is tagged ${image}`);

  const node = join(work, 'node');
  const policyDir = join(work, 'policy');
  mkdirSync(node);
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'policy.json'), readFileSync(EXAMPLE_POLICY));
  const ctr = shOk(buildah[0], [...buildah.slice(1), 'from', image], { env }).trim();
  const installed = sh(buildah[0], [...buildah.slice(1), 'run', '-v', `${node}:/host`, '-v', `${policyDir}:/policy:ro`, ctr,
    '/opt/oci-netdev/share/oci-netdev/install-on-host.sh'], { env, timeoutMs: 120_000 });
  t.equal(installed.status, 0, `the init script: ${installed.stderr}`);
  const executable = readFileSync(EXECUTABLE);
  for (const dir of ['opt/oci-netdev/bin', 'opt/cni/bin']) {
    t.ok(lstatSync(join(node, dir, 'oci-netdev')).isFile() && readFileSync(join(node, dir, 'oci-netdev')).equals(executable), `the node's ${dir}/oci-netdev is the executable make build made, a file`);
    t.ok(readFileSync(join(node, dir, 'oci-netdev-koffi.node')).equals(readFileSync(join(REPO_ROOT, 'dist/oci-netdev-koffi.node'))), `with koffi's module beside it`);
  }
  t.same(filesUnder(join(node, 'opt/cni/bin')), ['oci-netdev', 'oci-netdev-koffi.node'], 'no half-copied plugin is left');
  t.notOk(existsSync(join(node, 'opt/oci-netdev/lib/oci-netdev')), 'no Node launcher tree');
  const hooksD = JSON.parse(readFileSync(join(node, 'etc/containers/oci/hooks.d/oci-netdev.json'), 'utf8')) as { hook: { path: string } };
  t.equal(hooksD.hook.path, '/opt/oci-netdev/bin/oci-netdev', 'the hooks.d file names the executable on the node');
  t.equal(readFileSync(join(node, 'etc/oci-netdev/policy.json'), 'utf8'), readFileSync(EXAMPLE_POLICY, 'utf8'), 'the policy from the ConfigMap');
  t.equal(lstatSync(join(node, 'etc/oci-netdev/policy.json')).mode & 0o777, 0o644);
  for (const dir of ['opt/oci-netdev/bin', 'opt/cni/bin']) {
    const v = sh(join(node, dir, 'oci-netdev'), ['--version']);
    t.equal(v.stdout, `oci-netdev ${VERSION}\n`, `the node's ${dir}/oci-netdev runs: ${v.stderr}`);
  }
  // The gc container's command, in the image, which has no node: the executable runs on the base's libraries.
  t.equal(sh(buildah[0], [...buildah.slice(1), 'run', ctr, 'sh', '-c', 'command -v node; command -v nodejs; echo end'], { env }).stdout, 'end\n', 'the image has no node');
  const inImage = sh(buildah[0], [...buildah.slice(1), 'run', ctr, '/opt/oci-netdev/bin/oci-netdev', '--version'], { env, timeoutMs: 120_000 });
  t.equal(inImage.stdout, `oci-netdev ${VERSION}\n`, `the image's executable runs in the image: ${inImage.stderr}`);
  t.notOk(existsSync(join(node, 'opt/oci-netdev.new')), 'no half-copied tree is left');
});
