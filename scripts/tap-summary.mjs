#!/usr/bin/env node
// Passes a TAP 14 stream (one or more concatenated `tap --reporter=tap` runs) from stdin to stdout
// and ends it with one line: `N passed, N failed` (and `, N skipped` when tests were skipped or
// todo). Counts leaf test points only. A subtest's own summary line counts only when it says
// something its children do not: `not ok` with no failing child (a timeout, a crashed file) is
// one failure, and a skipped subtest with no points inside is one skip. A bail out, or a run whose
// top-level plan does not match its top-level points, is a failure too.
// Exit status: 1 if anything failed or nothing was counted, else 0.
import { createInterface } from 'node:readline';

const counts = { passed: 0, failed: 0, skipped: 0 };
const total = () => counts.passed + counts.failed + counts.skipped;

/** Open subtests: the indent of their lines, and the counts when they opened. */
let frames = [];
/** The current run's top-level plan and points. */
let run = null;
/** While inside a YAML diagnostic block: the indent of its `...` line. */
let yamlEnd = null;
/** Indent of the last test point, where its YAML block would start. */
let lastPointIndent = null;

function endRun() {
  if (run && run.plan !== run.points) {
    counts.failed++;
    console.log(`# tap-summary: planned ${run.plan ?? 'no'} top-level tests, saw ${run.points}`);
  }
  run = null;
}

function openFrame(indent) {
  if (!frames.length || frames.at(-1).indent < indent) frames.push({ indent, failed: counts.failed, total: total() });
}

function point(indent, ok, directive) {
  openFrame(indent);
  let sub = null;
  while (frames.length && frames.at(-1).indent > indent) sub = frames.pop();
  if (indent === 0) {
    run ??= { plan: null, points: 0 };
    run.points++;
  }
  if (!sub) {
    if (directive) counts.skipped++;
    else counts[ok ? 'passed' : 'failed']++;
  } else if (!ok && !directive && counts.failed === sub.failed) counts.failed++;
  else if (directive && total() === sub.total) counts.skipped++;
}

function line(raw) {
  const indent = raw.length - raw.trimStart().length;
  const text = raw.trim();
  if (yamlEnd !== null) {
    if (indent === yamlEnd && text === '...') yamlEnd = null;
    return;
  }
  const isYamlStart = text === '---' && indent === lastPointIndent + 2;
  lastPointIndent = null;
  if (isYamlStart) {
    yamlEnd = indent;
    return;
  }
  let m;
  if (indent === 0 && /^TAP version \d+$/.test(text)) {
    endRun();
    frames = [];
    run = { plan: null, points: 0 };
  } else if (/^# Subtest\b/.test(text)) {
    openFrame(indent + 4);
  } else if ((m = /^(not )?ok\b(.*)$/.exec(text))) {
    point(indent, !m[1], /(?<!\\)#\s*(skip|todo)\b/i.test(m[2]));
    lastPointIndent = indent;
  } else if ((m = /^1\.\.(\d+)/.exec(text))) {
    openFrame(indent);
    if (indent === 0) (run ??= { plan: null, points: 0 }).plan = Number(m[1]);
  } else if (/^Bail out!/.test(text)) {
    counts.failed++;
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const raw of rl) {
  console.log(raw);
  // A run whose last line has no newline runs into the next run's version line.
  const glued = /^(.+?)(TAP version \d+)$/.exec(raw);
  if (glued) {
    line(glued[1]);
    line(glued[2]);
  } else {
    line(raw);
  }
}
endRun();

const summary = `${counts.passed} passed, ${counts.failed} failed`;
console.log(counts.skipped ? `${summary}, ${counts.skipped} skipped` : summary);
process.exitCode = counts.failed || !total() ? 1 : 0;
