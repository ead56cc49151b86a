// The OCI state a runtime writes to a hook's stdin.

import { ConfigError } from '../errors';
import { parseJson } from './read';
import { readBounded, sizeText } from '../fsio/files';
import { validate } from '../schema/validate';
import type { OciState } from './types';

export const MAX_STATE_BYTES = 1024 * 1024;

const WHERE = 'OCI state';

/** Parse and validate the state (runc sends status "creating", crun "created"; poststop "stopped"). */
export function parseState(text: string | Buffer): OciState {
  const size = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  if (size > MAX_STATE_BYTES) throw new ConfigError(`${WHERE}: larger than ${sizeText(MAX_STATE_BYTES)} (${size} bytes)`);
  const state = parseJson(text, WHERE);
  validate('state', state, WHERE);
  return state as OciState;
}

/**
 * Read the state from `fd` (stdin) synchronously until EOF, at most 1 MiB. If the fd is
 * non-blocking and empty for now (EAGAIN), wait for it up to `waitMs`.
 */
export function readStdinState(fd = 0, waitMs = 5000): OciState {
  return parseState(readBounded(fd, MAX_STATE_BYTES, `${WHERE} on stdin`, waitMs));
}
