// Bounded reads and JSON parsing for the state, config.json and the annotation.

import * as fs from 'node:fs';
import { ConfigError } from '../errors';
import { oneLine } from './schema';

/** Parse JSON text, naming `where` in the error. */
export function parseJson(text: string | Buffer, where: string): unknown {
  const source = typeof text === 'string' ? text : text.toString('utf8');
  if (source.trim() === '') throw new ConfigError(`${where}: empty, expected JSON`);
  try {
    return JSON.parse(source);
  } catch (err) {
    throw new ConfigError(`${where}: invalid JSON: ${oneLine((err as Error).message)}`);
  }
}

/** "1 MiB", "64 KiB": the limits in messages. */
export function sizeText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes / 1024} KiB`;
}

/**
 * Read `fd` synchronously to EOF, refusing more than `limit` bytes. A non-blocking fd with
 * nothing to read yet (EAGAIN) is polled every 10 ms for up to `waitMs`.
 */
export function readBounded(fd: number, limit: number, where: string, waitMs = 0): Buffer {
  const chunks: Buffer[] = [];
  let used = 0;
  let waited = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, limit + 1 - used));
    let n: number;
    try {
      n = fs.readSync(fd, chunk, 0, chunk.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINTR') continue;
      if (code === 'EAGAIN' && waited < waitMs) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        waited += 10;
        continue;
      }
      throw new ConfigError(`${where}: cannot read: ${oneLine((err as Error).message)}`);
    }
    if (n === 0) return Buffer.concat(chunks, used);
    chunks.push(chunk.subarray(0, n));
    used += n;
    if (used > limit) throw new ConfigError(`${where}: larger than ${sizeText(limit)}`);
  }
}
