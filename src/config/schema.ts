// The message helper every config check uses for a field of one device entry.

import { ConfigError, show } from '../errors';

/** The error for one field of one device entry. */
export function deviceError(device: string, field: string, problem: string): ConfigError {
  return new ConfigError(`device ${show(device)}: ${field}: ${problem}`, { device, field });
}
