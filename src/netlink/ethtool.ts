// The kernel's ethtool settings of a device over generic netlink (the "ethtool" family,
// Documentation/networking/ethtool-netlink.rst): read each group of settings the driver reports,
// and change the ones that differ. Bit sets travel by name (verbose form), so a record does not
// depend on the kernel's bit numbering. Sockets connect to the kernel like the rtnetlink client's.

import { NetlinkSocket, RequestContext } from './client';
import { MessageBuilder, NlMessage, attrMap, attrString, attrU8, attrU32, decodeAttrs } from './codec';
import { CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY, GENL_HDRLEN, GENL_ID_CTRL, NETLINK_GENERIC } from './constants';
import { DecodeError, NetlinkError } from '../errors';

const ETHTOOL_GENL_VERSION = 1;
const EOPNOTSUPP = 95;
const GENL_CTRL_VERSION = 2;
/** ETHTOOL_A_*_HEADER is attribute 1 of every message; its DEV_INDEX and FLAGS. */
const A_HEADER = 1;
const A_HEADER_DEV_INDEX = 1;
const A_HEADER_FLAGS = 3;
const FLAG_OMIT_REPLY = 2;
// bit sets (ETHTOOL_A_BITSET_*)
const A_BITSET_NOMASK = 1;
const A_BITSET_BITS = 3;
const A_BITSET_BITS_BIT = 1;
const A_BITSET_BIT_NAME = 2;
const A_BITSET_BIT_VALUE = 3;
// FEATURES
const MSG_FEATURES_GET = 11;
const MSG_FEATURES_SET = 12;
const A_FEATURES_HW = 2;
const A_FEATURES_WANTED = 3;
const A_FEATURES_ACTIVE = 4;

/** A setting's width on the wire. */
type Width = 'u8' | 'u32';

interface NumberGroup {
  get: number;
  set: number;
  /** Setting name -> [attribute, width]: only what the SET request accepts (its policy), not maxima or state. */
  attrs: Record<string, [number, Width]>;
}

/** Groups of numeric settings (ETHTOOL_MSG_*_GET and _SET), from linux/ethtool_netlink_generated.h. */
const NUMBER_GROUPS = {
  linkInfo: { get: 2, set: 3, attrs: { port: [2, 'u8'], phyAddress: [3, 'u8'], mdixControl: [5, 'u8'] } },
  rings: {
    get: 15, set: 16, attrs: {
      rx: [6, 'u32'], rxMini: [7, 'u32'], rxJumbo: [8, 'u32'], tx: [9, 'u32'], rxBufLen: [10, 'u32'], tcpDataSplit: [11, 'u8'],
      cqeSize: [12, 'u32'], txPush: [13, 'u8'], rxPush: [14, 'u8'], txPushBufLen: [15, 'u32'], hdsThreshold: [17, 'u32'],
    },
  },
  channels: { get: 17, set: 18, attrs: { rx: [6, 'u32'], tx: [7, 'u32'], other: [8, 'u32'], combined: [9, 'u32'] } },
  coalesce: {
    get: 19, set: 20, attrs: {
      rxUsecs: [2, 'u32'], rxMaxFrames: [3, 'u32'], rxUsecsIrq: [4, 'u32'], rxMaxFramesIrq: [5, 'u32'],
      txUsecs: [6, 'u32'], txMaxFrames: [7, 'u32'], txUsecsIrq: [8, 'u32'], txMaxFramesIrq: [9, 'u32'],
      statsBlockUsecs: [10, 'u32'], adaptiveRx: [11, 'u8'], adaptiveTx: [12, 'u8'],
      pktRateLow: [13, 'u32'], rxUsecsLow: [14, 'u32'], rxMaxFramesLow: [15, 'u32'], txUsecsLow: [16, 'u32'], txMaxFramesLow: [17, 'u32'],
      pktRateHigh: [18, 'u32'], rxUsecsHigh: [19, 'u32'], rxMaxFramesHigh: [20, 'u32'], txUsecsHigh: [21, 'u32'], txMaxFramesHigh: [22, 'u32'],
      rateSampleInterval: [23, 'u32'], cqeModeTx: [24, 'u8'], cqeModeRx: [25, 'u8'],
      txAggrMaxBytes: [26, 'u32'], txAggrMaxFrames: [27, 'u32'], txAggrTimeUsecs: [28, 'u32'],
    },
  },
  pause: { get: 21, set: 22, attrs: { autoneg: [2, 'u8'], rx: [3, 'u8'], tx: [4, 'u8'] } },
  eee: { get: 23, set: 24, attrs: { enabled: [5, 'u8'], txLpiEnabled: [6, 'u8'], txLpiTimer: [7, 'u32'] } },
  module: { get: 34, set: 35, attrs: { powerModePolicy: [2, 'u8'] } },
} as const satisfies Record<string, NumberGroup>;

