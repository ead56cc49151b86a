// The vocabulary every layer speaks about devices: the kinds of device entry and the macvlan
// modes. The inputs (config, annotation, CNI network config) are read into it, the planner plans
// with it and the journal records it; none of them owns it.

/** A host device moved in, a veth pair created, or a macvlan created on a host device. */
export const DEVICE_KINDS = ['host', 'veth', 'macvlan'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

/** Every macvlan mode, in the kernel's order of MACVLAN_MODE_* bits. */
export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;
export type MacvlanMode = (typeof MACVLAN_MODES)[number];
