// The CNI_* environment of a plugin run, checked as libcni's skel checks it: the variables each
// command needs (code 4 naming the missing ones), a kernel-valid CNI_IFNAME, CNI_ARGS pairs.

import { checkDevName } from '../config';
import type { CniCommand } from '../libcni/invoke';
import { splitCniPath } from '../libcni/invoke';
import { CniCode, CniError, parseCniArgs } from '../libcni/spec';

const CNI_COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

/** The variables each command needs; CNI_NETNS is optional for DEL (the spec), CNI_PATH as skel wants it. */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

/** libcni's ValidateContainerID. */
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Unset for DEL without a namespace, and for GC, STATUS and VERSION. */
  netns?: string;
  ifname: string;
  args: Array<[string, string]>;
  path: string[];
}

/** The environment of this run, or a CniError (code 4) naming what is missing or wrong. */
export function readCniEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniCode.invalidEnvironment, `CNI_COMMAND: unknown command ${JSON.stringify(command)}; expected one of ${CNI_COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  // libcni probes plugins with VERSION and placeholder values (CNI_NETNS=dummy): VERSION reads none of them.
  if (cmd === 'VERSION') return { command: cmd, containerId: '', ifname: '', args: [], path: [] };
  const missing = REQUIRED[cmd].filter((v) => !env[v]);
  if (missing.length) {
    throw new CniError(CniCode.invalidEnvironment, `required environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing for ${cmd}`);
  }
  const ifname = env.CNI_IFNAME ?? '';
  if (REQUIRED[cmd].includes('CNI_IFNAME')) {
    const problem = checkDevName(ifname, { template: false });
    if (problem) throw new CniError(CniCode.invalidEnvironment, `CNI_IFNAME ${JSON.stringify(ifname)} ${problem}`);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  // libcni's rule: the id becomes part of names (the state folder, host-local's files) and of our
  // attachment id, where a '/', '..', ':' or a newline could reach another's.
  if (containerId !== '' && !CONTAINER_ID.test(containerId)) {
    throw new CniError(CniCode.invalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(containerId)} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
  }
  const relative = (env.CNI_PATH ?? '').split(':').find((d) => d !== '' && !d.startsWith('/'));
  if (relative !== undefined) {
    throw new CniError(CniCode.invalidEnvironment, `CNI_PATH must list absolute folders (got ${JSON.stringify(relative)}): a relative one would find plugins by the current directory`);
  }
  const netns = env.CNI_NETNS || undefined;
  if (netns !== undefined && !netns.startsWith('/')) {
    throw new CniError(CniCode.invalidEnvironment, `CNI_NETNS must be an absolute path (got ${JSON.stringify(netns)})`);
  }
  return {
    command: cmd,
    containerId,
    ...(netns !== undefined ? { netns } : {}),
    ifname,
    args: parseCniArgs(env.CNI_ARGS),
    path: splitCniPath(env.CNI_PATH),
  };
}
