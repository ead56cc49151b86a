// The README's quickstart recipe, run as written: the shell block after the marker
// `<!-- tested by test/integration/readme.test.ts -->`, in bash -e, in a throwaway simulated host
// (where its stand-in NIC demo0 is made), with `oci-netdev` on PATH as `make install` puts it, and
// in a mount namespace of its own whose /run/runc and /run/oci-netdev are fresh tmpfs: the recipe
// uses runc's and oci-netdev's default state folders, which must not meet this machine's.
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { OCI_NETDEV } from '../helpers/hook';
import { netnsPath, REPO_ROOT, Sandbox, sh } from '../helpers/sandbox';

const MARKER = '<!-- tested by test/integration/readme.test.ts -->';

/** The shell block that follows the marker. */
function recipe(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  if (at === -1) throw new Error(`README.md has no ${MARKER}`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error('no ```sh block after the marker');
  return block[1];
}

/** `dir` exists while the test runs; removed afterwards if this test made it and it is empty. */
function mountPoint(sb: Sandbox, dir: string): void {
  if (existsSync(dir)) return;
  mkdirSync(dir, { mode: 0o700 });
  sb.defer(() => {
    if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
  });
}

t.test("the README's quickstart recipe runs as written and gives the container the NIC", async (t) => {
  const sb = new Sandbox(t);
  const script = recipe();
  const simhost = sb.createNetns('simhost');
  const work = sb.tempDir('readme');
  const bin = sb.tempDir('bin');
  symlinkSync(OCI_NETDEV, join(bin, 'oci-netdev'));
  for (const dir of ['/run/runc', '/run/oci-netdev']) mountPoint(sb, dir);
  const inner = 'mount -t tmpfs -o mode=0700 tmpfs /run/runc && mount -t tmpfs -o mode=0700 tmpfs /run/oci-netdev && ' +
    `cd "$1" && exec nsenter --net=${netnsPath(simhost)} -- bash -e -c "$2"`;
  const r = sh('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', inner, 'sh', work, script],
    { env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` }, timeoutMs: 120_000 });
  t.equal(r.status, 0, `the recipe exits 0: ${r.stderr}`);
  const [inContainer, home] = r.stdout.split(/^(?=\d+: demo0[@:])/m);
  t.match(inContainer, /^\d+: eth1(@\S+)?: [\s\S]*inet 192\.0\.2\.10\/24/m, 'the container printed eth1 with the address demo0 had');
  t.match(home, /^\d+: demo0(@\S+)?: <[^>]*\bUP\b[^>]*>[\s\S]*inet 192\.0\.2\.10\/24/, 'and demo0 is back on the host, up, with its address');
});
