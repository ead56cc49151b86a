// The client's reading of a dump, fed datagrams built with the codec instead of the kernel's: an
// error inside NLMSG_DONE fails the dump, and messages without our sequence number or port are
// not part of it.
import t from 'tap';
import { decodeMessages, encodeIfInfo, MessageBuilder, NLMSG_HDRLEN, NlMessage } from '../../src/netlink/codec';
import {
  IFLA_IFNAME, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_MULTI, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSGERR_ATTR_MSG, RTM_DELLINK, RTM_GETLINK,
  RTM_NEWLINK,
} from '../../src/netlink/constants';
import { NetlinkSocket } from '../../src/netlink/client';
import { listLinks } from '../../src/netlink/link';
import { NetlinkError } from '../../src/errors';

const PORT = 4711;
const SEQ = 99;

function message(b: MessageBuilder, seq = SEQ, port = PORT): NlMessage {
  const bytes = b.finish(seq);
  bytes.writeUInt32LE(port, 12);
  return decodeMessages(bytes)[0];
}

const errno = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};

const link = (name: string, index: number, seq?: number, port?: number): NlMessage =>
  message(new MessageBuilder(RTM_NEWLINK, NLM_F_MULTI).raw(encodeIfInfo({ index })).str(IFLA_IFNAME, name), seq, port);

/** A socket that sends nothing and receives `datagrams` in turn, each a list of messages. */
function scripted(datagrams: NlMessage[][]): NetlinkSocket {
  const sock = Object.create(NetlinkSocket.prototype) as NetlinkSocket;
  Object.assign(sock, {
    port: PORT,
    send: () => SEQ,
    receive: () => {
      const next = datagrams.shift();
      if (!next) throw new Error('read past the end of the script');
      return next;
    },
  });
  return sock;
}

t.test('an error inside NLMSG_DONE fails the dump with its extended ack', async (t) => {
  const done = message(
    new MessageBuilder(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS).raw(errno(-22)).str(NLMSGERR_ATTR_MSG, 'dump not supported here'),
  );
  const sock = scripted([[link('eth0', 2), done]]);
  let err: unknown;
  try {
    sock.dump(new MessageBuilder(RTM_GETLINK, 0).raw(encodeIfInfo({})), { op: 'list links' });
  } catch (e) {
    err = e;
  }
  t.type(err, NetlinkError);
  const ne = err as NetlinkError;
  t.equal(ne.errno, 22);
  t.equal(ne.errnoName, 'EINVAL');
  t.equal(ne.extack, 'dump not supported here');
  t.match(ne.message, /^list links: EINVAL \(.+\): dump not supported here$/);

  const bare = message(new MessageBuilder(NLMSG_DONE, NLM_F_MULTI).raw(errno(-16)));
  t.throws(() => scripted([[bare]]).dump(new MessageBuilder(RTM_GETLINK, 0), { op: 'list links' }),
    { name: 'NetlinkError', code: 'ERR_NETLINK', message: /EBUSY/ }, 'without extended ack too');
});

t.test('a dump ending with error 0 returns its parts', async (t) => {
  const done = message(new MessageBuilder(NLMSG_DONE, NLM_F_MULTI).raw(errno(0)));
  const sock = scripted([[link('lo', 1), link('eth0', 2)], [done]]);
  t.same(listLinks(sock).map((l) => l.name), ['lo', 'eth0']);
});

t.test('messages for another sequence number or port are not part of the dump', async (t) => {
  const done = message(new MessageBuilder(NLMSG_DONE, NLM_F_MULTI).raw(errno(0)));
  const sock = scripted([
    [link('forged-seq', 7, SEQ + 1), link('lo', 1)],
    [link('forged-port', 8, SEQ, 0), message(new MessageBuilder(NLMSG_DONE, NLM_F_MULTI).raw(errno(-1)), SEQ, 0)],
    [done],
  ]);
  t.same(listLinks(sock).map((l) => l.name), ['lo']);
});

t.test('a receive buffer overrun restarts the dump', async (t) => {
  const done = message(new MessageBuilder(NLMSG_DONE, NLM_F_MULTI).raw(errno(0)));
  let sends = 0;
  const script: (NlMessage[] | undefined)[] = [[link('lo', 1)], undefined, [done], [link('lo', 1), link('eth0', 2), done]];
  const sock = scripted([]);
  Object.assign(sock, { send: () => (sends++, SEQ), receive: () => script.shift() });
  t.same(listLinks(sock).map((l) => l.name), ['lo', 'eth0'], 'the second, complete dump');
  t.equal(sends, 2, 'sent twice');

  const always = scripted([]);
  let calls = 0;
  Object.assign(always, { receive: () => (++calls % 2 ? undefined : [done]) });
  t.throws(() => listLinks(always), { name: 'NetlinkError', code: 'ERR_NETLINK', message: /ENOBUFS/ }, 'bounded: gives up with a NetlinkError');
});

t.test('several requests go in one datagram, and each ack is matched to its request by sequence number', async (t) => {
  const sent: Buffer[] = [];
  const sock = scripted([]);
  const ack = (seq: number, err: number, text?: string): NlMessage => {
    const b = new MessageBuilder(NLMSG_ERROR, text === undefined ? NLM_F_CAPPED : NLM_F_CAPPED | NLM_F_ACK_TLVS).raw(errno(err)).raw(Buffer.alloc(NLMSG_HDRLEN));
    if (text !== undefined) b.str(NLMSGERR_ATTR_MSG, text);
    return message(b, seq);
  };
  let script: NlMessage[][] = [];
  Object.assign(sock, {
    seq: 500,
    transmit: (datagram: Buffer) => {
      sent.push(datagram);
      const seqs = decodeMessages(datagram).map((m) => m.seq);
      // Answered out of order, the second refused, with a stranger's ack and another port's between them.
      script = [[ack(seqs[2], 0), ack(seqs[0] + 1000, -19)], [message(new MessageBuilder(NLMSG_ERROR, 0).raw(errno(-1)).raw(Buffer.alloc(NLMSG_HDRLEN)), seqs[1], 0)],
        [ack(seqs[1], -19, 'no such device here'), ack(seqs[0], 0)]];
    },
    receive: () => script.shift(),
  });
  const del = (index: number) => new MessageBuilder(RTM_DELLINK, 0).raw(encodeIfInfo({ index }));
  const outcomes = sock.requestEach([1, 2, 3].map((i) => ({ msg: del(10 + i), ctx: { op: 'delete macvlan', device: `mv${i}` } })));
  t.equal(sent.length, 1, 'one datagram');
  const msgs = decodeMessages(sent[0]);
  t.same(msgs.map((m) => [m.type, m.flags, m.payload.readInt32LE(4)]), [11, 12, 13].map((i) => [RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, i]), 'three requests, each asking for an ack');
  t.same(msgs.map((m) => m.seq), [501, 502, 503], 'each under its own sequence number');
  t.equal(outcomes.length, 3);
  t.equal(outcomes[0], undefined, 'the first was done');
  t.equal(outcomes[2], undefined, 'the third was done');
  t.type(outcomes[1], NetlinkError);
  t.match(outcomes[1]!.message, /^delete macvlan device mv2: ENODEV \(.+\): no such device here$/, 'the refusal names its own device and carries its extended ack');
  t.same(sock.requestEach([]), [], 'nothing to send, nothing sent');
  t.equal(sent.length, 1);
});
