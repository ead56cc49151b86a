// The validated request the engine works from. Produced by src/config only.

export type DeviceKind = 'host' | 'veth' | 'macvlan';
export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';
export type DeviceSource = 'config' | 'annotation';

export interface DeviceSpec {
  /** The entry key: host ifname for host and veth (host end); only an id for macvlan. */
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
  source: DeviceSource;
}

export interface OciState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

/** What a config.json asks for, read without a container (`oci-netdev validate`). */
export interface ConfigRequest {
  /** linux.namespaces[type=network].path, if the config gives one. */
  netnsPath?: string;
  /** False when config.json has no network namespace entry at all. */
  hasNetworkNamespace: boolean;
  devices: DeviceSpec[];
}

export interface ContainerRequest extends ConfigRequest {
  state: OciState;
}
