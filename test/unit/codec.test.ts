// The rtnetlink codec against bytes captured from the kernel (test/fixtures/*.json, made by
// test/fixtures/capture.ts): decoding gives what iproute2 saw in the same state, encoding our
// requests gives the bytes the kernel uses for the same fields, and truncated input is refused.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  attrMap, decodeAttrs, decodeIfAddr, decodeIfInfo, decodeMessages, decodeIp, IFADDRMSG_LEN, IFINFOMSG_LEN,
  MessageBuilder, NlMessage, encodeIfInfo, encodeIp,
} from '../../src/netlink/codec';
import {
  AF_INET, AF_INET6, IFA_ADDRESS, IFA_BROADCAST, IFA_CACHEINFO, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_PERMANENT,
  IFA_FLAGS, IFA_LABEL, IFA_LOCAL, IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK, IFLA_LINK_NETNSID, IFLA_MTU, IFLA_NETNS_IMMUTABLE, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE,
  NLM_F_EXCL, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RTM_NEWADDR,
  RTM_NEWLINK,
} from '../../src/netlink/constants';
import { decodeLink, getLink, setLink } from '../../src/netlink/link';
import { addAddress, decodeAddress, deleteAddress, INFINITY_LIFETIME } from '../../src/netlink/address';
import { checkAck } from '../../src/netlink/client';
import { DecodeError, NetlinkError } from '../../src/errors';
import { isPortable } from '../../src/plan/plan';
import { recorder } from '../helpers/recorder';
import { REPO_ROOT } from '../helpers/sandbox';

interface IpAddr {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope: string;
  label?: string;
  broadcast?: string;
  dynamic?: boolean;
  nodad?: boolean;
  noprefixroute?: boolean;
  valid_life_time: number;
  preferred_life_time: number;
}

interface Fixture {
  kernel: string;
  request: string;
  replies: string[];
  ifindex: number;
  ip: {
    ifname: string;
    mtu: number;
    address: string;
    ifalias: string;
    flags: string[];
    group: string;
    permaddr?: string;
    linkinfo: { info_kind: string };
    addr_info: IpAddr[];
  };
}

const fixture = (name: string): Fixture =>
  JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures', `${name}.json`), 'utf8')) as Fixture;
const hex = (s: string): Buffer => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');
const messagesOf = (f: Fixture): NlMessage[] => f.replies.flatMap((r) => decodeMessages(hex(r)));

/** The attributes of an encoded request, after its fixed header. */
function requestAttrs(bytes: Buffer, fixedLen: number): Map<number, Buffer> {
  const [m] = decodeMessages(bytes);
  return attrMap(decodeAttrs(m.payload, fixedLen));
}

const v4Of = (parts: NlMessage[]) => decodeAddress(parts.find((p) => decodeAddress(p).address === '192.0.2.10')!);

/**
 * Where a payload may end and still hold whole attributes: after the fixed header, and after each
 * top-level attribute with all, part or none of its padding. Walked here without the code under test.
 */
function boundaries(payload: Buffer, start: number): number[] {
  const out = [start];
  for (let off = start; off < payload.length; ) {
    const len = payload.readUInt16LE(off);
    const padded = Math.min(off + ((len + 3) & ~3), payload.length);
    for (let end = off + len; end <= padded; end++) out.push(end);
    off = padded;
  }
  return out;
}

const IFF: Record<string, number> = { UP: 0x1, BROADCAST: 0x2, LOOPBACK: 0x8, NOARP: 0x80, MULTICAST: 0x1000, LOWER_UP: 0x10000 };
const SCOPES: Record<string, number> = { global: RT_SCOPE_UNIVERSE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST };

t.test('RTM_NEWLINK from the kernel decodes to what ip shows', async (t) => {
  const f = fixture('newlink');
  const msgs = messagesOf(f);
  t.same(msgs.map((m) => m.type), [RTM_NEWLINK, NLMSG_ERROR], 'the link, then the ack');
  t.ok(msgs.every((m) => m.seq === 1), 'replies carry the request seq');
  t.equal(msgs[1].payload.readInt32LE(0), 0, 'the ack carries error 0');

  const link = decodeLink(msgs[0]);
  t.equal(link.index, f.ifindex);
  t.equal(link.name, f.ip.ifname);
  t.equal(link.name, 'ontfix-nic');
  t.equal(link.mtu, f.ip.mtu);
  t.equal(link.mtu, 1400);
  t.equal(link.mac, f.ip.address);
  t.equal(link.mac, '02:00:5e:00:53:01');
  t.equal(link.permanentMac, f.ip.permaddr ?? null, 'a veth has no permanent address');
  t.equal(link.alias, f.ip.ifalias);
  t.equal(link.alias, 'fixture stand-in nic');
  t.equal(link.kind, f.ip.linkinfo.info_kind);
  t.equal(link.kind, 'veth');
  t.equal(link.group, 0, `group ${f.ip.group}`);
  t.equal(link.up, true);
  t.type(link.linkIndex, 'number', 'IFLA_LINK (the peer) is read');
  t.equal(link.masterIndex, null);
  for (const [name, bit] of Object.entries(IFF)) {
    t.equal((link.flags & bit) !== 0, f.ip.flags.includes(name), `IFF_${name} as ip shows it`);
  }
});

