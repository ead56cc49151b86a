// Static link-layer multicast addresses of a device (`ip maddr add`), which the kernel flushes
// when the device changes namespace. /proc/net/dev_mcast lists every address on every device of
// the namespace the reading thread is in: call it within the host's (Netns.within).

import * as fs from 'fs';
import { StateError, causeOf } from '../errors';

/** The calling thread's own /proc/net (a process's is its main thread's namespace). */
const DEV_MCAST = '/proc/thread-self/net/dev_mcast';

/**
 * The static multicast addresses of link `index` ("33:33:00:00:00:01"), in the kernel's order:
 * the entries whose global use count is set, which only SIOCADDMULTI sets; the kernel's own joins
 * (IPv6 groups of its addresses, all-nodes) count as users only.
 */
export function staticMulticast(index: number): string[] {
  let text: string;
  try {
    text = fs.readFileSync(DEV_MCAST, 'utf8');
  } catch (err) {
    throw new StateError(`cannot read ${DEV_MCAST}: ${causeOf(err)}`);
  }
  // "ifindex name users global hex", as the kernel prints it (dev_mc_seq_show).
  return text.split('\n').map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length === 5 && Number(f[0]) === index && Number(f[3]) > 0)
    .map((f) => f[4].match(/../g)!.join(':'));
}
