// Default-route decoding (src/netlink/route.ts) on hand-built kernel replies.
import t from 'tap';
import { MessageBuilder, decodeMessages } from '../../src/netlink/codec';
import { DecodeError } from '../../src/errors';
import {
  NHA_GROUP, NHA_ID, NHA_OIF, NHMSG_LEN, RTA_GATEWAY, RTA_MULTIPATH, RTA_NH_ID, RTA_OIF, RTA_TABLE, RTM_NEWNEXTHOP,
  RTM_NEWROUTE, RTN_UNICAST, RT_TABLE_MAIN, decodeMultipath, decodeNexthop, decodeRoute, defaultRoutesOf, encodeRtMsg,
} from '../../src/netlink/route';

interface R { family?: number; dstLen?: number; table?: number; type?: number; attrs?: (b: MessageBuilder) => void }

function route(r: R) {
  const hdr = encodeRtMsg({ family: r.family ?? 2, table: r.table ?? RT_TABLE_MAIN, type: r.type ?? RTN_UNICAST });
  hdr.writeUInt8(r.dstLen ?? 0, 1);
  const b = new MessageBuilder(RTM_NEWROUTE, 0).raw(hdr);
  r.attrs?.(b);
  return decodeRoute(decodeMessages(b.finish(1))[0]);
}

/** RTA_MULTIPATH payload: rtnexthop {len, flags, hops, ifindex} + an RTA_GATEWAY each. */
function multipath(indexes: number[]): Buffer {
  return Buffer.concat(indexes.map((i) => {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(16, 0);
    b.writeInt32LE(i, 4);
    b.writeUInt16LE(8, 8);
    b.writeUInt16LE(RTA_GATEWAY, 10);
    b.set([192, 0, 2, i], 12);
    return b;
  }));
}

t.test('a plain default route and its output link', async (t) => {
  const r = route({ attrs: (b) => b.u32(RTA_TABLE, RT_TABLE_MAIN).u32(RTA_OIF, 7) });
  t.same(r, { family: 2, dstLen: 0, table: 254, type: 1, oif: 7, multipath: [], nhId: 0 });
  t.same(defaultRoutesOf([r]), [{ family: 2, index: 7 }]);
});

t.test('only unicast routes with prefix length 0 in the main table count', async (t) => {
  const routes = [
    route({ dstLen: 8, attrs: (b) => b.u32(RTA_OIF, 1) }),
    route({ table: 100, attrs: (b) => b.u32(RTA_OIF, 2) }),
    route({ table: 252, attrs: (b) => b.u32(RTA_TABLE, 1000).u32(RTA_OIF, 3) }),
    route({ type: 6, attrs: (b) => b.u32(RTA_OIF, 4) }),
    route({ family: 7, attrs: (b) => b.u32(RTA_OIF, 5) }),
    route({ family: 10, attrs: (b) => b.u32(RTA_OIF, 6) }),
    route({ family: 10, attrs: (b) => b.u32(RTA_OIF, 6) }),
  ];
  t.equal(routes[2].table, 1000, 'RTA_TABLE wins over rtm_table');
  t.same(defaultRoutesOf(routes), [{ family: 10, index: 6 }], 'one entry per family and link');
});

t.test('multipath default routes name every nexthop', async (t) => {
  const r = route({ attrs: (b) => b.attr(RTA_MULTIPATH, multipath([3, 5])) });
  t.same(r.multipath, [3, 5]);
  t.same(defaultRoutesOf([r]), [{ family: 2, index: 3 }, { family: 2, index: 5 }]);
  const bad = multipath([3]);
  bad.writeUInt16LE(40, 0);
  t.throws(() => decodeMultipath(bad), DecodeError, 'an rtnexthop longer than the attribute');
  bad.writeUInt16LE(4, 0);
  t.throws(() => decodeMultipath(bad), DecodeError, 'an rtnexthop shorter than its header');
  const nested = multipath([3]);
  nested.writeUInt16LE(200, 8);
  t.throws(() => decodeMultipath(nested), DecodeError, 'a nexthop attribute that overruns its rtnexthop');
});

t.test('routes through nexthop objects resolve through the nexthop table', async (t) => {
  const nh = (id: number, build: (b: MessageBuilder) => void) => {
    const b = new MessageBuilder(RTM_NEWNEXTHOP, 0).raw(Buffer.alloc(NHMSG_LEN)).u32(NHA_ID, id);
    build(b);
    return decodeNexthop(decodeMessages(b.finish(1))[0]);
  };
  const grp = Buffer.alloc(16);
  grp.writeUInt32LE(1, 0);
  grp.writeUInt32LE(2, 8);
  const nexthops = [nh(1, (b) => b.u32(NHA_OIF, 11)), nh(2, (b) => b.u32(NHA_OIF, 12)), nh(3, (b) => b.attr(NHA_GROUP, grp))];
  t.same(nexthops[2], { id: 3, oif: 0, group: [1, 2] });
  const routes = [route({ attrs: (b) => b.u32(RTA_NH_ID, 3) }), route({ family: 10, attrs: (b) => b.u32(RTA_NH_ID, 1) })];
  t.same(defaultRoutesOf(routes, nexthops), [{ family: 2, index: 11 }, { family: 2, index: 12 }, { family: 10, index: 11 }]);
  t.same(defaultRoutesOf(routes, []), [], 'an unknown nexthop names no link');
  t.throws(() => nh(4, (b) => b.attr(NHA_GROUP, Buffer.alloc(12))), DecodeError, 'a group of 12 bytes is not whole entries');
});

t.test('short headers and attributes are DecodeErrors', async (t) => {
  const short = new MessageBuilder(RTM_NEWROUTE, 0).raw(Buffer.alloc(8)).finish(1);
  t.throws(() => decodeRoute(decodeMessages(short)[0]), DecodeError);
  t.throws(() => route({ attrs: (b) => b.attr(RTA_OIF, Buffer.alloc(2)) }), DecodeError, 'a 2-byte RTA_OIF');
});
