import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import t from 'tap';
import { ConfigError } from '../../src/errors';
import { MAX_STATE_BYTES, parseState, readStdinState } from '../../src/config/oci-state';

const good = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 1234, bundle: '/b' };

t.test('accepts createRuntime and poststop states', async (t) => {
  t.same(parseState(JSON.stringify(good)), good);
  t.equal(parseState(Buffer.from(JSON.stringify({ ...good, status: 'created' }))).status, 'created');
  const stopped = { ociVersion: '1.0.2', id: 'c1', status: 'stopped', bundle: '/b' };
  t.same(parseState(JSON.stringify(stopped)), stopped);
  t.equal(parseState(JSON.stringify({ ...stopped, pid: 0 })).pid, 0);
  const annotated = { ...good, annotations: { a: 'b' }, extra: true };
  t.same(parseState(JSON.stringify(annotated)), annotated);
});

t.test('rejects a state over 1 MiB before parsing', async (t) => {
  const big = JSON.stringify({ ...good, pad: 'x'.repeat(MAX_STATE_BYTES) });
  t.throws(() => parseState(big), { constructor: ConfigError, message: /OCI state: larger than 1 MiB/ });
  t.throws(() => parseState(Buffer.from(big)), ConfigError);
  // Multi-byte text is measured in bytes.
  t.throws(() => parseState('"' + 'é'.repeat(MAX_STATE_BYTES / 2) + '"'), /larger than 1 MiB/);
});

t.test('rejects invalid JSON and empty input', async (t) => {
  t.throws(() => parseState('{"id": '), { constructor: ConfigError, message: /^OCI state: invalid JSON: / });
  t.throws(() => parseState(''), { constructor: ConfigError, message: /OCI state: empty/ });
  const err = t.throws(() => parseState('{\n\n"a":\n}')) as Error;
  t.notMatch(err.message, /\n/, 'one line');
});

t.test('rejects schema errors naming the field', async (t) => {
  const noId: Record<string, unknown> = { ...good };
  delete noId.id;
  t.throws(() => parseState(JSON.stringify(noId)), {
    constructor: ConfigError,
    message: 'OCI state: id: is required',
    field: 'id',
  });
  t.throws(() => parseState(JSON.stringify({ ...good, pid: -1 })), {
    message: 'OCI state: pid: must be an integer >= 0 (got -1)',
  });
  t.throws(() => parseState(JSON.stringify({ ...good, pid: 1.5 })), { message: /pid: must be an integer >= 0/ });
  t.throws(() => parseState(JSON.stringify({ ...good, bundle: 3 })), { message: 'OCI state: bundle: must be string (got 3)' });
  t.throws(() => parseState(JSON.stringify({ ...good, annotations: { a: 1 } })), {
    message: 'OCI state: annotations.a: must be string (got 1)',
    field: 'annotations.a',
  });
  t.throws(() => parseState('[]'), { message: 'OCI state: must be object' });
});

t.test('readStdinState reads a fd to EOF, bounded', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const read = (content: string | Buffer) => {
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(file, content);
    const fd = fs.openSync(file, 'r');
    try {
      return readStdinState(fd);
    } finally {
      fs.closeSync(fd);
    }
  };
  // Bigger than one read chunk.
  const padded = { ...good, annotations: { pad: 'p'.repeat(200_000) } };
  t.same(read(JSON.stringify(padded)), padded);
  t.throws(() => read(Buffer.alloc(MAX_STATE_BYTES + 10, 0x20)), {
    constructor: ConfigError,
    message: /OCI state on stdin: larger than 1 MiB/,
  });
  t.throws(() => read(''), /OCI state: empty/);
});

t.test('readStdinState on a real stdin pipe with a slow writer', async (t) => {
  const state = path.join(__dirname, '../../src/config/oci-state.js');
  const code = `process.stdout.write(JSON.stringify(require(${JSON.stringify(state)}).readStdinState()))`;
  const input = JSON.stringify(good);
  const r = spawnSync('sh', ['-c', `(sleep 0.2; printf '%s' '${input}') | "${process.execPath}" -e '${code}'`], {
    encoding: 'utf8',
  });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), good);
});

t.test('readStdinState waits on a non-blocking fd that has no data yet (EAGAIN)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-fifo-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
  // The child holds the only writer: data after 200 ms, EOF when it exits.
  const child = spawn('sh', ['-c', `sleep 0.2; printf '%s' '${JSON.stringify(good)}'`], { stdio: ['ignore', wfd, 'inherit'] });
  fs.closeSync(wfd);
  try {
    t.same(readStdinState(rfd), good);
  } finally {
    fs.closeSync(rfd);
    child.kill();
  }
  t.throws(() => {
    const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const w = fs.openSync(fifo, fs.constants.O_WRONLY);
    try {
      readStdinState(r, 50);
    } finally {
      fs.closeSync(r);
      fs.closeSync(w);
    }
  }, /OCI state on stdin: cannot read: EAGAIN/);
});
