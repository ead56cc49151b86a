// Which host devices a container could be given: what `oci-netdev cdi generate` offers. Read over
// netlink in the host's network namespace (the caller's, as the hooks see it), not from /sys.

import { checkPolicy } from '../config';
import { observeHost } from '../apply/observe';
import { hostDeviceRefusal } from '../plan/refusals';
import { StateDir } from '../state/statedir';
import { heldOnHost, macvlanMasters } from './claims';
import { openHost } from './sides';
import { policyOf } from './options';
import type { EngineOptions } from './options';
import { PolicyError } from '../errors';

export interface HostDevice {
  name: string;
  /** Why it cannot be given to a container (an always-refused rule, the config policy, a holder); unset when it can. */
  refused?: string;
}

/** Every device of the host's network namespace, in ifindex order, each with why it is refused, if it is. */
export function hostDevices(opts: Pick<EngineOptions, 'stateDir' | 'policyFile' | 'hostNetns'>): HostDevice[] {
  const policy = policyOf(opts);
  const { claims } = new StateDir(opts.stateDir).scanClaims();
  using ns = openHost(opts);
  using sock = ns.socket();
  const observed = { ...observeHost({ ns, sock }), containerLinks: [], containerAddresses: [] };
  const { hostLinks } = observed;
  const held = heldOnHost(claims, hostLinks);
  const masters = macvlanMasters(claims);
  return [...hostLinks].sort((a, b) => a.index - b.index).map((link): HostDevice => {
    const spec = { key: link.name, kind: 'host' as const, name: link.name, source: 'config' as const };
    const holder = held.get(link.name);
    if (holder !== undefined) return { name: link.name, refused: `held by container ${holder}` };
    const refusal = hostDeviceRefusal(link, observed, masters);
    if (refusal) return { name: link.name, refused: `always-refused: ${refusal.rule} (${refusal.reason})` };
    try {
      checkPolicy([spec], policy);
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      return { name: link.name, refused: err.problem };
    }
    return { name: link.name };
  });
}
