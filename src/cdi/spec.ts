// CDI specs (Container Device Interface, cncf-tags/container-device-interface SPEC.md) that hand
// host NICs to containers: one CDI device per NIC, whose edits add oci-netdev's createRuntime and
// poststop hooks with that NIC's --device argument. An engine that asks for several devices adds
// one hook pair per device; the first createRuntime run attaches them all (src/config/load.ts).
// Pure: no I/O.

import { ConfigError } from '../errors';
import { formatDeviceArg } from '../config';
import type { DeviceArg } from '../config';
import type { HookEntry } from '../oci/hooks';

export const CDI_KIND = 'oci-netdev.dev/net';
export const DEFAULT_CDI_FILE = '/etc/cdi/oci-netdev.json';
/**
 * The released spec versions that have hooks and device names starting with a digit (0.5.0 on).
 * 0.5.0 is the default: podman 4.3's CDI library refuses any later version.
 */
export const CDI_VERSIONS = ['0.5.0', '0.6.0', '0.7.0', '0.8.0', '1.0.0', '1.1.0'] as const;
export const DEFAULT_CDI_VERSION = '0.5.0';
/** containerEdits.netDevices came with 1.1.0; older libraries refuse specs that hold it. */
const NET_DEVICES_SINCE = '1.1.0';

/** A CDI device name: alphanumerics, '-', '_' and '.', starting and ending with an alphanumeric. */
const CDI_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;

export function isCdiDeviceName(name: string): boolean {
  return CDI_NAME.test(name);
}

export function checkCdiVersion(version: string): void {
  if (!(CDI_VERSIONS as readonly string[]).includes(version)) {
    throw new ConfigError(`--cdi-version: must be one of ${CDI_VERSIONS.join(', ')} (got ${JSON.stringify(version)})`, { field: '--cdi-version' });
  }
}

const atLeast = (version: string, min: string) => CDI_VERSIONS.indexOf(version as never) >= CDI_VERSIONS.indexOf(min as never);

interface CdiHook extends HookEntry {
  hookName: 'createRuntime' | 'poststop';
}

interface CdiDevice {
  name: string;
  containerEdits: {
    hooks: CdiHook[];
    netDevices?: { hostInterfaceName: string; name: string }[];
  };
}

export interface CdiSpec {
  cdiVersion: string;
  kind: string;
  devices: CdiDevice[];
}

/**
 * The spec for `devices` (host entries, already validated). `hook(command)` gives the hook entry
 * that runs an oci-netdev command with the options of `cdi generate`.
 */
export function buildCdiSpec(devices: DeviceArg[], cdiVersion: string, hook: (command: string) => HookEntry): CdiSpec {
  checkCdiVersion(cdiVersion);
  return {
    cdiVersion,
    kind: CDI_KIND,
    devices: devices.map((d): CdiDevice => {
      if (!isCdiDeviceName(d.key)) throw new ConfigError(`device ${JSON.stringify(d.key)}: its name is not a valid CDI device name`, { device: d.key });
      const deviceArgs = ['--device', formatDeviceArg(d)];
      const edit = (hookName: CdiHook['hookName'], command: string): CdiHook => {
        const entry = hook(command);
        return { hookName, ...entry, args: [...(entry.args ?? []), ...deviceArgs] };
      };
      return {
        name: d.key,
        containerEdits: {
          hooks: [edit('createRuntime', 'create-runtime'), edit('poststop', 'poststop')],
          ...(atLeast(cdiVersion, NET_DEVICES_SINCE) ? { netDevices: [{ hostInterfaceName: d.key, name: (d.entry.name as string | undefined) ?? d.key }] } : {}),
        },
      };
    }),
  };
}
