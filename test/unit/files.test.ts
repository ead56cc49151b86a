// src/state/files.ts and the journal store on real files: refusals, bounded reads, complete and
// atomic writes, and space reserved ahead. Short writes and a full file system come from a small
// tmpfs (root only, like every test here).
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ConfigError, StateError } from '../../src/errors';
import { preallocate, readRegularFile, replaceFile, writeAll } from '../../src/fsio/files';
import { claimRecordOf, encodeJournal, Journal, StateDir } from '../../src/state/statedir';
import { sha256Hex } from '../../src/state/sha256';
import type { AddressRecord } from '../../src/state/journal-records';
import { Sandbox, shOk } from '../helpers/sandbox';

const PAGE = 4096;

/** A tmpfs of `bytes` under a sandbox dir; teardown unmounts it. */
function smallFs(t: Test, bytes: number): string {
  const mnt = join(new Sandbox(t).tempDir('files'), 'mnt');
  fs.mkdirSync(mnt);
  shOk('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', mnt]);
  return mnt;
}

/** Fills the file system holding `dir` until it refuses more. */
function fillUp(dir: string): void {
  const fd = fs.openSync(join(dir, 'filler'), 'w');
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(PAGE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

t.test('readRegularFile refuses links, FIFOs, folders, big files and foreign owners, with the caller\'s message', async (t) => {
  const dir = new Sandbox(t).tempDir('read');
  const file = join(dir, 'f.json');
  fs.writeFileSync(file, '{"a":1}', { mode: 0o644 });
  const rules = { where: 'thing', maxBytes: 64 };
  t.equal(readRegularFile(file, rules).toString(), '{"a":1}');
  t.equal(readRegularFile(join(dir, 'absent'), { ...rules, missingOk: true }), null, 'missingOk: null');
  t.throws(() => readRegularFile(join(dir, 'absent'), rules), { constructor: ConfigError, message: /^thing: cannot read: ENOENT/ });

  fs.symlinkSync(file, join(dir, 'link'));
  t.throws(() => readRegularFile(join(dir, 'link'), { ...rules, symlinkHint: '; give the file itself' }),
    { message: 'thing: is a symbolic link; give the file itself' });
  t.equal(readRegularFile(join(dir, 'link'), { ...rules, follow: true }).toString(), '{"a":1}', 'followed when asked');

  shOk('mkfifo', [join(dir, 'fifo')]);
  t.throws(() => readRegularFile(join(dir, 'fifo'), { ...rules, error: StateError }),
    { constructor: StateError, message: 'thing: is not a regular file' }, 'a FIFO is refused, not waited on');
  t.throws(() => readRegularFile(dir, rules), { message: 'thing: is not a regular file' });

  fs.writeFileSync(join(dir, 'big'), 'x'.repeat(65));
  t.throws(() => readRegularFile(join(dir, 'big'), rules), { message: /^thing: larger than 0.0625 KiB \(65 bytes\)$/ });

  fs.chownSync(file, 65534, 65534);
  t.throws(() => readRegularFile(file, { ...rules, owner: 'self' }), { message: 'thing: is owned by uid 65534, not by us (uid 0)' });
  t.throws(() => readRegularFile(file, { ...rules, owner: 'root-or-self' }), { message: "thing: is owned by uid 65534; it must be root's" });
  fs.chownSync(file, 0, 0);
  fs.chmodSync(file, 0o664);
  t.throws(() => readRegularFile(file, { ...rules, ownerWritesOnly: true }),
    { message: 'thing: is writable by group or others (mode 0664); only its owner may write it' });
});

t.test('writeAll on a nearly full file system: the short write is finished or fails with ENOSPC, never silently cut', async (t) => {
  const mnt = smallFs(t, 16 * PAGE);
  const data = Buffer.alloc(20 * PAGE, 0x61);
  const raw = fs.openSync(join(mnt, 'raw'), 'w');
  const n = fs.writeSync(raw, data);
  fs.closeSync(raw);
  t.ok(n > 0 && n < data.length, `a plain write is cut short without an error (${n} of ${data.length} bytes)`);
  fs.rmSync(join(mnt, 'raw'));

  const fd = fs.openSync(join(mnt, 'all'), 'w');
  t.teardown(() => fs.closeSync(fd));
  t.throws(() => writeAll(fd, data), { code: 'ENOSPC' }, 'writeAll throws instead');
  fs.ftruncateSync(fd, 0);
  writeAll(fd, data.subarray(0, 8 * PAGE), 0);
  t.equal(fs.fstatSync(fd).size, 8 * PAGE, 'and writes all of what fits');
});

t.test('replaceFile is atomic: the old content stays when the new one does not fit, and no temp file is left', async (t) => {
  const mnt = smallFs(t, 16 * PAGE);
  const file = join(mnt, 'config.json');
  replaceFile(file, 'old\n', 0o644);
  t.equal(fs.readFileSync(file, 'utf8'), 'old\n');
  t.equal(fs.statSync(file).mode & 0o777, 0o644, 'with the mode asked for');
  // A link planted at the temp name is replaced, not written through.
  const victim = join(mnt, 'victim');
  fs.writeFileSync(victim, 'precious');
  fs.symlinkSync(victim, `${file}.oci-netdev.tmp`);
  replaceFile(file, 'new\n', 0o644);
  t.equal(fs.readFileSync(file, 'utf8'), 'new\n');
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious', 'the link target is untouched');

  t.throws(() => replaceFile(file, Buffer.alloc(32 * PAGE), 0o644), { code: 'ENOSPC' });
  t.equal(fs.readFileSync(file, 'utf8'), 'new\n', 'the file is as it was');
  t.same(fs.readdirSync(mnt).sort(), ['config.json', 'victim'], 'no temp file left');
});

t.test('space preallocated before the file system fills can still be written', async (t) => {
  const mnt = smallFs(t, 16 * PAGE);
  const fd = fs.openSync(join(mnt, 'reserved'), 'w+');
  t.teardown(() => fs.closeSync(fd));
  preallocate(fd, 4 * PAGE, 'test');
  fillUp(mnt);
  t.throws(() => writeAll(fs.openSync(join(mnt, 'other'), 'w'), Buffer.alloc(PAGE)), { code: 'ENOSPC' }, 'the file system is full');
  writeAll(fd, Buffer.alloc(4 * PAGE, 0x62), 0);
  t.equal(fs.readFileSync(join(mnt, 'reserved')).toString('latin1'), 'b'.repeat(4 * PAGE), 'the reserved range took the write');
});

const journal = (id: string): Journal => ({
  containerId: id, phase: 'attaching', createdAt: '2026-01-01T00:00:00.000Z', netnsPath: '/x', netnsDev: 1, netnsIno: 2,
  plan: { group: 7, devices: [{
    key: 'eth9', kind: 'host', targetName: 'net0', identity: { kind: null, permanentMac: null, parentBus: null, parentDev: null },
    containerIndex: 9, adopted: false, containerAddresses: [],
    original: { index: 9, name: 'eth9', mtu: 1500, mac: null, up: false, alias: '', group: 0, altNames: [], addresses: [] },
  }], steps: [{ device: 'eth9', do: 'moveIn', undo: 'moveOut' }] },
  started: 0,
});

t.test('the journal: reserved at creation, written into its spare and swapped, readable after the file system fills', async (t) => {
  const mnt = smallFs(t, 64 * PAGE);
  const store = new StateDir(join(mnt, 'state'));
  const lock = store.lockContainer('c1');
  t.teardown(() => lock.release());
  const j = journal('c1');
  store.createJournal(j);
  const dir = store.containerDir('c1');
  t.same(fs.readdirSync(dir).sort(), ['claims.json', 'journal.json', 'journal.next', 'lock'], 'the journal, its spare and its claims');
  for (const name of ['journal.json', 'journal.next']) t.equal(fs.statSync(join(dir, name)).size, 16 * PAGE, `${name} holds the 64 KiB reserve`);
  t.same(store.readJournal('c1'), j);

  fillUp(mnt);
  const inodes = new Set<number>();
  for (let started = 1; started <= 5; started++) {
    store.writeJournal({ ...j, started, phase: 'detaching', plan: { ...j.plan, devices: [{ ...j.plan.devices[0], containerName: 'net0' }] } });
    t.equal(store.readJournal('c1')?.started, started, `write ${started} on a full file system`);
    inodes.add(fs.statSync(join(dir, 'journal.json')).ino);
  }
  t.equal(inodes.size, 2, 'the two reserved files take turns');

  // Beyond its reserve a journal needs space, and says so without harm to the old one.
  const huge = { ...j, createdAt: 'x'.repeat(20 * PAGE) };
  t.throws(() => store.writeJournal(huge), { constructor: StateError, message: /^cannot write the journal of container c1: fallocate .*ENOSPC/ });
  t.equal(store.readJournal('c1')?.started, 5, 'the journal is unchanged');

  const other = new StateDir(join(mnt, 'state'));
  other.lockContainer('c2').release();
  t.throws(() => other.createJournal(journal('c2')), { constructor: StateError, message: /^cannot reserve space for the journal of container c2 in \S+: fallocate .*ENOSPC/ });
  t.same(fs.readdirSync(other.containerDir('c2')), ['lock'], 'a failed reservation leaves no journal');
});

/** A journal as the release before version 2 wrote it (commit a3e6bd8): a moved NIC and a veth, hook killed after the NIC's move. */
const V1_JOURNAL = {
  containerId: 'c1', phase: 'attaching', createdAt: '2026-01-01T00:00:00.000Z', netnsPath: '/x', netnsDev: 1, netnsIno: 2,
  plan: {
    group: 7,
    devices: [
      {
        key: 'eth9', kind: 'host', targetName: 'net0', marker: 'oci-netdev:7:eth9', adopted: false, containerName: 'net0', mtu: 1400,
        original: { index: 9, name: 'eth9', mtu: 1500, mac: '02:00:00:00:00:09', up: true, alias: 'up',
          addresses: [{ index: 9, family: 2, prefixlen: 24, flags: 128, scope: 0, address: '10.0.0.9', local: '10.0.0.9', label: 'eth9', preferredLifetime: 4294967295, validLifetime: 4294967295 }] },
        containerAddresses: [{ index: 9, family: 2, prefixlen: 24, flags: 128, scope: 0, address: '10.0.0.9', local: '10.0.0.9', label: 'eth9', preferredLifetime: 4294967295, validLifetime: 4294967295 }],
      },
      { key: 'vh0', kind: 'veth', targetName: 'net1', marker: 'oci-netdev:7:vh0', adopted: false, tempName: 'odt000000071', containerAddresses: [] },
    ],
    steps: [
      { device: 'eth9', do: 'mark', undo: 'unmark' }, { device: 'eth9', do: 'moveIn', undo: 'moveOut' }, { device: 'eth9', do: 'copyAddresses' },
      { device: 'eth9', do: 'configure' }, { device: 'vh0', do: 'createVeth', undo: 'deleteCreated' }, { device: 'vh0', do: 'renameInContainer' },
    ],
  },
  started: 2,
};

t.test('a version 1 journal is read in today\'s shape: its records marked for matching, mark folded into moveIn', async (t) => {
  const store = new StateDir(new Sandbox(t).tempDir('state'));
  const lock = store.lockContainer('c1');
  t.teardown(() => lock.release());
  fs.writeFileSync(join(store.containerDir('c1'), 'journal.json'), JSON.stringify({ version: 1, ...V1_JOURNAL }), { mode: 0o600 });
  const address = { family: 2, prefixlen: 24, flags: 128, scope: 0, address: '10.0.0.9', local: '10.0.0.9', label: 'eth9', preferredLifetime: 4294967295, validLifetime: 4294967295 };
  const unknown = { kind: null, permanentMac: null, parentBus: null, parentDev: null };
  t.same(store.readJournal('c1'), {
    containerId: 'c1', phase: 'attaching', createdAt: '2026-01-01T00:00:00.000Z', netnsPath: '/x', netnsDev: 1, netnsIno: 2,
    plan: {
      group: 7,
      devices: [
        {
          key: 'eth9', kind: 'host', targetName: 'net0', containerIndex: 0, adopted: false, containerAddresses: [address], mtu: 1400, containerName: 'net0',
          v1: { marker: 'oci-netdev:7:eth9' }, identity: unknown,
          original: { index: 9, name: 'eth9', mtu: 1500, mac: '02:00:00:00:00:09', up: true, alias: 'up', group: 0, altNames: [], addresses: [address] },
        },
        {
          key: 'vh0', kind: 'veth', targetName: 'net1', containerIndex: 0, adopted: false, containerAddresses: [], v1: { marker: 'oci-netdev:7:vh0' },
          tempName: 'odt000000071', hostIndex: 0, identity: { ...unknown, kind: 'veth', hostPeerIndex: 0 },
        },
      ],
      steps: [
        { device: 'eth9', do: 'moveIn', undo: 'moveOut' }, { device: 'eth9', do: 'copyAddresses' }, { device: 'eth9', do: 'configure' },
        { device: 'vh0', do: 'createVeth', undo: 'deleteCreated' }, { device: 'vh0', do: 'renameInContainer' },
      ],
    },
    started: 1,
  }, 'mark and moveIn begun: one step begun, moveIn, whose undo puts back what mark changed');
  t.same(store.scanClaims().claims.map((c) => c.hostNames), [['eth9', 'vh0']], 'its claims hold its devices');
});

t.test('a journal is refused, in one line naming it, when corrupt, of another version or off its schema', async (t) => {
  const store = new StateDir(new Sandbox(t).tempDir('state'));
  const lock = store.lockContainer('c1');
  t.teardown(() => lock.release());
  const file = join(store.containerDir('c1'), 'journal.json');
  const where = `journal of container c1 (${file})`;
  const put = (text: string | Buffer) => fs.writeFileSync(file, text, { mode: 0o600 });
  const good = encodeJournal(journal('c1'));

  put(Buffer.concat([good, Buffer.alloc(100)]));
  t.same(store.readJournal('c1'), journal('c1'), 'what follows the first line is ignored');
  put(good.subarray(0, 100));
  t.throws(() => store.readJournal('c1'), { message: new RegExp(`^${escape(where)} is corrupt: `) }, 'truncated');
  t.throws(() => store.readJournal('c1'), StateError, 'a StateError');
  put(good.toString().replace('"started":0', '"started":1'));
  t.throws(() => store.readJournal('c1'), { message: `${where} is corrupt: checksum mismatch` }, 'one changed value');
  put(JSON.stringify({ version: 1, ...V1_JOURNAL, plan: { ...V1_JOURNAL.plan, steps: [{ device: 'eth9', do: 'explode' }] } }));
  t.throws(() => store.readJournal('c1'), { message: /is invalid \(version 1\): journal.plan.steps\[0\].do: must be one of/ }, 'a version 1 journal off its schema');
  put('[]');
  t.throws(() => store.readJournal('c1'), { message: `${where} is corrupt: it has version none; this one reads versions 1 to 2` });
  const newer = `${where} was written by a newer oci-netdev`;
  const todo = ': run that release\'s oci-netdev gc, or upgrade to it';
  put(good.toString().replace('"version":2', '"version":3'));
  t.throws(() => store.readJournal('c1'), { message: `${newer} (journal version 3; this one reads versions 1 to 2)${todo}` }, 'a higher version: a newer release wrote it');
  const later = { ...journal('c1'), later: 1, plan: { ...journal('c1').plan, devices: [{ ...journal('c1').plan.devices[0], later: 2 }] } };
  put(encodeJournal(later));
  t.throws(() => store.readJournal('c1'), { message: `${newer} (its fields journal.later, journal.plan.devices[0].later are unknown here)${todo}` }, 'whole, with fields unknown here: a newer release wrote it');
  const { plan: _plan, ...noPlan } = journal('c1');
  put(encodeJournal(noPlan as Journal));
  t.throws(() => store.readJournal('c1'), { message: `${where} is invalid: journal.plan: is required` }, 'off the schema');
  put(encodeJournal({ ...journal('c1'), plan: { ...journal('c1').plan, steps: [{ device: 'eth9', do: 'explode' as 'moveIn' }] } }));
  t.throws(() => store.readJournal('c1'), { message: /is invalid: journal.plan.steps\[0\].do: must be one of moveIn, moveOut/ });
  put(encodeJournal({ ...journal('c1'), plan: { ...journal('c1').plan, devices: [{ ...journal('c1').plan.devices[0], identity: { x: 1 } } as never] } }));
  t.throws(() => store.readJournal('c1'), { message: /is invalid: journal.plan.devices\[0\].identity/ }, 'a device whose identity is off the schema');
  put(encodeJournal(journal('c2')));
  t.throws(() => store.readJournal('c1'), { message: `${where} is corrupt: it belongs to container "c2"` });
});

t.test('the claims record: every MAC and address the plan and the networks hold, on either side', async (t) => {
  const address = (ip: string, prefixlen: number): AddressRecord => ({
    family: ip.includes(':') ? 10 : 2, prefixlen, flags: 0, scope: 0, address: ip, preferredLifetime: 0, validLifetime: 0,
  });
  const base = journal('c1');
  const host = { ...base.plan.devices[0], mac: '02:00:00:00:00:0a' } as Journal['plan']['devices'][0];
  if (host.kind === 'host') host.original = { ...host.original, mac: '02:00:00:00:00:0b', addresses: [{ ...address('192.0.2.9', 24), local: '192.0.2.9' }] };
  const j: Journal = {
    ...base,
    plan: { ...base.plan, devices: [host, {
      key: 'vh0', kind: 'veth', targetName: 'eth1', identity: { kind: 'veth', permanentMac: null, parentBus: null, parentDev: null, hostPeerIndex: 20 },
      containerIndex: 21, adopted: false, tempName: 't0', hostIndex: 20, mac: '02:00:00:00:00:0c', hostMac: '02:00:00:00:00:0d',
      containerAddresses: [address('10.1.0.2', 24)], hostAddresses: [address('fd00::1', 64)],
    }] },
    networks: [{
      network: 'web', ifname: 'eth2', args: [['IP', '10.2.0.5,10.2.0.6'], ['MAC', '02:00:00:00:00:0E']], runtimeConfig: { ips: ['10.3.0.7/24'], mac: '02:00:00:00:00:0f' },
      config: {}, cniPath: [], cacheDir: '/x', state: 'pending',
    }],
  };
  const record = claimRecordOf(j);
  t.same(record.macs, ['02:00:00:00:00:0a', '02:00:00:00:00:0b', '02:00:00:00:00:0c', '02:00:00:00:00:0d', '02:00:00:00:00:0f', '02:00:00:00:00:0e']);
  t.same(record.addresses, ['192.0.2.9', '10.1.0.2', 'fd00::1', '10.3.0.7', '10.2.0.5', '10.2.0.6']);
});

t.test('the claims file: written with the journal, read by scanClaims; the journal decides when it is torn, forged, another\'s or missing', async (t) => {
  const store = new StateDir(new Sandbox(t).tempDir('state'));
  const lock = store.lockContainer('c1');
  t.teardown(() => lock.release());
  const j = journal('c1');
  store.createJournal(j);
  const older = { containerId: 'c1', group: 7, netnsDev: 1, netnsIno: 2, hostNames: ['eth9'], containerIndexes: [9], macvlanLowers: [] };
  const expected = { ...older, macs: [], addresses: [] };
  t.same(claimRecordOf(j), expected, 'the plan\'s claims');
  t.same(store.scanClaims(), { claims: [expected], bad: [] }, 'read back');

  const file = join(store.containerDir('c1'), 'claims.json');
  const good = fs.readFileSync(file, 'utf8');
  // Each of these must not be believed: the scan reads the journal instead and finds the same claims.
  const wrong: [string, string][] = [
    ['torn', good.slice(0, 40)],
    ['a name taken out without its checksum', good.replace('["eth9"]', '[]')],
    ['another container\'s', good.replace('"c1"', '"c2"')],
    ['empty', ''],
    // Whole, but without what this release adds: the journal knows the addresses and MACs.
    ["an older oci-netdev's, without macs and addresses", `{"sha256":"${sha256Hex(JSON.stringify(older))}","claims":${JSON.stringify(older)}}\n`],
  ];
  for (const [what, text] of wrong) {
    fs.writeFileSync(file, text);
    t.same(store.scanClaims(), { claims: [expected], bad: [] }, `${what}: the journal's claims`);
  }
  fs.rmSync(file);
  fs.symlinkSync('/etc/hostname', file);
  t.same(store.scanClaims(), { claims: [expected], bad: [] }, 'a link: the journal\'s claims');
  fs.rmSync(file);
  t.same(store.scanClaims(), { claims: [expected], bad: [] }, 'missing (a journal of an older oci-netdev): the journal\'s claims');

  // No journal, no claims, whatever the claims file says: a folder half removed holds nothing.
  fs.writeFileSync(file, good);
  fs.rmSync(join(store.containerDir('c1'), 'journal.json'));
  t.same(store.scanClaims(), { claims: [], bad: [] }, 'a claims file without its journal claims nothing');

  // A journal that cannot be read, with no claims file to stand for it, is named as bad.
  fs.rmSync(file);
  fs.writeFileSync(join(store.containerDir('c1'), 'journal.json'), 'garbage');
  const scan = store.scanClaims();
  t.same(scan.claims, [], 'no claims from a bad journal');
  t.match(scan.bad, [{ containerId: 'c1', reason: /is corrupt/ }], 'named as bad');
});

t.test('the claims file follows the journal when a step re-picks an ifindex the kernel refused (EBUSY), and is never older than it', async (t) => {
  const store = new StateDir(new Sandbox(t).tempDir('state'));
  const lock = store.lockContainer('c1');
  t.teardown(() => lock.release());
  const j = journal('c1');
  store.createJournal(j);
  // What apply's withChosenIndex does: another ifindex for the device, and the journal written.
  j.plan.devices[0].containerIndex = 0x12345;
  store.writeJournal(j);
  t.same(store.scanClaims().claims.map((c) => c.containerIndexes), [[0x12345]], 'the scan sees the index the journal now holds');
  const file = join(store.containerDir('c1'), 'claims.json');
  const inode = fs.statSync(file).ino;
  store.writeJournal({ ...j, started: 1 });
  t.equal(fs.statSync(file).ino, inode, 'a write that changes no claim leaves the claims file alone');
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
