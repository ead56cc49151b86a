import t, { Test } from 'tap';
import { join } from 'node:path';
import { REPO_ROOT, sh } from '../helpers/sandbox';

const SCRIPT = join(REPO_ROOT, 'scripts/tap-summary.mjs');

function summarize(t: Test, input: string): { status: number | null; lines: string[] } {
  const r = sh('node', [SCRIPT], { input });
  t.equal(r.stdout.slice(0, input.length), input, 'passes the stream through unchanged');
  return { status: r.status, lines: r.stdout.trimEnd().split('\n') };
}

// Shaped like `tap --reporter=tap` output: a file with nested subtests, YAML diagnostics (one
// quoting TAP-looking source), skip and todo, a timed-out subtest whose only failure is its own
// summary line, a file that crashed before any test point, and a file that passed.
const RUN = `TAP version 14
1..3
# Subtest: dist/test/a.test.js
    # Subtest: group
        ok 1 - one
        not ok 2 - two
          ---
          source: |
            ok 9 - not a point
            not ok 10 - nor this
          ...
        
        # Subtest: inner
            ok 1 - x
            ok 2 - y # SKIP not here
            not ok 3 - z # TODO later
            1..3
        ok 3 - inner # time=4.3ms
        
        ok 4 - skipped subtest # SKIP reason
        1..4
    not ok 1 - group # time=33.2ms
      ---
      at:
        fileName: dist/test/a.test.js
      ...
    
    # Subtest: slow
        ok 1 - before
        1..1
    not ok 2 - slow # time=600000ms
      ---
      timeout: 600000
      ...
    
    1..2
not ok 1 - dist/test/a.test.js # time=62.1ms

# Subtest: dist/test/b.test.js
    1..0 # no tests found
not ok 2 - dist/test/b.test.js # time=951.5ms
  ---
  exitCode: 3
  ...

# Subtest: dist/test/c.test.js
    ok 1 - fine \\# SKIP is only in the name
    1..1
ok 3 - dist/test/c.test.js # time=5.0ms

# { total: 9, pass: 4, fail: 3, todo: 1, skip: 2 }
# time=3413.9ms`;

t.test('counts leaf points, and failed subtests without a failing child', async (t) => {
  const { status, lines } = summarize(t, RUN + '\n');
  t.equal(lines.at(-1), '4 passed, 3 failed, 3 skipped');
  t.equal(status, 1);
});

t.test('a passing run exits 0 and says nothing about skips', async (t) => {
  const { status, lines } = summarize(t, 'TAP version 14\n1..2\nok 1 - a\nok 2 - b\n');
  t.equal(lines.at(-1), '2 passed, 0 failed');
  t.equal(status, 0);
});

t.test('adds up concatenated runs, even when one lacks its last newline', async (t) => {
  const { status, lines } = summarize(t, `${RUN}TAP version 14\n1..1\nok 1 - leak check\n`);
  t.equal(lines.at(-1), '5 passed, 3 failed, 3 skipped');
  t.equal(status, 1);
});

t.test('a run cut short of its plan fails', async (t) => {
  const { status, lines } = summarize(t, 'TAP version 14\n1..3\nok 1 - a\n');
  t.equal(lines.at(-2), '# tap-summary: planned 3 top-level tests, saw 1');
  t.equal(lines.at(-1), '1 passed, 1 failed');
  t.equal(status, 1);
});

t.test('a bail out fails', async (t) => {
  const { status, lines } = summarize(t, 'TAP version 14\n1..2\nok 1 - a\nBail out! no runtime\n');
  t.equal(lines.at(-1), '1 passed, 2 failed');
  t.equal(status, 1);
});

t.test('no test points at all fails', async (t) => {
  const { status, lines } = summarize(t, '');
  t.equal(lines.at(-1), '0 passed, 0 failed');
  t.equal(status, 1);
});