t.test('IFLA_LINK_NETNSID (signed) and IFLA_NETNS_IMMUTABLE (u8) are decoded, null when absent', async (t) => {
  const msg = (build: (b: MessageBuilder) => void): NlMessage => {
    const b = new MessageBuilder(RTM_NEWLINK, 0).raw(encodeIfInfo({ index: 7 }));
    build(b);
    return decodeMessages(b.finish(1))[0];
  };
  const far = decodeLink(msg((b) => b.str(IFLA_IFNAME, 'mv0').u32(IFLA_LINK, 3).u32(IFLA_LINK_NETNSID, 2).attr(IFLA_NETNS_IMMUTABLE, Buffer.from([1]))));
  t.same([far.linkIndex, far.linkNetnsid, far.netnsImmutable], [3, 2, true]);
  const unassigned = decodeLink(msg((b) => b.u32(IFLA_LINK_NETNSID, 0xffffffff).attr(IFLA_NETNS_IMMUTABLE, Buffer.from([0]))));
  t.same([unassigned.linkNetnsid, unassigned.netnsImmutable], [-1, false], 'NETNSA_NSID_NOT_ASSIGNED is -1');
  const old = decodeLink(msg((b) => b.str(IFLA_IFNAME, 'eth0')));
  t.same([old.linkIndex, old.linkNetnsid, old.netnsImmutable], [null, null, null], 'a kernel that says nothing');
  t.throws(() => decodeLink(msg((b) => b.attr(IFLA_NETNS_IMMUTABLE, Buffer.alloc(0)))), DecodeError, 'an empty u8 is a decode error');
});

t.test('RTM_NEWADDR parts from the kernel decode to what ip shows', async (t) => {
  const f = fixture('newaddr');
  const msgs = messagesOf(f);
  t.equal(msgs.at(-1)!.type, NLMSG_DONE, 'the dump ends with NLMSG_DONE');
  const parts = msgs.filter((m) => m.type === RTM_NEWADDR);
  t.ok(parts.every((m) => m.flags & NLM_F_MULTI), 'dump parts are NLM_F_MULTI');
  const decoded = parts.map(decodeAddress);
  t.equal(decoded.length, f.ip.addr_info.length, 'one address per ip entry');
  t.ok(decoded.every((a) => a.index === f.ifindex), 'all on the fixture device');

  for (const ip of f.ip.addr_info) {
    const a = decoded.find((d) => (d.local ?? d.address) === ip.local && d.prefixlen === ip.prefixlen);
    if (!a) {
      t.fail(`${ip.local}/${ip.prefixlen} decoded`);
      continue;
    }
    const what = `${ip.local}/${ip.prefixlen}`;
    t.equal(a.family, ip.family === 'inet' ? AF_INET : AF_INET6, `${what} family`);
    t.equal(a.scope, SCOPES[ip.scope], `${what} scope ${ip.scope}`);
    t.equal(a.label, ip.label, `${what} label`);
    t.equal(a.broadcast, ip.broadcast, `${what} broadcast`);
    t.equal((a.flags & IFA_F_PERMANENT) !== 0, !ip.dynamic, `${what} permanent unless dynamic`);
    t.equal((a.flags & IFA_F_NODAD) !== 0, !!ip.nodad, `${what} nodad`);
    t.equal((a.flags & IFA_F_NOPREFIXROUTE) !== 0, !!ip.noprefixroute, `${what} noprefixroute (only in IFA_FLAGS)`);
    t.equal(a.validLifetime, ip.valid_life_time, `${what} valid lifetime`);
    t.equal(a.preferredLifetime, ip.preferred_life_time, `${what} preferred lifetime`);
  }

  const v4 = decoded.find((a) => a.local === '192.0.2.10')!;
  t.match(v4, { family: AF_INET, prefixlen: 24, address: '192.0.2.10', broadcast: '192.0.2.255', label: 'ontfix-nic:web' });
  const dyn = decoded.find((a) => a.local === '198.51.100.7')!;
  t.ok(dyn.validLifetime <= 300 && dyn.preferredLifetime <= 200, 'finite lifetimes of a dynamic address');
  t.equal(decoded.find((a) => a.address === '2001:db8::1:0:0:1')?.prefixlen, 80, 'IPv6 text is in RFC 5952 form');
  t.same(
    decoded.filter(isPortable).map((a) => a.address).sort(),
    ['192.0.2.10', '2001:db8::10', '2001:db8::1:0:0:1'],
    'only permanent global addresses move with a device (not link scope, not dynamic, not fe80::)',
  );
});

