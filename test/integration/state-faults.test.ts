// Faults of the state dir (issue 9): a full file system at any moment, and other containers'
// journals that are truncated, a FIFO or a symbolic link. Nothing may be lost and nothing may be
// reported done that is not. The hooks run as the engine called in this test process with a
// throwaway netns as its host namespace (gc and status through the CLI in that netns); veth ends
// stand in for NICs.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { encodeId } from '../../src/state/statedir';
import { allHome, bundleFor, createRuntime, creating, hook, hostNic, pinsIn, stopped } from '../helpers/host';
import { uniqueId, uniqueName } from '../helpers/names';
import { cli, makeRig, Rig, stateEntries } from '../helpers/netdevices';
import { addAddress, netnsPath, NsSnapshot, settledTo, shOk, sleep, steady } from '../helpers/sandbox';

const PAGE = 4096;

/** A stand-in NIC in the simulated host, with an IPv4 and an IPv6 address. */
function addressedNic(w: Rig, i: number): string {
  const name = hostNic(w);
  addAddress(w.simhost, name, `10.91.${i}.1/24`, ['broadcast', '+']);
  addAddress(w.simhost, name, `2001:db8:91:${i.toString(16)}::1/64`, ['nodad']);
  return name;
}

/** A small tmpfs of `bytes`, mounted under a sandbox dir (teardown unmounts it); the state dir is inside. */
function smallFs(w: Rig, bytes: number): { mnt: string; stateDir: string } {
  const mnt = join(w.sb.tempDir('smallfs'), 'mnt');
  fs.mkdirSync(mnt);
  shOk('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', mnt]);
  return { mnt, stateDir: join(mnt, 'state') };
}

/** Makes `file` take `bytes`, or as much as fits; true when all of it fit. */
function fill(file: string, bytes: number): boolean {
  const fd = fs.openSync(file, 'w');
  try {
    const page = Buffer.alloc(PAGE, 0x55);
    for (let done = 0; done < bytes; done += PAGE) {
      try {
        fs.writeSync(fd, page, 0, Math.min(PAGE, bytes - done));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return false;
        throw err;
      }
    }
    return true;
  } finally {
    fs.closeSync(fd);
  }
}


/** 8 moved NICs with addresses and 2 created veths, and the host and container as they were. */
async function tenDevices(w: Rig): Promise<{ bundle: string; before: NsSnapshot; ctBefore: NsSnapshot }> {
  const nics = Array.from({ length: 8 }, (_, i) => addressedNic(w, i));
  const veths = [0, 1].map(() => uniqueName('veth'));
  const netDevices = Object.fromEntries([
    ...nics.map((n) => [n, { name: uniqueName('c') }]),
    ...veths.map((v, i) => [v, { type: 'veth', name: `eth${i + 10}`, addresses: [`10.92.${i}.2/24`] }]),
  ]);
  const bundle = bundleFor(w, netDevices);
  return { bundle, before: await steady(w.simhost), ctBefore: await steady(w.ctr) };
}

t.test('the state dir full at every level from empty to full: createRuntime fails with nothing changed, or poststop restores everything', async (t) => {
  const w = makeRig(t, { inProcess: true });
  // 48 levels of 4 pages: room for the journal's reservation (2 x 4 times the first journal, which
  // records each device's link and ethtool settings too) in the first part, none at the end.
  const { mnt, stateDir } = smallFs(w, 768 * 1024);
  const filler = join(mnt, 'filler');
  const { bundle, before, ctBefore } = await tenDevices(w);
  const outcomes = { attached: 0, refused: 0 };
  for (let pages = 0; ; pages += 4) {
    const fits = fill(filler, pages * PAGE);
    const level = fits ? `${pages} pages filled` : 'full';
    const id = uniqueId('ctr');
    const r = hook(w, 'create-runtime', creating(id, bundle), stateDir);
    if (r.status !== 0) {
      outcomes.refused++;
      t.equal(r.stderr.trimEnd().split('\n').length, 1, `${level}: create-runtime fails with one line`, { stderr: r.stderr });
      t.match(r.stderr, /cannot reserve space for the journal.*ENOSPC/, `${level}: saying the journal has no room`);
    } else {
      outcomes.attached++;
      t.equal(Object.keys(await steady(w.ctr)).length, 11, `${level}: create-runtime gave the container its 10 devices`);
      fs.rmSync(filler);
      const stop = hook(w, 'poststop', stopped(id, bundle), stateDir);
      t.equal(stop.status, 0, `${level}: poststop, with space freed, exits 0`, { stderr: stop.stderr });
    }
    t.same(await settledTo(w.simhost, before), before, `${level}: the host is as before`);
    t.same(await settledTo(w.ctr, ctBefore), ctBefore, `${level}: the container holds nothing of ours`);
    t.same(stateEntries(stateDir), [], `${level}: no state left`);
    t.same(pinsIn(stateDir), [], `${level}: no pin left`);
    if (!fits) break;
  }
  t.ok(outcomes.attached > 0 && outcomes.refused > 0, `both outcomes were seen (${outcomes.attached} attached, ${outcomes.refused} refused)`);
});

