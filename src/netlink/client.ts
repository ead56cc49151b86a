// A synchronous rtnetlink client: one request and its ack, or one dump and all
// its parts. Kernel refusals become NetlinkError with the extended-ack text.
// Only the kernel is heard: the socket is connected to it, datagrams from any
// other sender are dropped, and a reply must carry our sequence number and port.

import * as libc from '../../native/libc';
import { DecodeError, NetlinkError, SyscallError } from '../errors';
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
const DEFAULT_RECEIVE_TIMEOUT_MS = 10_000;
const DUMP_ATTEMPTS = 5;
const EINTR = 4;
const ENOBUFS = 105;
const RECEIVE_BUFFER = 128 * 1024;

const trace = process.env.OCI_NETDEV_TRACE ? (line: string) => process.stderr.write(`trace: ${line}\n`) : undefined;

export class NetlinkSocket implements Disposable {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = Buffer.allocUnsafe(RECEIVE_BUFFER);
  private closed = false;
  /** Requests sent on this socket; benchmarks and tests read it. */
  requestCount = 0;

  /** @param port this socket's netlink port id, which the kernel's replies carry in nlmsg_pid */
  private constructor(readonly fd: number, readonly port: number) {}

  /**
   * A netlink socket in the calling thread's current network namespace: rtnetlink unless
   * `protocol` says otherwise (NETLINK_GENERIC for the ethtool family).
   */
  static open(timeoutMs = DEFAULT_RECEIVE_TIMEOUT_MS, protocol = NETLINK_ROUTE): NetlinkSocket {
    const fd = libc.netlinkSocket(protocol);
    try {
      libc.setsockoptInt(fd, libc.SOL_NETLINK, NETLINK_EXT_ACK, 1);
      libc.setsockoptInt(fd, libc.SOL_NETLINK, NETLINK_CAP_ACK, 1);
      libc.setsockoptInt(fd, libc.SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
      libc.setReceiveTimeout(fd, timeoutMs);
      return new NetlinkSocket(fd, libc.netlinkPort(fd));
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }

  /**
   * Sends a request and waits for its ack; throws NetlinkError on refusal.
   * Returns the replies that came before the ack (a get is answered that way).
   */
  request(msg: MessageBuilder, ctx: RequestContext): NlMessage[] {
    const seq = this.send(msg, msg.flags | NLM_F_REQUEST | NLM_F_ACK, ctx);
    const replies: NlMessage[] = [];
    for (;;) {
      const batch = this.receive(ctx);
      // The kernel drops a unicast to a full socket; the lost one may be our ack.
      if (!batch) throw new NetlinkError(ENOBUFS, 'ENOBUFS', 'reply lost: the receive buffer overran', ctx);
      for (const m of batch) {
        if (!this.answers(m, seq)) continue;
        if (m.type !== NLMSG_ERROR) { replies.push(m); continue; }
        checkAck(m, ctx);
        return replies;
      }
    }
  }

  /**
   * Sends several requests in one datagram and reads the ack of each: the kernel runs them in
   * order, each on its own, and a refusal does not stop the ones after it. Returns, in the order
   * given, each request's refusal (NetlinkError, with its own context) or undefined when it was done.
   */
  requestEach(requests: { msg: MessageBuilder; ctx: RequestContext }[]): (NetlinkError | undefined)[] {
    if (!requests.length) return [];
    const bySeq = new Map<number, number>();
    const datagram = Buffer.concat(requests.map(({ msg, ctx }, i) => {
      const bytes = this.encode(msg, msg.flags | NLM_F_REQUEST | NLM_F_ACK, ctx);
      bySeq.set(this.seq, i);
      return bytes;
    }));
    this.transmit(datagram);
    trace?.(`${requests.length} request${requests.length === 1 ? '' : 's'} sent in one datagram`);
    const outcomes = new Array<NetlinkError | undefined>(requests.length);
    let open = requests.length;
    const batchCtx = { op: requests[0].ctx.op, device: requests.map((r) => r.ctx.device).join(', ') };
    while (open > 0) {
      const batch = this.receive(batchCtx);
      if (!batch) throw new NetlinkError(ENOBUFS, 'ENOBUFS', 'reply lost: the receive buffer overran', batchCtx);
      for (const m of batch) {
        const i = m.pid === this.port && m.type === NLMSG_ERROR ? bySeq.get(m.seq) : undefined;
        if (i === undefined) continue;
        bySeq.delete(m.seq);
        open--;
        try {
          checkAck(m, requests[i].ctx);
        } catch (err) {
          if (!(err instanceof NetlinkError)) throw err;
          outcomes[i] = err;
        }
      }
    }
    return outcomes;
  }

  /**
   * Runs a dump to its end, starting again when the kernel flags it as interrupted or the
   * receive buffer overran (messages were lost).
   */
  dump(msg: MessageBuilder, ctx: RequestContext): NlMessage[] {
    for (let attempt = 1; ; attempt++) {
      const seq = this.send(msg, msg.flags | NLM_F_REQUEST | NLM_F_DUMP, ctx);
      const parts: NlMessage[] = [];
      let interrupted = false;
      let overrun = false;
      let done = false;
      // Read to the end even after an overrun: the kernel refuses a new dump while one runs.
      while (!done) {
        const batch = this.receive(ctx);
        if (!batch) { overrun = true; continue; }
        for (const m of batch) {
          if (!this.answers(m, seq)) continue;
          if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (m.type === NLMSG_DONE) { this.checkDone(m, ctx); done = true; }
          else if (m.type === NLMSG_ERROR) checkAck(m, ctx);
          else if (m.type !== NLMSG_NOOP) parts.push(m);
        }
      }
      if (!interrupted && !overrun) return parts;
      if (attempt === DUMP_ATTEMPTS) {
        throw overrun
          ? new NetlinkError(ENOBUFS, 'ENOBUFS', `dump overran the receive buffer ${DUMP_ATTEMPTS} times`, ctx)
          : new NetlinkError(EINTR, 'EINTR', `dump interrupted ${DUMP_ATTEMPTS} times`, ctx);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private send(msg: MessageBuilder, flags: number, ctx: RequestContext): number {
    this.transmit(this.encode(msg, flags, ctx));
    return this.seq;
  }

  /** One datagram to the kernel, holding one request or several. */
  private transmit(datagram: Buffer): void {
    libc.sendToKernel(this.fd, datagram);
  }

  /** The request's bytes under the next sequence number (this.seq), counted as a request. */
  private encode(msg: MessageBuilder, flags: number, ctx: RequestContext): Buffer {
    this.seq = (this.seq + 1) >>> 0 || 1;
    const bytes = msg.finish(this.seq);
    bytes.writeUInt16LE(flags, 6);
    trace?.(`${ctx.op}${ctx.device ? ` ${ctx.device}` : ''} type=${msg.type} flags=0x${flags.toString(16)} len=${bytes.length}`);
    this.requestCount++;
    return bytes;
  }

  /**
   * One datagram, split into messages. A datagram from anyone but the kernel is dropped unread
   * (empty result); undefined means the receive buffer overran and messages were lost.
   */
  private receive(ctx: RequestContext): NlMessage[] | undefined {
    let got: { length: number; senderPort: number };
    try {
      got = libc.receiveNetlink(this.fd, this.buf, libc.MSG_TRUNC);
    } catch (err) {
      if (err instanceof SyscallError && err.errnoName === 'EAGAIN') {
        throw new NetlinkError(err.errno, 'ETIMEDOUT', 'no reply from the kernel in time', ctx);
      }
      if (err instanceof SyscallError && err.errnoName === 'ENOBUFS') return undefined;
      throw err;
    }
    if (got.senderPort !== 0) {
      trace?.(`dropped ${got.length} bytes from netlink port ${got.senderPort}`);
      return [];
    }
    const n = got.length;
    if (n > this.buf.length) throw new DecodeError(`netlink reply of ${n} bytes exceeds the ${this.buf.length}-byte buffer`, ctx);
    // Copy out: replies outlive the next receive into the shared buffer.
    return decodeMessages(Buffer.from(this.buf.subarray(0, n)));
  }

  /** Whether a message is the kernel's answer to our request `seq` (it carries our port id). */
  private answers(m: NlMessage, seq: number): boolean {
    return m.seq === seq && m.pid === this.port;
  }

  /**
   * A dump that fails part-way ends with an NLMSG_DONE whose payload is the negative errno,
   * followed directly by the extended-ack attributes (no echoed request, unlike NLMSG_ERROR).
   */
  private checkDone(m: NlMessage, ctx: RequestContext): void {
    if (m.payload.length < 4) return;
    const errno = -m.payload.readInt32LE(0);
    if (errno === 0) return;
    const text = m.flags & NLM_F_ACK_TLVS ? attrText(m.payload, 4) : undefined;
    throw refusal(errno, ctx, text);
  }
}

/** An NLMSG_ERROR with error 0 is an ack; anything else is the kernel's refusal. */
export function checkAck(m: NlMessage, ctx: RequestContext): void {
  if (m.payload.length < 4) throw new DecodeError('short NLMSG_ERROR', ctx);
  const errno = -m.payload.readInt32LE(0);
  if (errno === 0) return;
  throw refusal(errno, ctx, extendedAck(m));
}

function refusal(errno: number, ctx: RequestContext, extack: string | undefined): NetlinkError {
  return new NetlinkError(errno, libc.errnoName(errno), libc.strerror(errno), { ...ctx, extack });
}

/** The NLMSGERR_ATTR_MSG text of an error reply, if the kernel sent one. */
function extendedAck(m: NlMessage): string | undefined {
  if (!(m.flags & NLM_F_ACK_TLVS) || m.payload.length < 4 + NLMSG_HDRLEN) return undefined;
  const origLen = m.payload.readUInt32LE(4);
  return attrText(m.payload, 4 + (m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(origLen)));
}

/** The NLMSGERR_ATTR_MSG among the attributes from `start` on. */
function attrText(payload: Buffer, start: number): string | undefined {
  if (start > payload.length) return undefined;
  const msg = decodeAttrs(payload, start).find((a) => a.type === NLMSGERR_ATTR_MSG);
  return msg ? attrString(msg.data) : undefined;
}
