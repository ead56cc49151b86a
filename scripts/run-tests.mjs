#!/usr/bin/env node
// The test runner of `make test`: runs compiled test files several at a time and writes one TAP 14
// stream, each file as a subtest (as `tap --reporter=tap` does), for scripts/tap-summary.mjs.
//
//   run-tests.mjs [--jobs N] [--serial NAME,...] FILE... [--env KEY=VALUE FILE...]...
//
// Each file runs as `node FILE`, with the environment given by the `--env` options before it.
// Not through tap's runner: it loads ts-node, its mock loader and processinfo into every test
// process, and processinfo through NODE_OPTIONS into every node process a test starts (each hook
// run of the Node build): about 1.5 s of CPU a file and 0.2 s a hook run, for compiled JavaScript
// that needs none of it. A test file is the same tap program either way.
//
// At most N files run at once (default 1). A file whose name (without its folder) is in --serial
// shares something global with the other serial ones (a daemon, a package manager, the repo's
// build folder: see the Makefile), so no two serial files run at once; the others run beside them.
// Serial files are started first, whenever none is running, since one after another they are the
// longest chain. A file still running after TIMEOUT_S is killed and fails, as tap's `timeout`.
// A file's output is written whole when it ends, so files that run together do not interleave.
// Exit status: 1 if any file failed, else 0.
import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';

const TIMEOUT_S = 600;

function parseArgs(argv) {
  let jobs = 1;
  const serial = new Set();
  const env = {};
  const runs = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--jobs') jobs = Number(argv[++i]);
    else if (arg === '--serial') for (const name of argv[++i].split(/[\s,]+/).filter(Boolean)) serial.add(name);
    else if (arg === '--env') {
      const [key, ...value] = argv[++i].split('=');
      env[key] = value.join('=');
    } else runs.push({ file: arg, env: { ...env } });
  }
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`run-tests: --jobs wants a whole number from 1 (got ${jobs})`);
  for (const run of runs) run.serial = serial.has(basename(run.file));
  const unknown = [...serial].filter((name) => !runs.some((r) => basename(r.file) === name));
  if (unknown.length) throw new Error(`run-tests: --serial names no file given: ${unknown.join(', ')}`);
  return { jobs, runs };
}

/** The subtest's name: the file, and the environment it ran with, if any. */
const nameOf = (run) => [run.file, ...Object.entries(run.env).map(([k, v]) => `${k}=${v}`)].join(' ');

/** Runs one file; resolves with its TAP lines (indented as a subtest) and whether it passed. */
function runFile(run) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    // TAP_TIMEOUT: tap's own limit for a file run directly, 30 s unless set; it names the test it ends.
    const env = { ...process.env, TAP_TIMEOUT: String(TIMEOUT_S), ...run.env };
    const child = spawn(process.execPath, [run.file], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    let timedOut = false;
    // Should tap's own timeout not end it (a test stuck in a synchronous call), the file is killed.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, (TIMEOUT_S + 30) * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const body = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => !/^TAP version \d+$/.test(l));
      while (body.length && body.at(-1) === '') body.pop();
      const why = timedOut ? ` # timeout after ${TIMEOUT_S} s` : code === 0 ? '' : ` # exited ${signal ?? code}`;
      resolve({ passed: code === 0 && !timedOut, ms, why, lines: body.map((l) => (l ? `    ${l}` : l)) });
    });
  });
}

const { jobs, runs } = parseArgs(process.argv.slice(2));
const write = (text) => process.stdout.write(text);
write('TAP version 14\n');
let done = 0;
let failed = 0;
let serialRunning = false;
const running = new Set();

function next() {
  const i = serialRunning ? runs.findIndex((r) => !r.serial) : Math.max(0, runs.findIndex((r) => r.serial));
  return i < 0 || !runs.length ? undefined : runs.splice(i, 1)[0];
}

await new Promise((allDone) => {
  const fill = () => {
    while (running.size < jobs) {
      const run = next();
      if (!run) break;
      if (run.serial) serialRunning = true;
      const p = runFile(run).then((result) => {
        running.delete(p);
        if (run.serial) serialRunning = false;
        const n = ++done;
        if (!result.passed) failed++;
        write(`# Subtest: ${nameOf(run)}\n${result.lines.join('\n')}\n`);
        write(`${result.passed ? 'ok' : 'not ok'} ${n} - ${nameOf(run)}${result.why || ` # time=${result.ms.toFixed(3)}ms`}\n\n`);
        fill();
      });
      running.add(p);
    }
    if (!running.size) allDone();
  };
  fill();
});
write(`1..${done}\n`);
process.exitCode = failed ? 1 : 0;
