// The config layer: the state, config.json and the annotation, validated into a ContainerRequest.

export * from './types';
export { ANNOTATION, MAX_ANNOTATION_BYTES, MAX_CONFIG_BYTES, MAX_DEVICES } from './load';
export { deviceArgSpecs, loadContainerRequest, parseNetDevices, selectorFor, validateConfigFile } from './load';
export { checkDevName } from './names';
export { canonicalIp, isLinkLocalIpv6 } from '../model/ip';
export { deviceArgs, formatDeviceArg, parseDeviceArg, splitDeviceOptions } from './device-arg';
export type { DeviceArg } from './device-arg';
export { MAX_STATE_BYTES, parseState, readStdinState } from './oci-state';
export {
  DEFAULT_POLICY_FILE, MAX_POLICY_BYTES, checkAddressesInUse, checkCniArguments, checkNetworkPolicy, checkPolicy, loadPolicy,
  parsePolicy, requestedAddresses,
} from './policy';
export type { AddressUse, AddressesInUse, Policy } from './policy';
export { compileGlob } from './glob';
