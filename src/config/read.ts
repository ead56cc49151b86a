// JSON parsing for the state, config.json and the annotation (bounded reads: state/files.ts).

import { ConfigError, oneLine } from '../errors';
import { parseJsonText } from '../schema/json';

/** Parse JSON text, naming `where` in the error. */
export function parseJson(text: string | Buffer, where: string): unknown {
  const source = typeof text === 'string' ? text : text.toString('utf8');
  if (source.trim() === '') throw new ConfigError(`${where}: empty, expected JSON`);
  try {
    return parseJsonText(source);
  } catch (err) {
    throw new ConfigError(`${where}: invalid JSON: ${oneLine((err as Error).message)}`);
  }
}
