// Host entries that pick their device by what does not change (hwaddr, pciBusID, kernelpath)
// instead of by name: resolved against the host's link dump before planning. Pure, like the
// rest of the planner. Never from sysfs: /sys/class/net shows the namespace of whoever mounted it.

import type { DeviceSelector, DeviceSpec } from '../config/types';
import { hostDeviceName } from '../config/types';
import type { LinkInfo } from '../netlink/link';
import { PlanError, show } from '../errors';

/** Whether `link` is the device `select` describes. */
export function selects(select: DeviceSelector, link: LinkInfo): boolean {
  switch (select.by) {
    case 'hwaddr':
      // A NIC's permanent MAC survives any MAC change; devices without one have only their current MAC.
      return (link.permanentMac ?? link.mac) === select.value;
    case 'pciBusID':
      return link.parentBus === 'pci' && link.parentDev !== null && link.parentDev.toLowerCase() === select.value;
    case 'kernelpath':
      // The kernel names the parent device by the last component of its sysfs path.
      return link.parentDev !== null && link.parentDev === select.value.slice(select.value.lastIndexOf('/') + 1);
  }
}

/**
 * `specs` with each selector's device filled in (`device`). Exactly one host link must match; the
 * device must not be asked for by another entry, nor be the master of a macvlan entry.
 */
export function resolveSelectors(specs: DeviceSpec[], hostLinks: LinkInfo[]): DeviceSpec[] {
  const resolved = specs.map((spec) => {
    const selector = spec.select;
    if (!selector) return spec;
    const { by, value } = selector;
    const what = `device ${show(spec.key)}: ${by} ${value}`;
    const found = hostLinks.filter((l) => selects(selector, l));
    if (found.length === 0) throw new PlanError(`${what} matches no device in the host network namespace`, { device: spec.key, op: 'select' });
    if (found.length > 1) {
      const names = found.map((l) => show(l.name)).join(', ');
      throw new PlanError(`${what} matches ${found.length} devices in the host network namespace (${names}); it must match one`, { device: spec.key, op: 'select' });
    }
    return { ...spec, device: found[0].name };
  });
  for (const spec of resolved) {
    if (!spec.select) continue;
    const name = hostDeviceName(spec);
    const sameDevice = resolved.find((o) => o !== spec && o.kind === 'host' && hostDeviceName(o) === name);
    if (sameDevice) {
      throw new PlanError(`device ${show(spec.key)}: ${spec.select.by} ${spec.select.value} selects ${show(name)}, which entry ${show(sameDevice.key)} also asks for`, { device: spec.key, op: 'select' });
    }
    const macvlan = resolved.find((o) => o.kind === 'macvlan' && o.master === name);
    if (macvlan) {
      throw new PlanError(`device ${show(spec.key)}: ${spec.select.by} ${spec.select.value} selects ${show(name)}, which must stay on the host as the master of macvlan entry ${show(macvlan.key)}`, { device: spec.key, op: 'select' });
    }
  }
  return resolved;
}
