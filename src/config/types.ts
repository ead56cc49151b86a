// The validated request the engine works from. Produced by src/config only.

import type { DeviceKind, MacvlanMode } from '../model/devices';

/** Who asked: config.json, the annotation, or a CNI network config (the plugin front door). */
export type DeviceSource = 'config' | 'annotation' | 'cni';

/** What a host entry picks its device by when its key only names the entry (hwaddr, pciBusID, kernelpath). */
export type SelectorField = 'hwaddr' | 'pciBusID' | 'kernelpath';

export interface DeviceSelector {
  by: SelectorField;
  /** Normalised: lower-case MAC, PCI address with its domain, sysfs path without a trailing slash. */
  value: string;
}

export interface DeviceSpec {
  /** The entry key: host ifname for host (unless `select`) and veth (host end); only an id for macvlan. */
  key: string;
  kind: DeviceKind;
  /** Name inside the container; defaults to the key. May end in %d. */
  name: string;
  mtu?: number;
  /** Lower-case unicast MAC. */
  mac?: string;
  /** macvlan: host parent interface. */
  master?: string;
  mode?: MacvlanMode;
  /** veth/macvlan: CIDRs to add in the container. */
  addresses?: string[];
  /** The default route of the gateway's family, through it (src/config/ip.ts). */
  gateway?: string;
  /** Routes added in the container on the device, after its addresses. */
  routes?: RouteSpec[];
  /** veth: the host end joins this existing bridge on the host. */
  hostBridge?: string;
  /** veth: CIDRs on the host end. */
  hostAddresses?: string[];
  /** veth: lower-case unicast MAC of the host end. */
  hostMac?: string;
  /** host: pick the device by this instead of by the key. */
  select?: DeviceSelector;
  /** host with `select`: the device it picked on the host, filled in by the engine before planning. */
  device?: string;
  /** Keep IPv6 duplicate address detection for the addresses added in the container. */
  dad?: boolean;
  source: DeviceSource;
}

/** A `type: "cni"` entry: a CNI network whose plugin chain runs for the container. */
export interface NetworkSpec {
  /** The entry key: the network's name (a conflist's `name`). */
  network: string;
  /** CNI_IFNAME: the interface the chain makes in the container. */
  ifname: string;
  /** CNI_ARGS pairs, in the order given. */
  args: Array<[string, string]>;
  /** Capability args (runtimeConfig), portMappings included. */
  runtimeConfig: Record<string, unknown>;
  source: DeviceSource;
}

/** The interface name a cni entry gets when it gives none. */
export const DEFAULT_CNI_IFNAME = 'eth0';

/** One entry of `routes`: dst a CIDR with no host bits, gw of the same family. */
export interface RouteSpec {
  dst: string;
  gw?: string;
  metric?: number;
}

/** The host device an entry asks for: the one its selector picked, else the key. */
export function hostDeviceName(spec: DeviceSpec): string {
  return spec.device ?? spec.key;
}

export interface OciState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

/**
 * This hook run as the runtime started it, to find its siblings among config.json's
 * hooks.createRuntime: a runtime injects one hook pair per CDI device, all alike but for their
 * --device arguments, and the first run attaches the devices of all of them.
 */
export interface HookSelf {
  /** The executable hook entries name (absolute). */
  path: string;
  /** The arguments after the program name, --device ones included. */
  args: string[];
}

/** What a config.json asks for, read without a container (`oci-netdev validate`). */
export interface ConfigRequest {
  /** linux.namespaces[type=network].path, if the config gives one. */
  netnsPath?: string;
  /** False when config.json has no network namespace entry at all. */
  hasNetworkNamespace: boolean;
  devices: DeviceSpec[];
  /** The cni entries, in the order given, after the devices. */
  networks: NetworkSpec[];
}

export interface ContainerRequest extends ConfigRequest {
  state: OciState;
}
