// A synchronous rtnetlink client: one request and its ack, or one dump and all
// its parts. Kernel refusals become NetlinkError with the extended-ack text.

import * as libc from '../../native/libc';
import { DecodeError, NetlinkError } from '../errors';
import { decodeAttrs, decodeMessages, attrString, MessageBuilder, NlMessage, NLMSG_HDRLEN, align4 } from './codec';
import {
  NETLINK_ROUTE, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK,
  NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR,
  NLM_F_REQUEST, NLMSGERR_ATTR_MSG,
} from './constants';

export interface RequestContext {
  op: string;
  device?: string;
}

/** How long one receive may wait before the kernel is deemed unresponsive. */
export const DEFAULT_RECEIVE_TIMEOUT_MS = 10_000;
const DUMP_ATTEMPTS = 5;
const RECEIVE_BUFFER = 128 * 1024;

const trace = process.env.OCI_NETDEV_TRACE ? (line: string) => process.stderr.write(`trace: ${line}\n`) : undefined;

export class NetlinkSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.allocUnsafe(RECEIVE_BUFFER);
  private closed = false;
  /** Requests sent on this socket; benchmarks and tests read it. */
  requestCount = 0;

  private constructor(readonly fd: number) {}

  /** A route socket in the calling thread's current network namespace. */
  static open(timeoutMs = DEFAULT_RECEIVE_TIMEOUT_MS): NetlinkSocket {
    const fd = libc.netlinkSocket(NETLINK_ROUTE);
    try {
      libc.setsockoptInt(fd, libc.SOL_NETLINK, NETLINK_EXT_ACK, 1);
      libc.setsockoptInt(fd, libc.SOL_NETLINK, NETLINK_CAP_ACK, 1);
      libc.setsockoptInt(fd, libc.SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
      libc.setReceiveTimeout(fd, timeoutMs);
    } catch (err) {
      libc.close(fd);
      throw err;
    }
    return new NetlinkSocket(fd);
  }

  /**
   * Sends a request and waits for its ack; throws NetlinkError on refusal.
   * Returns the replies that came before the ack (a get is answered that way).
   */
  request(msg: MessageBuilder, ctx: RequestContext): NlMessage[] {
    const seq = this.send(msg, msg.flags | NLM_F_REQUEST | NLM_F_ACK, ctx);
    const replies: NlMessage[] = [];
    for (;;) {
      for (const m of this.receive(ctx)) {
        if (m.seq !== seq) continue;
        if (m.type !== NLMSG_ERROR) { replies.push(m); continue; }
        this.checkAck(m, ctx);
        return replies;
      }
    }
  }

  /** Runs a dump to its end, retrying when the kernel flags it as interrupted. */
  dump(msg: MessageBuilder, ctx: RequestContext): NlMessage[] {
    for (let attempt = 1; ; attempt++) {
      const seq = this.send(msg, msg.flags | NLM_F_REQUEST | NLM_F_DUMP, ctx);
      const parts: NlMessage[] = [];
      let interrupted = false;
      let done = false;
      while (!done) {
        for (const m of this.receive(ctx)) {
          if (m.seq !== seq) continue;
          if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (m.type === NLMSG_DONE) done = true;
          else if (m.type === NLMSG_ERROR) this.checkAck(m, ctx);
          else if (m.type !== NLMSG_NOOP) parts.push(m);
        }
      }
      if (!interrupted) return parts;
      if (attempt === DUMP_ATTEMPTS) {
        throw new NetlinkError(4, 'EINTR', `dump interrupted ${DUMP_ATTEMPTS} times`, ctx);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  private send(msg: MessageBuilder, flags: number, ctx: RequestContext): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    const bytes = msg.finish(this.seq);
    bytes.writeUInt16LE(flags, 6);
    trace?.(`${ctx.op}${ctx.device ? ` ${ctx.device}` : ''} type=${msg.type} flags=0x${flags.toString(16)} len=${bytes.length}`);
    this.requestCount++;
    libc.sendToKernel(this.fd, bytes);
    return this.seq;
  }

  private receive(ctx: RequestContext): NlMessage[] {
    let n: number;
    try {
      n = libc.receive(this.fd, this.buf, libc.MSG_TRUNC);
    } catch (err) {
      if (err instanceof libc.SyscallError && err.code === 'EAGAIN') {
        throw new NetlinkError(err.errno, 'ETIMEDOUT', 'no reply from the kernel in time', ctx);
      }
      throw err;
    }
    if (n > this.buf.length) throw new DecodeError(`netlink reply of ${n} bytes exceeds the ${this.buf.length}-byte buffer`, ctx);
    // Copy out: replies outlive the next receive into the shared buffer.
    return decodeMessages(Buffer.from(this.buf.subarray(0, n)));
  }

  /** An NLMSG_ERROR with error 0 is an ack; anything else is the kernel's refusal. */
  private checkAck(m: NlMessage, ctx: RequestContext): void {
    if (m.payload.length < 4) throw new DecodeError('short NLMSG_ERROR', ctx);
    const errno = -m.payload.readInt32LE(0);
    if (errno === 0) return;
    throw new NetlinkError(errno, libc.errnoName(errno), libc.strerror(errno), { ...ctx, extack: extendedAck(m) });
  }
}

/** The NLMSGERR_ATTR_MSG text of an error reply, if the kernel sent one. */
function extendedAck(m: NlMessage): string | undefined {
  if (!(m.flags & NLM_F_ACK_TLVS) || m.payload.length < 4 + NLMSG_HDRLEN) return undefined;
  const origLen = m.payload.readUInt32LE(4);
  const start = 4 + (m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(origLen));
  if (start > m.payload.length) return undefined;
  const msg = decodeAttrs(m.payload, start).find((a) => a.type === NLMSGERR_ATTR_MSG);
  return msg ? attrString(msg.data) : undefined;
}