/** Groups that are one named bit set (ETHTOOL_MSG_*_GET and _SET). */
const FLAG_GROUPS = {
  /** The driver's message level (ethtool msglvl). */
  messages: { get: 7, set: 8, attr: 2 },
  wakeOnLan: { get: 9, set: 10, attr: 2 },
  privateFlags: { get: 13, set: 14, attr: 2 },
} as const satisfies Record<string, { get: number; set: number; attr: number }>;

export type NumberGroupName = keyof typeof NUMBER_GROUPS;
export type FlagGroupName = keyof typeof FLAG_GROUPS;
export const NUMBER_GROUP_NAMES = Object.keys(NUMBER_GROUPS) as NumberGroupName[];
export const FLAG_GROUP_NAMES = Object.keys(FLAG_GROUPS) as FlagGroupName[];

/** Offload features that can change (ethtool -k without [fixed]): what was asked for, and what is on. */
export interface Features {
  wanted: Record<string, boolean>;
  active: Record<string, boolean>;
}

/**
 * A device's ethtool settings, by group; a group the driver does not report (EOPNOTSUPP) is absent.
 * Numbers and flags are the kernel's values; names are ethtool's own (netdev_features strings, ...).
 */
export type EthtoolSettings = { features?: Features }
  & { [G in NumberGroupName]?: Record<string, number> }
  & { [G in FlagGroupName]?: Record<string, boolean> };

/** A generic netlink socket that talks to the ethtool family, whose id the kernel chose at boot. */
export class EthtoolSocket implements Disposable {
  private constructor(private readonly sock: NetlinkSocket, readonly family: number) {}

