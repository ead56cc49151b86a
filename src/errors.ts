// Typed errors shared by every layer. Each one renders as a single line that
// names the device (when there is one), what was being done, and why.

export interface ErrorContext {
  device?: string;
  op?: string;
}

export class NetdevError extends Error {
  readonly device?: string;
  readonly op?: string;
  constructor(message: string, ctx: ErrorContext = {}) {
    super(message);
    this.name = new.target.name;
    this.device = ctx.device;
    this.op = ctx.op;
  }
}

/** Invalid input: state, config.json, annotation or policy. Nothing was changed. */
export class ConfigError extends NetdevError {
  readonly field?: string;
  constructor(message: string, ctx: ErrorContext & { field?: string } = {}) {
    super(message, ctx);
    this.field = ctx.field;
  }
}

/** The kernel refused a netlink request; carries errno and the extended-ack text. */
export class NetlinkError extends NetdevError {
  readonly errno: number;
  readonly code: string;
  readonly extack?: string;
  constructor(errno: number, code: string, description: string, ctx: ErrorContext & { extack?: string }) {
    const where = [ctx.op, ctx.device && `device ${ctx.device}`].filter(Boolean).join(' ');
    const ack = ctx.extack ? `: ${ctx.extack}` : '';
    super(`${where ? where + ': ' : ''}${code} (${description})${ack}`, ctx);
    this.errno = errno;
    this.code = code;
    this.extack = ctx.extack;
  }
}

/** The plan cannot be carried out against what the host and container hold now. */
export class PlanError extends NetdevError {}

/** Another container holds the device. */
export class DeviceBusyError extends NetdevError {
  readonly owner: string;
  constructor(device: string, owner: string) {
    super(`device ${device} is held by container ${owner}`, { device, op: 'claim' });
    this.owner = owner;
  }
}

/** State-dir problems: journal, pin, locks. */
export class StateError extends NetdevError {}

/** A kernel reply that does not parse. */
export class DecodeError extends NetdevError {}

/** The short cause of a failed system call for a message: its errno name (ENOENT), else its text. */
export function causeOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

// Text helpers for messages, which stay on one line whatever the input holds.

/** A name or key as it appears in messages: bare when plain printable ASCII, else JSON-quoted. */
export function show(name: string): string {
  return /^[!#-~]+$/.test(name) ? name : JSON.stringify(name);
}

/** A value for "(got ...)": scalars only, shortened. */
export function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? text.slice(0, 37) + '...' : text;
}

/** Collapse whitespace so that foreign text (JSON.parse, fs errors) keeps the message on one line. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
