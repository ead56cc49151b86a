// The config layer: the state, config.json and the annotation, validated into a ContainerRequest.

export * from './types';
export { ANNOTATION, MAX_ANNOTATION_BYTES, MAX_CONFIG_BYTES, MAX_DEVICES } from './load';
export { deviceArgSpecs, loadContainerRequest, parseNetDevices, validateConfigFile } from './load';
export { checkDevName } from './names';
export { deviceArgs, formatDeviceArg, parseDeviceArg, splitDeviceOptions } from './device-arg';
export type { DeviceArg } from './device-arg';
export { MAX_STATE_BYTES, parseState, readStdinState } from './state';
export {
  DEFAULT_POLICY_FILE, MAX_POLICY_BYTES, checkNetworkPolicy, checkPolicy, compileGlob, loadPolicy,
  parsePolicy,
} from './policy';
export type { Policy } from './policy';
