// The one error hierarchy of oci-netdev. Every error it throws is a NetdevError with a stable
// `code` (ERR_..., listed in the README) that scripts and tests may rely on, and a message that
// renders as a single line naming the device (when there is one), what was being done, and why;
// a kernel refusal adds its extended-ack text.

/** The stable codes, one per class below. */
export type ErrorCode =
  | 'ERR_USAGE' | 'ERR_CONFIG' | 'ERR_POLICY' | 'ERR_PLAN' | 'ERR_DEVICE_BUSY' | 'ERR_DEVICE_LOST'
  | 'ERR_APPLY' | 'ERR_ROLLBACK' | 'ERR_RESTORE' | 'ERR_HOST_NETNS' | 'ERR_NETLINK' | 'ERR_DECODE' | 'ERR_STATE' | 'ERR_SYSCALL' | 'ERR_CNI';

export interface ErrorContext {
  device?: string;
  op?: string;
}

export abstract class NetdevError extends Error {
  abstract readonly code: ErrorCode;
  readonly device?: string;
  readonly op?: string;
  constructor(message: string, ctx: ErrorContext = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.device = ctx.device;
    this.op = ctx.op;
  }
}

/** A command line that does not parse; the CLI adds a hint to the command's help. */
export class UsageError extends NetdevError {
  readonly code = 'ERR_USAGE';
  /** The command whose help the hint points to, if one was named. */
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

/** Invalid input: state, config.json, annotation or policy. Nothing was changed. */
export class ConfigError extends NetdevError {
  readonly code: ErrorCode = 'ERR_CONFIG';
  readonly field?: string;
  /** What is wrong: the message without the subject it starts with ("device eth1: ", a document's name), when it has one. */
  readonly problem?: string;
  constructor(message: string, ctx: ErrorContext & { field?: string; problem?: string } = {}) {
    super(message, ctx);
    this.field = ctx.field;
    this.problem = ctx.problem;
  }
}

/** The error for one field of one device entry. */
export function deviceError(device: string, field: string, problem: string): ConfigError {
  return new ConfigError(`device ${show(device)}: ${field}: ${problem}`, { device, field, problem: `${field}: ${problem}` });
}

/** A request the policy refuses. Names the device, the source, the rule and the policy file. */
export class PolicyError extends ConfigError {
  override readonly code = 'ERR_POLICY';
  /** Who asked for the device: config, annotation or cni (src/config DeviceSource). */
  readonly source: string;
  readonly rule: string;
  readonly policyFile: string;
  declare readonly problem: string;
  /** `problem`: what is refused and why; the message starts with the device entry it belongs to. */
  constructor(problem: string, ctx: { device: string; source: string; rule: string; policyFile: string }) {
    super(`device ${show(ctx.device)}: ${problem}`, { device: ctx.device, field: ctx.rule, op: 'policy', problem });
    this.source = ctx.source;
    this.rule = ctx.rule;
    this.policyFile = ctx.policyFile;
  }
}

/** The kernel refused a netlink request; carries errno and the extended-ack text. */
export class NetlinkError extends NetdevError {
  readonly code = 'ERR_NETLINK';
  readonly errno: number;
  /** EEXIST, ENODEV, ... */
  readonly errnoName: string;
  readonly extack?: string;
  constructor(errno: number, errnoName: string, description: string, ctx: ErrorContext & { extack?: string }) {
    const where = [ctx.op, ctx.device && `device ${ctx.device}`].filter(Boolean).join(' ');
    const ack = ctx.extack ? `: ${ctx.extack}` : '';
    super(`${where ? where + ': ' : ''}${errnoName} (${description})${ack}`, ctx);
    this.errno = errno;
    this.errnoName = errnoName;
    this.extack = ctx.extack;
  }
}

/** A failed C library call (native/libc.ts); carries errno. */
export class SyscallError extends NetdevError {
  readonly code = 'ERR_SYSCALL';
  readonly syscall: string;
  readonly errno: number;
  /** EAGAIN, ENOENT, ... */
  readonly errnoName: string;
  constructor(syscall: string, errno: number, errnoName: string, description: string, detail?: string) {
    super(`${syscall}${detail ? ` ${detail}` : ''}: ${errnoName} (${description})`);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = errnoName;
  }
}

/** The plan cannot be carried out against what the host and container hold now. */
export class PlanError extends NetdevError {
  readonly code: ErrorCode = 'ERR_PLAN';
}

/** A device is provably gone; the engine keeps its record and says so. */
export class DeviceLostError extends PlanError {
  override readonly code = 'ERR_DEVICE_LOST';
}

/** Another container holds the device. */
export class DeviceBusyError extends NetdevError {
  readonly code = 'ERR_DEVICE_BUSY';
  readonly owner: string;
  /** `named`: the entry and the role in which it names the device, when it does not ask for the device itself. */
  constructor(device: string, owner: string, named?: { entry: string; role: string }) {
    const subject = named ? `device ${named.entry}: ${named.role} ${device}` : `device ${device}`;
    super(`${subject} is held by container ${owner}`, { device: named?.entry ?? device, op: 'claim' });
    this.owner = owner;
  }
}

/**
 * A step failed and the steps before it were undone (ERR_APPLY), or some undo failed too
 * (ERR_ROLLBACK: the journal stays for `oci-netdev gc`). The message is the failure's.
 */
export class ApplyError extends NetdevError {
  readonly code: ErrorCode;
  constructor(readonly failure: Error, readonly undoErrors: Error[]) {
    const extra = undoErrors.length ? `; rollback also failed: ${undoErrors.map((e) => e.message).join('; ')}` : '';
    super(`${failure.message}${extra}`, failure instanceof NetdevError ? { device: failure.device, op: failure.op } : {}, { cause: failure });
    this.code = undoErrors.length ? 'ERR_ROLLBACK' : 'ERR_APPLY';
  }
}

/** A restore (poststop, gc) left something undone; the journal stays, with why, for the next try. */
export class RestoreError extends NetdevError {
  readonly code = 'ERR_RESTORE';
}

/** A restore asked of a network namespace that is not the host's its journal recorded; nothing was changed. */
export class HostNamespaceError extends NetdevError {
  readonly code = 'ERR_HOST_NETNS';
}

/** State-dir problems: journal, pin, locks. */
export class StateError extends NetdevError {
  readonly code = 'ERR_STATE';
}

/** A kernel reply that does not parse. */
export class DecodeError extends NetdevError {
  readonly code = 'ERR_DECODE';
}

/** A CNI error: what the plugin prints on stdout, or what a plugin it ran printed; `cniCode` is the spec's number. */
export class CniError extends NetdevError {
  readonly code = 'ERR_CNI';
  readonly cniCode: number;
  readonly details?: string;
  constructor(cniCode: number, msg: string, details?: string) {
    super(msg, { op: 'cni' });
    this.cniCode = cniCode;
    this.details = details;
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.cniCode, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** The short cause of a failed system call for a message: its errno name (ENOENT), else its text. */
export function causeOf(err: unknown): string {
  if (err instanceof SyscallError || err instanceof NetlinkError) return err.errnoName;
  if (err instanceof NetdevError) return err.message;
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
