// The sealed line that the journal and claims files begin with: one line of JSON, an envelope
// holding a value under its key and the sha256 of the value's text (JSON.stringify), so that a
// torn or altered file shows itself. Whatever follows the line (a journal's reserved space) is
// not read.

import { parseJsonText } from '../schema/json';
import { sha256Hex as sha256 } from './sha256';

/** `{"version":V,"sha256":S,"<key>":VALUE}` and a newline; without a version when none is given. */
export function seal(key: string, value: unknown, version?: number): Buffer {
  const text = JSON.stringify(value);
  return Buffer.from(`{${version === undefined ? '' : `"version":${version},`}"sha256":"${sha256(text)}",${JSON.stringify(key)}:${text}}\n`);
}

/** The envelope on the first line of `data`, parsed; a SyntaxError (one line, the same on every engine) when it is not JSON. */
export function envelopeOf(data: Buffer): unknown {
  const end = data.indexOf(0x0a);
  return parseJsonText(data.subarray(0, end === -1 ? data.length : end).toString('utf8'));
}

/** What `envelope` holds under `key` when its checksum holds; undefined when it holds nothing there or the sum does not match. */
export function unseal(envelope: unknown, key: string): unknown {
  if (envelope === null || typeof envelope !== 'object') return undefined;
  const { sha256: sum, [key]: value } = envelope as Record<string, unknown>;
  return value !== undefined && sum === sha256(JSON.stringify(value)) ? value : undefined;
}