t.test('the state dir full at poststop: poststop restores everything and exits 0', async (t) => {
  const w = makeRig(t, { inProcess: true });
  // Room for a journal of ten devices with their neighbours, nexthops and sysctls, and its spare.
  const { mnt, stateDir } = smallFs(w, 512 * 1024);
  const { bundle, before, ctBefore } = await tenDevices(w);
  const id = uniqueId('ctr');
  const r = hook(w, 'create-runtime', creating(id, bundle), stateDir);
  t.equal(r.status, 0, 'create-runtime exits 0', { stderr: r.stderr });
  t.notOk(fill(join(mnt, 'filler'), 512 * 1024), 'the file system is now full');

  const stop = hook(w, 'poststop', stopped(id, bundle), stateDir);
  t.equal(stop.status, 0, 'poststop exits 0', { stderr: stop.stderr });
  await allHome(t, { ...w, stateDir }, before, ctBefore);
});

t.test('truncated, FIFO and symlinked journals of other containers: createRuntime goes on, gc restores the rest and names each', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const gcRun = () => cli(w, ['gc']);
  /** A container holding one NIC; no pid in its state, so gc sees it as gone. */
  const attached = (role: string) => {
    const ct = w.sb.createNetns('ct');
    const dev = hostNic(w);
    const id = uniqueId(role);
    const bundle = bundleFor(w, { [dev]: {} }, netnsPath(ct));
    const r = createRuntime(w, id, bundle);
    t.equal(r.status, 0, `create-runtime of ${role}`, { stderr: r.stderr });
    return { id, dev, journal: join(w.stateDir, encodeId(id), 'journal.json') };
  };
  const good = [attached('good'), attached('good')];
  const truncated = attached('trunc');
  const fifo = attached('fifo');
  const link = attached('link');
  const whole = fs.readFileSync(truncated.journal);
  fs.writeFileSync(truncated.journal, whole.subarray(0, whole.indexOf('\n') >> 1));
  fs.rmSync(fifo.journal);
  shOk('mkfifo', ['-m', '0600', fifo.journal]);
  // A link to a perfectly good journal (its own, moved aside) is still refused.
  fs.renameSync(link.journal, `${link.journal}.real`);
  fs.symlinkSync(`${link.journal}.real`, link.journal);
  const bad = [truncated, fifo, link];

  const fresh = attached('fresh');
  const taken = bundleFor(w, { [truncated.dev]: {} });
  // Its claims file, written with the journal, still says who holds the device.
  const held = createRuntime(w, uniqueId('late'), taken);
  t.not(held.status, 0, 'asking for a device held by a container whose journal is torn fails');
  t.match(held.stderr, new RegExp(`^oci-netdev: device ${truncated.dev} is held by container ${truncated.id}\n$`), 'naming the holder, from its claims file');
  // Without it (lost, or a journal of an older oci-netdev), nobody can say.
  for (const b of [truncated, fifo, link]) fs.rmSync(join(w.stateDir, encodeId(b.id), 'claims.json'));
  const refused = createRuntime(w, uniqueId('late'), taken);
  t.not(refused.status, 0, 'asking for a device a bad journal may hold fails');
  t.equal(refused.stderr.trimEnd().split('\n').length, 1, 'with one line', { stderr: refused.stderr });
  t.match(refused.stderr, new RegExp(`${truncated.dev}: no such device.*may be held by containers .*${truncated.id}.*whose journals cannot be read`),
    'saying it may be held by a container whose journal cannot be read');

  const st = cli(w, ['status']);
  t.equal(st.status, 0, 'status exits 0', { stderr: st.stderr });
  for (const b of bad) t.match(st.stdout, new RegExp(`^${b.id} \\(unreadable: journal of container ${b.id} .*\\)$`, 'm'), `status lists ${b.id} as unreadable`);
  for (const g of [...good, fresh]) t.match(st.stdout, new RegExp(`^${g.id} \\(attached; no pid; \\d+s old; bundle /\\S+\\)$`, 'm'), `status lists ${g.id}`);

  const gc = gcRun();
  t.equal(gc.status, 1, 'gc exits 1: something is left undone', { stdout: gc.stdout, stderr: gc.stderr });
  t.equal(gc.stderr, '', 'gc finishes without an error of its own');
  for (const g of [...good, fresh]) t.match(gc.stdout, new RegExp(`^${g.id}: restored \\(container is gone\\)$`, 'm'), `gc restores ${g.id}`);
  t.match(gc.stdout, new RegExp(`^${truncated.id}: failed \\(journal of container ${truncated.id} \\S+ is corrupt: .*\\)$`, 'm'), 'names the truncated journal');
  t.match(gc.stdout, new RegExp(`^${fifo.id}: failed \\(journal of container ${fifo.id} \\S+: is not a regular file\\)$`, 'm'), 'names the FIFO');
  t.match(gc.stdout, new RegExp(`^${link.id}: failed \\(journal of container ${link.id} \\S+: is a symbolic link\\)$`, 'm'), 'names the symlink');
  t.equal(gc.stdout.trimEnd().split('\n').length, 7, 'one line per container, and the summary');
  t.match(gc.stdout, /^gc: 3 restored, 0 kept, 3 failed$/m, 'the summary counts them');
  const host = await steady(w.simhost);
  for (const g of [...good, fresh]) t.ok(g.dev in host, `${g.dev} is back on the host`);
  for (const b of bad) t.notOk(b.dev in host, `${b.dev} stays where its journal says nothing about it`);
  for (const b of bad) t.ok(fs.existsSync(join(w.stateDir, encodeId(b.id))), `the state of ${b.id} is kept`);
});

