// Network namespace ids (RTM_GETNSID): the number by which one namespace names another in
// IFLA_LINK_NETNSID. Comparing it tells in which namespace a device's peer or lower device lives.

import { NetlinkSocket } from './client';
import { MessageBuilder, attrMap, attrU32, decodeAttrs } from './codec';
import { AF_UNSPEC, RTM_GETNSID, RTM_NEWNSID } from './constants';

const RTGENMSG_LEN = 4;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;

/** The id the socket's namespace gives the namespace of `nsFd`, or null when it has none. */
export function netnsIdOf(sock: NetlinkSocket, nsFd: number): number | null {
  const req = new MessageBuilder(RTM_GETNSID, 0).raw(Buffer.alloc(RTGENMSG_LEN, AF_UNSPEC)).u32(NETNSA_FD, nsFd);
  const reply = sock.request(req, { op: 'get netns id' }).find((m) => m.type === RTM_NEWNSID);
  const id = reply && attrMap(decodeAttrs(reply.payload, RTGENMSG_LEN)).get(NETNSA_NSID);
  if (!id) return null;
  const n = attrU32(id) | 0;
  return n < 0 ? null : n;
}
