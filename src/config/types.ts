// The validated request the engine works from. Produced by src/config only.

export type DeviceKind = 'host' | 'veth' | 'macvlan';
export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';
export type DeviceSource = 'config' | 'annotation';

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
  /** host: pick the device by this instead of by the key. */
  select?: DeviceSelector;
  /** host with `select`: the device it picked on the host, filled in by the engine before planning. */
  device?: string;
  /** Keep IPv6 duplicate address detection for the addresses added in the container. */
  dad?: boolean;
  source: DeviceSource;
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

export interface ContainerRequest {
  state: OciState;
  /** linux.namespaces[type=network].path, if the config gives one. */
  netnsPath?: string;
  /** False when config.json has no network namespace entry at all. */
  hasNetworkNamespace: boolean;
  devices: DeviceSpec[];
}