/** A zombie: the child of a shell that execs into sleep, which never reaps it. */
async function zombie(t: Test): Promise<number> {
  const parent = spawn('sh', ['-c', 'true & exec sleep 120'], { stdio: 'ignore' });
  t.teardown(() => { parent.kill('SIGKILL'); });
  for (let i = 0; i < 100; i++) {
    const children = fs.readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim();
    if (children) {
      const pid = Number(children.split(' ')[0]);
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return pid;
    }
    await sleep(20);
  }
  throw new Error('no zombie appeared');
}

/** A pid that no process has now. */
function unusedPid(): number {
  const max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let pid = max - 1; ; pid--) if (!fs.existsSync(`/proc/${pid}`)) return pid;
}

t.test('gc takes a container whose init is a zombie, or whose pid never existed, for gone', async (t) => {
  const w = makeRig(t, { inProcess: true });
  const dead = { zombie: await zombie(t), absent: unusedPid() };
  const containers = Object.entries(dead).map(([role, pid]) => {
    const dev = hostNic(w);
    const netDevices = { [dev]: {} };
    return { role, pid, id: uniqueId(role), bundle: bundleFor(w, netDevices, netnsPath(w.sb.createNetns('ct'))) };
  });
  const ids = containers.map((c) => c.id);
  const before = await steady(w.simhost);
  for (const c of containers) {
    const r = createRuntime(w, c.id, c.bundle, { pid: c.pid });
    t.equal(r.status, 0, `create-runtime of a container whose pid is ${c.role}`, { stderr: r.stderr });
  }
  const gc = cli(w, ['gc']);
  t.equal(gc.status, 0, 'gc exits 0', { stdout: gc.stdout, stderr: gc.stderr });
  for (const id of ids) t.match(gc.stdout, new RegExp(`^${id}: restored \\(container is gone\\)$`, 'm'), `${id} is restored`);
  t.same(await settledTo(w.simhost, before), before, 'the host is as before');
  t.same(stateEntries(w.stateDir), [], 'no state left');
});
