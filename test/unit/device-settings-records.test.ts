// The journal's records of a device's link and ethtool settings (src/state/journal-records.ts) and their
// converters (src/apply/convert-records.ts): a journal that holds them is valid against
// spec/journal.schema.json, loads, and gives back the very settings recorded; one written before
// they were recorded (test/fixtures/journal-v2.json) still loads, without them.
import t from 'tap';
import type { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ethtoolRecord, ethtoolSettings, linkSettingsOf, linkSettingsRecord } from '../../src/apply/convert-records';
import type { EthtoolSettings } from '../../src/netlink/ethtool';
import type { LinkSettings } from '../../src/netlink/link';
import { encodeJournal, Journal, StateDir } from '../../src/state/statedir';
import { REPO_ROOT } from '../helpers/sandbox';

const fixtureLine = fs.readFileSync(path.join(REPO_ROOT, 'test/fixtures/journal-v2.json'), 'utf8');
const fixture = (JSON.parse(fixtureLine) as { journal: Journal }).journal;

/** Every field set, as a NIC would report them. */
const link: LinkSettings = {
  flags: 0x1000, txqlen: 1000, linkMode: 0, broadcast: 'ff:ff:ff:ff:ff:ff', gsoMaxSize: 65536, gsoMaxSegs: 65535,
  groMaxSize: 65536, gsoIpv4MaxSize: 65536, groIpv4MaxSize: 65536, protoDown: false, protoDownReason: 4, xdp: { drv: 7 },
};
const ethtool: EthtoolSettings = {
  features: { wanted: { 'rx-gro': true, 'tx-nocache-copy': false }, active: { 'rx-gro': true, 'tx-nocache-copy': false } },
  linkInfo: { port: 0, phyAddress: 0, mdixControl: 0 }, rings: { rx: 512, tx: 512 }, channels: { rx: 4, tx: 2 },
  coalesce: { rxUsecs: 50, adaptiveRx: 1 }, pause: { autoneg: 1, rx: 1, tx: 0 }, eee: { enabled: 0 }, module: { powerModePolicy: 1 },
  messages: { drv: true }, wakeOnLan: { magic: true, phy: false }, privateFlags: { 'legacy-rx': false },
};

function store(t: Test, line: string, id: string): Journal | null {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-settings-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = new StateDir(root);
  dir.lockContainer(id).release();
  fs.writeFileSync(path.join(dir.containerDir(id), 'journal.json'), line, { mode: 0o600 });
  return dir.readJournal(id);
}

t.test('link and ethtool settings go into the journal, are valid against its schema, and come back the same', async (t) => {
  const journal = structuredClone(fixture);
  const host = journal.plan.devices.find((d) => d.kind === 'host');
  if (!host || host.kind !== 'host' || !host.original.state) throw new Error('the fixture has a host device with its state');
  host.original.state = { ...host.original.state, link: linkSettingsRecord(link), ethtool: ethtoolRecord(ethtool) };
  const line = encodeJournal(journal).toString('utf8');
  t.match(line, /^\{"version":2,/, 'the journal version stays 2');
  const loaded = store(t, line, journal.containerId);
  t.ok(loaded, 'it loads: version 2, checksum and schema hold');
  const state = loaded!.plan.devices.find((d) => d.kind === 'host' && d.key === host.key);
  const back = state?.kind === 'host' ? state.original.state : undefined;
  t.same(back?.link && linkSettingsOf(back.link), link, 'the link settings as recorded');
  t.same(back?.ethtool && ethtoolSettings(back.ethtool), ethtool, 'the ethtool settings as recorded');
});

t.test('a journal written before link and ethtool settings were recorded loads without them', async (t) => {
  const loaded = store(t, fixtureLine, fixture.containerId);
  t.ok(loaded, 'it loads');
  const states = loaded!.plan.devices.flatMap((d) => (d.kind === 'host' && d.original.state ? [d.original.state] : []));
  t.ok(states.length > 0, 'with the states of its host devices');
  t.ok(states.every((s) => s.link === undefined && s.ethtool === undefined), 'and no link or ethtool settings: nothing of them is restored');
});

t.test('the converters leave absent what the kernel did not report', async (t) => {
  const bare: LinkSettings = { flags: 0, txqlen: 0, xdp: {} };
  t.same(linkSettingsRecord(bare), { flags: 0, txqlen: 0, xdp: {} }, 'no undefined fields in the record');
  t.same(ethtoolRecord({}), {}, 'a driver that reports nothing records nothing');
});
