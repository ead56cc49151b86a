// Runs last, in its own tap run: everything any test run left behind is one failing assertion
// naming it. Each leak is then removed, so that the next run starts clean and is not blamed.
import t, { Test } from 'tap';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DEV_PREFIX, NAME_PREFIX, RUN_DIR_PREFIX } from './helpers/names';
import { listContainers, Runtime } from './helpers/runtime';
import { inSimHost, mountPoints, sh, shOk } from './helpers/sandbox';

const listDir = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);
const namedNetns = (): string[] => listDir('/run/netns');
const runDirs = (): string[] =>
  listDir(dirname(RUN_DIR_PREFIX))
    .filter((n) => n.startsWith(basename(RUN_DIR_PREFIX)))
    .map((n) => join(dirname(RUN_DIR_PREFIX), n));

/** One failing assertion per leak, then its removal; a single pass when there is none. */
function report<T>(t: Test, what: string, leaks: T[], describe: (leak: T) => string, remove: (leak: T) => void): void {
  for (const leak of leaks) {
    t.fail(`${describe(leak)} left behind`);
    remove(leak);
  }
  if (!leaks.length) t.pass(`no ${what} left behind`);
}

t.test('containers', async (t) => {
  // runContainer's roots are <run dir>/<runtime>-root-XXXXXX.
  const roots = runDirs().flatMap((d) =>
    listDir(d).flatMap((n) => {
      const runtime = /^(runc|crun)-root-/.exec(n)?.[1] as Runtime | undefined;
      return runtime ? [{ runtime, root: join(d, n) }] : [];
    }),
  );
  const leaks = roots.flatMap(({ runtime, root }) => listContainers(runtime, root).map((id) => ({ runtime, root, id })));
  // Deleted in a throwaway netns: poststop hooks run there, away from real devices.
  const gcNs = `${NAME_PREFIX}leak-check`;
  if (leaks.length) shOk('ip', ['netns', 'add', gcNs]);
  report(t, 'runc or crun container', leaks, (c) => `${c.runtime} container ${c.id} in ${c.root}`, (c) =>
    shOk(...inSimHost(gcNs, [c.runtime, '--root', c.root, 'delete', '--force', c.id])),
  );
  if (leaks.length) shOk('ip', ['netns', 'del', gcNs]);

  const pods = shOk('podman', ['ps', '--all', '--format', '{{.Names}}']).split('\n').filter((n) => n.startsWith(NAME_PREFIX));
  report(t, 'podman container', pods, (n) => `podman container ${n}`, (n) => shOk('podman', ['rm', '--force', n]));
});

t.test('network namespaces', async (t) => {
  const leaks = namedNetns().filter((n) => n.startsWith(NAME_PREFIX));
  report(t, 'test netns', leaks, (n) => `netns ${n}`, (n) => shOk('ip', ['netns', 'del', n]));
});

/**
 * The netns runtimes name cni-<uuid> for a container's network (podman's CNI backend, containerd's
 * CRI) that appeared during this run, hold nothing but lo and no process is in: left by a test
 * that ran a runtime. Not ours by name, so only what `make test` listed in /run/netns before the
 * run (the file OCI_NETDEV_TEST_NETNS_BEFORE) tells them from another's; one a process is in
 * (a pod, a container still running) is someone's.
 */
const listed = process.env.OCI_NETDEV_TEST_NETNS_BEFORE;
const notListed = 'OCI_NETDEV_TEST_NETNS_BEFORE is not set (make test sets it): which netns were there before is not known';
t.test('runtime network namespaces', { skip: listed ? false : notListed }, async (t) => {
  const before = new Set(readFileSync(listed!, 'utf8').split('\n'));
  const inUse = new Set(readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((pid) => {
    try {
      return [statSync(`/proc/${pid}/ns/net`).ino];
    } catch {
      return []; // gone meanwhile, or a kernel thread
    }
  }));
  // A path whose netns is no longer mounted on it holds nothing either (ip cannot enter it).
  const onlyLo = (ns: string): boolean => {
    const r = sh('ip', ['-n', ns, '-j', 'link', 'show']);
    return r.status !== 0 || (JSON.parse(r.stdout) as { ifname: string }[]).every((l) => l.ifname === 'lo');
  };
  const leaks = namedNetns().filter((n) => /^cni-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(n) && !before.has(n))
    .filter((n) => !inUse.has(statSync(join('/run/netns', n)).ino) && onlyLo(n));
  report(t, 'runtime netns made during the run', leaks, (n) => `netns ${n} (made during this run, lo only, no process in it)`, (n) => shOk('ip', ['netns', 'del', n]));
});

// In the root netns and in the named ones that are not test netns (those went as a whole above).
t.test('network devices', async (t) => {
  const where = [undefined, ...namedNetns()];
  const leaks = where.flatMap((ns) => {
    const links = JSON.parse(shOk('ip', [...(ns ? ['-n', ns] : []), '-j', 'link', 'show'])) as { ifname: string }[];
    return links.filter((l) => l.ifname.startsWith(DEV_PREFIX)).map((l) => ({ ns, dev: l.ifname }));
  });
  report(t, 'test device', leaks, (l) => `device ${l.dev} in ${l.ns ? `netns ${l.ns}` : 'the root netns'}`, (l) => {
    // Deleting one end of a veth pair deletes the other end too.
    sh('ip', [...(l.ns ? ['-n', l.ns] : []), 'link', 'del', l.dev]);
  });
});

t.test('mounts', async (t) => {
  // Newest first, so that mounts on top of others go first.
  const leaks = mountPoints().filter((m) => m.includes('oci-netdev')).reverse();
  report(t, 'oci-netdev mount', leaks, (m) => `mount ${m}`, (m) => shOk('umount', ['--lazy', m]));
});

t.test('files', async (t) => {
  const leaks = runDirs().flatMap((d) => listDir(d).map((n) => join(d, n)));
  report(t, 'test file', leaks, (f) => `file ${f}`, (f) => rmSync(f, { recursive: true, force: true }));
  for (const d of runDirs()) rmSync(d, { recursive: true });
});