  /** In the calling thread's network namespace; null when the kernel has no ethtool family. */
  static open(): EthtoolSocket | null {
    const sock = NetlinkSocket.open(undefined, NETLINK_GENERIC);
    try {
      const req = genlMessage(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, GENL_CTRL_VERSION).str(CTRL_ATTR_FAMILY_NAME, 'ethtool');
      let replies: NlMessage[];
      try {
        replies = sock.request(req, { op: 'resolve the ethtool netlink family' });
      } catch (err) {
        if (err instanceof NetlinkError && err.errnoName === 'ENOENT') { sock.close(); return null; }
        throw err;
      }
      const id = replies.map((m) => genlAttrs(m).get(CTRL_ATTR_FAMILY_ID)).find((a) => a !== undefined);
      if (!id || id.length < 2) throw new DecodeError('the generic netlink controller named no id for ethtool');
      return new EthtoolSocket(sock, id.readUInt16LE(0));
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  /** Every group the driver of link `index` reports. */
  read(index: number, device: string): EthtoolSettings {
    const out: EthtoolSettings = {};
    const features = this.readFeatures(index, device);
    if (features) out.features = features;
    for (const name of NUMBER_GROUP_NAMES) {
      const values = this.readNumbers(name, index, device);
      if (values) out[name] = values;
    }
    for (const name of FLAG_GROUP_NAMES) {
      const flags = this.readFlags(name, index, device);
      if (flags) out[name] = flags;
    }
    return out;
  }

  readFeatures(index: number, device: string): Features | null {
    const attrs = this.get(MSG_FEATURES_GET, index, { op: 'read offload features', device });
    if (!attrs) return null;
    const bits = (type: number) => { const a = attrs.get(type); return a ? decodeBitset(a) : {}; };
    const changeable = Object.keys(bits(A_FEATURES_HW)).filter((n) => bits(A_FEATURES_HW)[n]);
    const wanted = bits(A_FEATURES_WANTED);
    const active = bits(A_FEATURES_ACTIVE);
    return {
      wanted: Object.fromEntries(changeable.map((n) => [n, wanted[n] ?? false])),
      active: Object.fromEntries(changeable.map((n) => [n, active[n] ?? false])),
    };
  }

  /** Asks for the changeable features in `wanted` (the kernel then works out which can be active). */
  setFeatures(index: number, wanted: Record<string, boolean>, device: string): void {
    const req = this.message(MSG_FEATURES_SET, index, FLAG_OMIT_REPLY);
    req.nest(A_FEATURES_WANTED, (b) => encodeBits(b, wanted));
    this.sock.request(req, { op: 'restore offload features', device });
  }

  readNumbers(group: NumberGroupName, index: number, device: string): Record<string, number> | null {
    const spec: NumberGroup = NUMBER_GROUPS[group];
    const attrs = this.get(spec.get, index, { op: `read ${group}`, device });
    if (!attrs) return null;
    const out: Record<string, number> = {};
    for (const [name, [type, width]] of Object.entries(spec.attrs)) {
      const a = attrs.get(type);
      if (a) out[name] = width === 'u8' ? attrU8(a) : attrU32(a);
    }
    return out;
  }

  setNumbers(group: NumberGroupName, index: number, values: Record<string, number>, device: string): void {
    const spec: NumberGroup = NUMBER_GROUPS[group];
    const req = this.message(spec.set, index);
    for (const [name, value] of Object.entries(values)) {
      const known = spec.attrs[name];
      if (!known) throw new DecodeError(`ethtool ${group}: no setting named ${name}`, { device });
      if (known[1] === 'u8') req.u8(known[0], value);
      else req.u32(known[0], value);
    }
    this.sock.request(req, { op: `restore ${group}`, device });
  }

  readFlags(group: FlagGroupName, index: number, device: string): Record<string, boolean> | null {
    const spec = FLAG_GROUPS[group];
    const attrs = this.get(spec.get, index, { op: `read ${group}`, device });
    if (!attrs) return null;
    const set = attrs.get(spec.attr);
    return set ? decodeBitset(set) : null;
  }

  /** Exactly the flags named true on, every other one off. */
  setFlags(group: FlagGroupName, index: number, flags: Record<string, boolean>, device: string): void {
    const spec = FLAG_GROUPS[group];
    const on = Object.fromEntries(Object.entries(flags).filter(([, v]) => v));
    const req = this.message(spec.set, index);
    req.nest(spec.attr, (b) => { b.attr(A_BITSET_NOMASK, Buffer.alloc(0)); encodeBits(b, on); });
    this.sock.request(req, { op: `restore ${group}`, device });
  }

  close(): void {
    this.sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private message(cmd: number, index: number, flags = 0): MessageBuilder {
    return genlMessage(this.family, cmd, ETHTOOL_GENL_VERSION)
      .nest(A_HEADER, (h) => { h.u32(A_HEADER_DEV_INDEX, index); if (flags) h.u32(A_HEADER_FLAGS, flags); });
  }

  /** The reply's attributes; null when the driver does not report this group. */
  private get(cmd: number, index: number, ctx: RequestContext): Map<number, Buffer> | null {
    try {
      const replies = this.sock.request(this.message(cmd, index), ctx);
      const reply = replies.find((m) => m.type === this.family);
      return reply ? genlAttrs(reply) : null;
    } catch (err) {
      // EOPNOTSUPP, which the C library names ENOTSUP (the same number on Linux).
      if (err instanceof NetlinkError && err.errno === EOPNOTSUPP) return null;
      throw err;
    }
  }
}

function genlMessage(family: number, cmd: number, version: number): MessageBuilder {
  return new MessageBuilder(family, 0).raw(Buffer.from([cmd, version, 0, 0]));
}

function genlAttrs(m: NlMessage): Map<number, Buffer> {
  if (m.payload.length < GENL_HDRLEN) throw new DecodeError(`generic netlink message has ${m.payload.length} bytes`);
  return attrMap(decodeAttrs(m.payload, GENL_HDRLEN));
}

/**
 * A verbose bit set: name -> on. In the list form (NOMASK) only the bits that are on are listed;
 * with a mask, every bit of the mask is, its VALUE flag saying whether it is on.
 */
function decodeBitset(data: Buffer): Record<string, boolean> {
  const attrs = attrMap(decodeAttrs(data));
  const list = attrs.has(A_BITSET_NOMASK);
  const bits = attrs.get(A_BITSET_BITS);
  const out: Record<string, boolean> = {};
  if (!bits) return out;
  for (const bit of decodeAttrs(bits).filter((a) => a.type === A_BITSET_BITS_BIT)) {
    const b = attrMap(decodeAttrs(bit.data));
    const name = b.get(A_BITSET_BIT_NAME);
    if (name) out[attrString(name)] = list || b.has(A_BITSET_BIT_VALUE);
  }
  return out;
}

/** The named bits with their values (VALUE flag on the ones that are on). */
function encodeBits(b: MessageBuilder, bits: Record<string, boolean>): void {
  b.nest(A_BITSET_BITS, (list) => {
    for (const [name, on] of Object.entries(bits)) {
      list.nest(A_BITSET_BITS_BIT, (bit) => {
        bit.str(A_BITSET_BIT_NAME, name);
        if (on) bit.attr(A_BITSET_BIT_VALUE, Buffer.alloc(0));
      });
    }
  });
}
