// A short fuzz campaign over the rtnetlink decoder (test/fuzz/netlink.ts); `make fuzz` runs the
// long one. Every case must decode or throw a typed error, with bounded output, in bounded time.
import t from 'tap';
import { DEFAULT_SEED, describe, runCampaign } from '../fuzz/campaign';
import { Rng } from '../fuzz/prng';
import { decode, generate, lengthFields, wellFormed } from '../fuzz/netlink';
import { decodeMessages } from '../../src/netlink/codec';

const seed = Number(process.env.OCI_NETDEV_FUZZ_SEED ?? DEFAULT_SEED);

t.test('the generator makes well-formed replies the decoder reads, and each case is reproducible', async (t) => {
  const bad: number[] = [];
  let fields = 0;
  for (let i = 0; i < 200; i++) {
    const valid = wellFormed(Rng.forCase(seed, i));
    try {
      decodeMessages(valid);
    } catch {
      bad.push(i);
    }
    fields += lengthFields(valid).length;
  }
  t.same(bad, [], '200 well-formed datagrams split into messages');
  t.ok(fields > 200 * 4, `with message and attribute length fields to lie in (${fields})`);
  t.same(generate(Rng.forCase(seed, 42)), generate(Rng.forCase(seed, 42)), 'same seed and case, same bytes');
  t.notSame(generate(Rng.forCase(seed, 42)), generate(Rng.forCase(seed, 43)));
  const decoded = decode(wellFormed(Rng.forCase(seed, 7)));
  t.ok(Array.isArray(decoded) && decoded.length >= 4, 'decode returns the messages, routes, nexthops and default routes');
});

t.test(`short campaign: 20000 datagrams from seed ${seed}`, async (t) => {
  const r = await runCampaign({ target: 'netlink', seed, iterations: 20_000, stallMs: 30_000 });
  t.same(r.findings.map(describe), [], 'no findings');
  t.ok((r.stats.DecodeError ?? 0) > 1000, `truncated, misaligned and lying replies raise DecodeError (${r.stats.DecodeError})`);
  t.ok((r.stats.decoded ?? 0) > 500, `and many still decode (${r.stats.decoded})`);
  t.ok((r.stats.NetlinkError ?? 0) > 0, `error replies become NetlinkError (${r.stats.NetlinkError})`);
});
