// A short fuzz campaign over the state, config.json, annotation, netDevices and policy parsers
// (test/fuzz/parsers.ts); `make fuzz` runs the long one. Only ConfigError may come out, on one
// line, and a document over its size limit must be refused for its size.
import t from 'tap';
import { DEFAULT_SEED, describe, runCampaign } from '../fuzz/campaign';
import { SELFTEST_CASES } from '../fuzz/selftest';

const seed = Number(process.env.OCI_NETDEV_FUZZ_SEED ?? DEFAULT_SEED);

t.test(`short campaign: 3000 documents from seed ${seed}`, async (t) => {
  const r = await runCampaign({ target: 'parsers', seed, iterations: 3000, stallMs: 30_000 });
  t.same(r.findings.map(describe), [], 'no findings');
  for (const doc of ['state', 'state on stdin', 'config.json', 'annotation', 'netDevices', 'policy', 'policy file']) {
    t.ok((r.stats[`${doc}: ConfigError`] ?? 0) > 20, `${doc}: refusals (${r.stats[`${doc}: ConfigError`]})`);
    t.ok((r.stats[`${doc}: accepted`] ?? 0) > 5, `${doc}: and documents that pass (${r.stats[`${doc}: accepted`]})`);
  }
});

t.test('the harness catches what it must: untyped errors, slow cases, endless loops, unbounded allocation', async (t) => {
  const r = await runCampaign({ target: 'selftest', seed, iterations: 12, stallMs: 4000, caseLimitMs: 200, maxHeapMb: 64 });
  const found = Object.fromEntries(r.findings.map((f) => [f.index, f.kind]));
  t.same(found, {
    [SELFTEST_CASES.untyped]: 'untyped-error',
    [SELFTEST_CASES.slow]: 'slow',
    [SELFTEST_CASES.loop]: 'stall',
    [SELFTEST_CASES.oom]: 'out-of-memory',
  }, 'each misbehaving case is a finding, under its own case number');
  t.equal(r.passed, 8, 'the other cases ran, also after a stall and a crash');
});
