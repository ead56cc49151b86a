// Runs the validators compiled from spec/ (scripts/gen-validators.mjs) and turns the first
// failure into a one-line ConfigError. Used by config (its inputs) and state (the journal).
// Each validator is loaded at its first use: a run loads only those of the documents it reads.

import { ConfigError, preview, show } from '../errors';

/** The fields of an ajv error (compiled with verbose: true) that we read. */
interface SchemaError {
  instancePath: string;
  keyword: string;
  params: { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
  message?: string;
  parentSchema?: { 'x-message'?: string };
  data?: unknown;
}
type Validator = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

export type SchemaName = 'netDevices' | 'state' | 'config' | 'policy' | 'journal';

/* eslint-disable @typescript-eslint/no-require-imports */
const load: Record<SchemaName, () => unknown> = {
  netDevices: () => (require('./generated/netDevices') as Record<SchemaName, unknown>).netDevices,
  state: () => (require('./generated/state') as Record<SchemaName, unknown>).state,
  config: () => (require('./generated/config') as Record<SchemaName, unknown>).config,
  policy: () => (require('./generated/policy') as Record<SchemaName, unknown>).policy,
  journal: () => (require('./generated/journal') as Record<SchemaName, unknown>).journal,
};
/* eslint-enable @typescript-eslint/no-require-imports */
const loaded = new Map<SchemaName, Validator>();

/** The compiled validator of `schema`, loaded at its first use. */
function validator(schema: SchemaName): Validator {
  let check = loaded.get(schema);
  if (!check) loaded.set(schema, (check = load[schema]() as Validator));
  return check;
}

/**
 * Validate `data` against a schema from spec/, throwing a ConfigError for the first problem.
 * `where` names the document (e.g. "OCI state"). With `byDevice` the data is a netDevices object
 * and messages start with "device KEY" instead.
 */
export function validate(schema: SchemaName, data: unknown, where: string, byDevice = false): void {
  const check = validator(schema);
  if (check(data)) return;
  // `if` only reports that a `then` failed; the failure itself is reported before it.
  const errors = (check.errors ?? []).filter((e) => e.keyword !== 'if');
  const first = errors[0];
  if (!first) throw new ConfigError(`${where}: invalid`, { problem: 'invalid' });
  // allErrors may report one field twice (type and minimum): count the other fields.
  const locate = (e: SchemaError) => `${e.instancePath}/${e.params.missingProperty ?? e.params.additionalProperty ?? ''}`;
  const others = new Set(errors.map(locate)).size - 1;
  const more = others > 0 ? ` (and ${others} more problem${others > 1 ? 's' : ''})` : '';
  const path = first.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const named = first.params.missingProperty ?? first.params.additionalProperty;
  if (named !== undefined) path.push(named);
  const device = byDevice ? path.shift() : undefined;
  // Keys come from the input: show() quotes any with control characters, so a message stays one line.
  const field = path.map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i ? `.${show(s)}` : show(s))).join('') || undefined;

  const custom = first.parentSchema?.['x-message'];
  let problem: string;
  if (first.keyword === 'additionalProperties') problem = 'unknown field';
  else if (first.keyword === 'required') problem = custom ?? 'is required';
  else {
    problem =
      first.keyword === 'enum' && !custom
        ? `must be one of ${(first.params.allowedValues ?? []).join(', ')}`
        : (custom ?? first.message ?? 'is invalid');
    if (first.data === null || typeof first.data !== 'object') problem += ` (got ${preview(first.data)})`;
  }
  const head = device !== undefined ? `device ${show(device)}` : where;
  const detail = [field, problem + more].filter((s) => s !== undefined).join(': ');
  throw new ConfigError(`${head}: ${detail}`, { device, field, problem: detail });
}

/**
 * When `data` fails `schema` only because of fields the schema does not know (additionalProperties),
 * those fields ("journal.plan.devices[0].later"); otherwise null. A journal whose checksum holds
 * and that fails only so was written by a newer release, which added them.
 */
export function unknownFields(schema: SchemaName, data: unknown): string[] | null {
  const check = validator(schema);
  if (check(data)) return null;
  const errors = (check.errors ?? []).filter((e) => e.keyword !== 'if');
  if (!errors.length || errors.some((e) => e.keyword !== 'additionalProperties' || e.params.additionalProperty === undefined)) return null;
  const name = (e: SchemaError) => [...e.instancePath.split('/').slice(1), e.params.additionalProperty!]
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i ? `.${show(s)}` : show(s))).join('');
  return [...new Set(errors.map(name))];
}
