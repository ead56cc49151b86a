// The vocabulary every layer speaks about devices: the kinds of device entry and the macvlan
// modes. The inputs (config, annotation, CNI network config) are read into it, the planner plans
// with it and the journal records it; none of them owns it.

/** A host device moved in, a veth pair created, or a macvlan created on a host device. */
export const DEVICE_KINDS = ['host', 'veth', 'macvlan'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

/** Every macvlan mode, in the kernel's order of MACVLAN_MODE_* bits. */
export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;
export type MacvlanMode = (typeof MACVLAN_MODES)[number];

/**
 * The ifindexes oci-netdev picks for the devices it gives a container: at random from
 * [PICKED_INDEX_BASE, 2^30), far above those the kernel hands out by itself (counting up from 1),
 * so that a device keeps its index wherever it goes and is found by it again.
 */
export const PICKED_INDEX_BASE = 0x10000;
const PICKED_INDEX_END = 0x40000000;

/** Link groups oci-netdev marks a container's devices with: at random from [0x10000, 0x7fff0000), far from the small numbers people use. */
const GROUP_BASE = 0x10000;
const GROUP_END = 0x7fff0000;

export const randomIndex = (): number => PICKED_INDEX_BASE + Math.floor(Math.random() * (PICKED_INDEX_END - PICKED_INDEX_BASE));
export const randomGroup = (): number => GROUP_BASE + Math.floor(Math.random() * (GROUP_END - GROUP_BASE));
