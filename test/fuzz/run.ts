// `make fuzz`: a long campaign over every target from a fixed seed, or one case replayed.
//   node dist/test/fuzz/run.js [--seed N] [--iterations N] [--target netlink|parsers]
//   node dist/test/fuzz/run.js --target T --seed N --case I     replay one case in this process
// Exits 1 when there is any finding.
import { DEFAULT_SEED, describe, runCampaign } from './campaign';
import { Rng } from './prng';
import { CAMPAIGN_TARGETS, targets } from './targets';

const DEFAULT_ITERATIONS: Record<string, number> = { netlink: 1_000_000, parsers: 100_000 };

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const seed = Number(option('seed') ?? DEFAULT_SEED);
  const chosen = option('target');
  const names = chosen ? [chosen] : CAMPAIGN_TARGETS;
  for (const n of names) if (!targets[n]) throw new Error(`unknown target ${n} (${Object.keys(targets).join(', ')})`);

  const replay = option('case');
  if (replay !== undefined) {
    const target = targets[names[0]];
    target.setup?.();
    try {
      const r = target.runCase(Rng.forCase(seed, Number(replay)), Number(replay));
      console.log(JSON.stringify(r, null, 2));
      return r.ok ? 0 : 1;
    } finally {
      target.teardown?.();
    }
  }

  let failed = false;
  for (const name of names) {
    const iterations = Number(option('iterations') ?? DEFAULT_ITERATIONS[name]);
    let shown = 0;
    const r = await runCampaign({
      target: name, seed, iterations,
      onProgress: (i) => {
        if (i - shown >= iterations / 10) {
          shown = i;
          process.stderr.write(`fuzz ${name}: ${i}/${iterations}\n`);
        }
      },
    });
    const outcomes = Object.entries(r.stats).sort().map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(`fuzz ${name}: seed ${seed}, ${iterations} cases in ${(r.ms / 1000).toFixed(1)} s, ${r.findings.length} finding(s); ${outcomes}`);
    for (const f of r.findings) console.log(describe(f));
    if (r.findings.length) failed = true;
  }
  return failed ? 1 : 0;
}

main().then((code) => (process.exitCode = code), (err) => {
  console.error(`fuzz: ${(err as Error).message}`);
  process.exitCode = 2;
});