t.test('NLMSG_ERROR with extended ack from the kernel', async (t) => {
  const f = fixture('error-extack');
  const [m] = messagesOf(f);
  t.equal(m.type, NLMSG_ERROR);
  t.equal(m.seq, 3);
  t.ok(m.flags & NLM_F_CAPPED, 'capped: the request is not echoed (NETLINK_CAP_ACK)');
  t.ok(m.flags & NLM_F_ACK_TLVS, 'carries TLVs (NETLINK_EXT_ACK)');
  t.equal(m.payload.readInt32LE(0), -22, 'EINVAL');
  t.same(m.payload.subarray(4, 20), hex(f.request).subarray(0, 16), 'the echoed header is our request header');

  // Through the client's own ack check, the way every request ends.
  let err: unknown;
  try {
    checkAck(m, { op: 'set mtu', device: 'ontfix-nic' });
  } catch (e) {
    err = e;
  }
  t.type(err, NetlinkError);
  const ne = err as NetlinkError;
  t.equal(ne.errno, 22);
  t.equal(ne.errnoName, 'EINVAL');
  t.equal(ne.extack, 'mtu less than device minimum');
  t.equal(ne.device, 'ontfix-nic');
  t.match(ne.message, /^set mtu device ontfix-nic: EINVAL \(.+\): mtu less than device minimum$/);
  t.notMatch(ne.message, /\n/, 'one line');

  // An ack (error 0) passes.
  const ack = messagesOf(fixture('newlink'))[1];
  t.doesNotThrow(() => checkAck(ack, { op: 'get link' }));
});

t.test('requests encode to the expected bytes', async (t) => {
  const { sock, sent } = recorder();

  getLink(sock, { name: 'ontfix-nic' });
  t.equal(sent[0].toString('hex'), hex(`
    30000000 1200 0000 01000000 00000000
    00 00 0000 00000000 00000000 00000000
    0f00 0300 6f6e746669782d6e696300 00`).toString('hex'), 'RTM_GETLINK by name (flags come from the client)');
  // Apart from the flags the client sets at send time, the same bytes the kernel answered.
  const fromFixture = hex(fixture('newlink').request);
  fromFixture.writeUInt16LE(0, 6);
  t.same(sent[0], fromFixture, 'the request the fixture was captured with');

  setLink(sock, 7, { netnsFd: 9, name: 'eth1' }, { op: 'move', device: 'x' });
  t.equal(sent[1].toString('hex'), hex(`
    34000000 1000 0000 01000000 00000000
    00 00 0000 07000000 00000000 00000000
    0800 1c00 09000000
    0900 0300 6574683100 000000`).toString('hex'), 'move and rename in one RTM_NEWLINK, up/down untouched');

  setLink(sock, 7, { up: true }, { op: 'up', device: 'x' });
  t.equal(sent[2].toString('hex'), hex(`
    20000000 1000 0000 01000000 00000000
    00 00 0000 07000000 01000000 01000000`).toString('hex'), 'set up: IFF_UP in flags and change');

  setLink(sock, 7, { up: false, alias: '' }, { op: 'down', device: 'x' });
  t.equal(sent[3].toString('hex'), hex(`
    24000000 1000 0000 01000000 00000000
    00 00 0000 07000000 00000000 01000000
    0400 1400`).toString('hex'), 'set down, and an empty IFLA_IFALIAS removes the alias');

  const nested = new MessageBuilder(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)
    .nest(18, (b) => b.str(1, 'veth').nest(2, (d) => d.u32(9, 0x01020304)))
    .finish(5);
  t.equal(nested.toString('hex'), hex(`
    2c000000 1000 0006 05000000 00000000
    1c00 1280
      0900 0100 7665746800 000000
      0c00 0280
        0800 0900 04030201`).toString('hex'), 'nested attributes carry NLA_F_NESTED and their full length');
});

