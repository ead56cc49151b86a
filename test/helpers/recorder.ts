// A stand-in socket for the unit tests of request builders: it keeps the bytes of each request a
// typed operation sends, and answers nothing.
import type { MessageBuilder, NlMessage } from '../../src/netlink/codec';
import type { NetlinkSocket } from '../../src/netlink/client';

export function recorder(): { sock: NetlinkSocket; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const fake = {
    request(msg: MessageBuilder): NlMessage[] {
      sent.push(msg.finish(1));
      return [];
    },
  };
  return { sock: fake as unknown as NetlinkSocket, sent };
}