t.test('address requests carry the same attribute bytes as the kernel reply', async (t) => {
  const parts = messagesOf(fixture('newaddr')).filter((m) => m.type === RTM_NEWADDR);
  const { sock, sent } = recorder();
  for (const part of parts) {
    const a = decodeAddress(part);
    if (!isPortable(a)) continue;
    const what = `${a.address}/${a.prefixlen}`;
    addAddress(sock, a.index, a, { op: 'add', device: 'x' });
    const req = sent.at(-1)!;
    const [m] = decodeMessages(req);
    t.equal(m.type, RTM_NEWADDR, `${what}: RTM_NEWADDR`);
    t.equal(m.flags, NLM_F_CREATE | NLM_F_EXCL, `${what}: create, exclusive`);
    const kernelHdr = decodeIfAddr(part.payload);
    t.same(decodeIfAddr(m.payload), { ...kernelHdr, flags: kernelHdr.flags & IFA_F_NODAD }, `${what}: ifaddrmsg (kernel-state flags dropped)`);
    const ours = requestAttrs(req, IFADDRMSG_LEN);
    const theirs = attrMap(decodeAttrs(part.payload, IFADDRMSG_LEN));
    for (const type of [IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_LABEL]) {
      t.same(ours.get(type), theirs.get(type), `${what}: attribute ${type} byte for byte`);
    }
    t.equal(ours.get(IFA_FLAGS)!.readUInt32LE(0), a.flags & (IFA_F_NODAD | IFA_F_NOPREFIXROUTE), `${what}: IFA_FLAGS keeps nodad/noprefixroute, not permanent`);
    t.notOk(ours.has(IFA_CACHEINFO), `${what}: permanent, so no lifetimes sent`);
  }
  t.equal(sent.length, 3, 'three portable addresses encoded');

  // The IPv4 one, by hand.
  t.equal(sent[0].toString('hex'), hex(`
    4c000000 1400 0006 01000000 00000000
    02 18 00 00 03000000
    0800 0200 c000020a
    0800 0100 c000020a
    0800 0400 c00002ff
    1300 0300 6f6e746669782d6e69633a77656200 00
    0800 0800 00000000`).toString('hex'), '192.0.2.10/24 brd 192.0.2.255 label ontfix-nic:web');

  // A finite lifetime is sent as IFA_CACHEINFO.
  const dyn = decodeAddress(parts.find((p) => decodeAddress(p).address === '198.51.100.7')!);
  addAddress(sock, 3, dyn, { op: 'add', device: 'x' });
  const ci = requestAttrs(sent.at(-1)!, IFADDRMSG_LEN).get(IFA_CACHEINFO);
  t.ok(ci, 'lifetimes sent');
  t.same([ci!.readUInt32LE(0), ci!.readUInt32LE(4)], [dyn.preferredLifetime, dyn.validLifetime], 'preferred, then valid');
  t.not(dyn.validLifetime, INFINITY_LIFETIME);

  // A delete names the address only.
  deleteAddress(sock, 3, v4Of(parts), { op: 'del', device: 'x' });
  t.same([...requestAttrs(sent.at(-1)!, IFADDRMSG_LEN).keys()].sort(), [IFA_ADDRESS, IFA_LOCAL], 'an IPv4 delete carries local and address only');
});

t.test('link requests carry the same attribute bytes as the kernel reply', async (t) => {
  const [m] = messagesOf(fixture('newlink'));
  const link = decodeLink(m);
  const { sock, sent } = recorder();
  setLink(sock, link.index, { name: link.name, mtu: link.mtu, mac: link.mac!, alias: link.alias }, { op: 'set', device: link.name });
  const ours = requestAttrs(sent[0], IFINFOMSG_LEN);
  const theirs = attrMap(decodeAttrs(m.payload, IFINFOMSG_LEN));
  for (const type of [IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS]) t.same(ours.get(type), theirs.get(type), `attribute ${type} byte for byte`);
  t.equal(decodeIfInfo(sent[0].subarray(16)).index, link.index);
});

t.test('truncated input is refused with DecodeError', async (t) => {
  const all = [...fixture('newlink').replies, ...fixture('newaddr').replies, ...fixture('error-extack').replies].map(hex);
  /** The cuts where `decode` did not throw DecodeError. */
  const accepted = (len: number, skip: Set<number>, decode: (cut: number) => unknown): number[] => {
    const out: number[] = [];
    for (let cut = 0; cut < len; cut++) {
      if (skip.has(cut)) continue;
      try {
        decode(cut);
        out.push(cut);
      } catch (err) {
        if (!(err instanceof DecodeError)) out.push(cut);
      }
    }
    return out;
  };
  let cuts = 0;
  for (const dgram of all) {
    const ends = new Set<number>([0]);
    for (let off = 0; off < dgram.length; ) ends.add((off += (dgram.readUInt32LE(off) + 3) & ~3));
    for (const end of ends) if (end < dgram.length) t.doesNotThrow(() => decodeMessages(dgram.subarray(0, end)), `cut at a message end (${end})`);
    cuts += dgram.length - ends.size;
    t.same(accepted(dgram.length, ends, (cut) => decodeMessages(dgram.subarray(0, cut))), [], `datagram of ${dgram.length} bytes: every cut inside a message is refused`);
  }
  t.ok(cuts > 2000, `${cuts} cuts tried`);

  // A message whose own length is consistent but whose attributes are cut short.
  const cutPayload = (m: NlMessage, len: number): NlMessage => ({ ...m, payload: m.payload.subarray(0, len) });
  const [linkMsg] = messagesOf(fixture('newlink'));
  const addrMsgs = messagesOf(fixture('newaddr')).filter((m) => m.type === RTM_NEWADDR);
  const cases: [NlMessage, number, (m: NlMessage) => unknown][] = [
    [linkMsg, IFINFOMSG_LEN, decodeLink],
    ...addrMsgs.map((m): [NlMessage, number, (m: NlMessage) => unknown] => [m, IFADDRMSG_LEN, decodeAddress]),
  ];
  for (const [msg, fixedLen, decode] of cases) {
    const ok = new Set(boundaries(msg.payload, fixedLen));
    t.same(accepted(msg.payload.length, ok, (len) => decode(cutPayload(msg, len))), [], `type ${msg.type} (${msg.payload.length} bytes): every cut inside the header or an attribute is refused`);
  }
  t.throws(() => decodeIfInfo(Buffer.alloc(15)), DecodeError);
  t.throws(() => decodeIfAddr(Buffer.alloc(7)), DecodeError);
  t.throws(() => decodeAttrs(hex('0800 0300 6162')), DecodeError, 'attribute longer than its buffer');
  t.throws(() => decodeAttrs(hex('0300 0300')), DecodeError, 'attribute shorter than its header');
  t.throws(() => decodeMessages(hex('0f000000 0300 0000 01000000 00000000')), DecodeError, 'message shorter than its header');
});

t.test('decodeIp and encodeIp', async (t) => {
  // [bytes as 8 words, RFC 5952 text]
  const v6: [string, string][] = [
    ['0000 0000 0000 0000 0000 0000 0000 0000', '::'],
    ['0000 0000 0000 0000 0000 0000 0000 0001', '::1'],
    ['0001 0000 0000 0000 0000 0000 0000 0000', '1::'],
    ['2001 0db8 0000 0000 0000 0000 0000 0001', '2001:db8::1'],
    ['2001 0db8 0000 0000 0001 0000 0000 0001', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001 0db8 0000 0001 0000 0000 0000 0001', '2001:db8:0:1::1'], // the longer run, not the first
    ['2001 0db8 0000 0001 0001 0001 0001 0001', '2001:db8:0:1:1:1:1:1'], // one zero word stays
    ['2001 0db8 0001 0002 0003 0004 0005 0000', '2001:db8:1:2:3:4:5:0'],
    ['fe80 0000 0000 0000 5eff fe00 5301 0000', 'fe80::5eff:fe00:5301:0'],
    ['0001 0000 0002 0000 0000 0003 0000 0000', '1:0:2::3:0:0'],
    ['abcd ef01 2345 6789 abcd ef01 2345 6789', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'],
    ['0000 0000 0000 0000 0000 ffff c000 0201', '::ffff:c000:201'],
  ];
  for (const [words, text] of v6) {
    const bytes = hex(words);
    t.equal(decodeIp(bytes), text, `format ${text}`);
    t.same(encodeIp(text), bytes, `parse ${text}`);
  }
  // Other spellings of the same addresses parse to the same bytes.
  const same: [string, string][] = [
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1::1', '2001:db8::1:0:0:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [text, canonical] of same) t.same(encodeIp(text), encodeIp(canonical), `${text} = ${canonical}`);
  for (const text of ['1::2::3', '1:2:3:4:5:6:7:8::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', ':1::', '12345::', 'g::1', 'fe80::1%eth0', ':::']) {
    t.throws(() => encodeIp(text), DecodeError, `refuses ${text}`);
  }
  for (const text of ['0.0.0.0', '192.0.2.1', '255.255.255.255']) t.equal(decodeIp(encodeIp(text)), text);
  for (const text of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '1.2.3.a', '']) t.throws(() => encodeIp(text), DecodeError, `refuses ${JSON.stringify(text)}`);
  t.throws(() => decodeIp(Buffer.alloc(5)), DecodeError, 'an address attribute of 5 bytes');
});
