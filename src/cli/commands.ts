// The commands and options of the CLI, with their help. One entry per command: its usage, help
// text, the options it takes and what it runs. `oci-netdev COMMAND --help`, `oci-netdev --help`
// and the man page (scripts/gen-man.mjs) are all made from this table.
//
// Over 400 lines on purpose: it is the CLI's one reference, read top to bottom as --help prints it;
// what each command runs lives in the engine and the front doors.

import * as fs from 'fs';
import * as path from 'path';
import { planConfig, validateConfig } from '../engine/attach';
import { forget, gc } from '../engine/detach';
import type { GcResult } from '../engine/detach';
import { status } from '../engine/status';
import { DEFAULT_POLICY_FILE, DEFAULT_STATE_DIR } from '../engine/options';
import type { EngineOptions } from '../engine/options';
import { hookEntry, hooksDConfig, injectHooks, missingHooksWarning } from '../oci/hooks';
import { runHook } from '../oci/run';
import type { HookStage } from '../oci/run';
import { CDI_KIND, CDI_VERSIONS, DEFAULT_CDI_FILE, DEFAULT_CDI_VERSION } from '../cdi/spec';
import { generateCdi } from '../cdi/generate';
import type { HookOptions } from '../oci/hooks';
import type { Logger } from '../log/logger';
import { DEFAULT_HOOK_TIMEOUT_S, hookTimeoutSeconds } from '../engine/watchdog';
import { UsageError } from '../errors';
import { parseJsonText } from '../schema/json';
import { cniSettings, cniTool, DEFAULT_CACHE_DIR, DEFAULT_CNI_IFNAME, DEFAULT_CNI_PATH, DEFAULT_NETCONF_PATH } from '../engine/networks';

export interface OptionSpec {
  /** Long form, e.g. "--state-dir". */
  flag: string;
  /** The value's placeholder; options without one are switches. */
  value?: string;
  help: string;
}

/** gc's exit status when nothing failed but some container was busy: EX_TEMPFAIL of sysexits.h. */
const GC_RETRY_LATER = 75;

export const OPTIONS = {
  stateDir: {
    flag: '--state-dir', value: 'DIR',
    help: `state directory (env OCI_NETDEV_STATE_DIR, default ${DEFAULT_STATE_DIR})`,
  },
  policy: {
    flag: '--policy', value: 'FILE',
    help: `device policy (env OCI_NETDEV_POLICY, default ${DEFAULT_POLICY_FILE}; without that file, config.json may use any device and the annotation none)`,
  },
  logFile: {
    flag: '--log-file', value: 'FILE',
    help: 'also append every change, warning and error to FILE (env OCI_NETDEV_LOG_FILE); they always go to the system log (/dev/log, tag oci-netdev) when it exists',
  },
  json: { flag: '--json', help: 'print JSON' },
  noTrunc: { flag: '--no-trunc', help: 'show container ids whole (a 64-hex id is otherwise cut to its first 12 digits, as podman does; --json always shows them whole)' },
  device: {
    flag: '--device', value: 'SPEC',
    help: 'NAME[:FIELD=VALUE,...]: the netDevices entry of host device NAME, repeatable (e.g. --device eth1:name=net1,mtu=9000); ' +
      'fields name, type, mtu, mac, master, mode, address (repeatable), gateway, hostBridge, hostMac, hostAddress (repeatable), ' +
      'hwaddr, pciBusID, kernelpath',
  },
  include: { flag: '--include', value: 'GLOB', help: 'offer only the NICs whose name matches GLOB (repeatable: any of them); * ? [a-z] as in the policy' },
  exclude: { flag: '--exclude', value: 'GLOB', help: 'leave out the NICs whose name matches GLOB (repeatable), e.g. --exclude \'veth*\'' },
  out: { flag: '--out', value: 'FILE', help: `the CDI spec file to write (default ${DEFAULT_CDI_FILE})` },
  cdiVersion: {
    flag: '--cdi-version', value: 'V',
    help: `${CDI_VERSIONS.join(', ')} (default ${DEFAULT_CDI_VERSION}, the newest podman 4.3 reads); 1.1.0 also adds netDevices edits, for engines that move devices themselves`,
  },
  cniConfDir: {
    flag: '--cni-conf-dir', value: 'DIR',
    help: `where CNI networks (type cni entries) are found: .conflist, .conf and .json files (env NETCONFPATH, default ${DEFAULT_NETCONF_PATH})`,
  },
  cniPath: {
    flag: '--cni-path', value: 'DIRS',
    help: `colon-separated directories holding the CNI plugins (env CNI_PATH, default ${DEFAULT_CNI_PATH.join(':')})`,
  },
  cniCacheDir: {
    flag: '--cni-cache-dir', value: 'DIR',
    help: `libcni's cache of results, under DIR/results (env OCI_NETDEV_CNI_CACHE_DIR, default ${DEFAULT_CACHE_DIR})`,
  },
  ifname: { flag: '--ifname', value: 'NAME', help: `the interface in the namespace, CNI_IFNAME (env CNI_IFNAME, default ${DEFAULT_CNI_IFNAME})` },
  cniArgs: { flag: '--args', value: 'ARGS', help: 'CNI_ARGS given to every plugin, K=V;K2=V2 (env CNI_ARGS)' },
  runtimeConfig: {
    flag: '--runtime-config', value: 'JSON',
    help: 'capability args: a JSON object whose keys go to the plugins that declare the capability, e.g. {"portMappings":[...]} (env CAP_ARGS)',
  },
  containerId: { flag: '--container-id', value: 'ID', help: 'CNI_CONTAINERID (default: cni- and a hash of NETNS, as cnitool)' },
  forget: {
    flag: '--forget', value: 'ID',
    help: 'drop the record of container ID (as gc and status name it) without restoring anything, and do nothing else; logged as a warning',
  },
  live: {
    flag: '--live',
    help: 'also check against this host, as createRuntime would in this network namespace: the devices exist, the always-refused rules, the target names are free in the namespace config.json names (if it exists), each MTU is within the device\'s range, other containers\' claims (read from the state directory); nothing is changed',
  },
} satisfies Record<string, OptionSpec>;
export type OptionName = keyof typeof OPTIONS;

/** What a command receives: its operands and the options given. */
export interface Invocation {
  args: string[];
  stateDir: string;
  /** --state-dir or OCI_NETDEV_STATE_DIR was given (hooks then receive it). */
  stateDirGiven: boolean;
  policyFile?: string;
  logFile?: string;
  json: boolean;
  /** --no-trunc: container ids whole. */
  noTrunc: boolean;
  live: boolean;
  /** --device SPEC, in order. */
  devices: string[];
  /** cdi generate's --include and --exclude globs, in order. */
  cdiFilter: { include: string[]; exclude: string[] };
  /** --out FILE. */
  outFile?: string;
  cdiVersion?: string;
  /** --cni-conf-dir, --cni-path, --cni-cache-dir or their environment variables, where given. */
  cni: { confDir?: string; path?: string; cacheDir?: string };
  /** gc --forget ID. */
  forget?: string;
  /** The `cni` command's --ifname, --args, --runtime-config, --container-id (or their environment). */
  cniRun: { ifname?: string; args?: string; runtimeConfig?: string; containerId?: string };
  /** The command line as given: a hook finds its sibling hooks in config.json by it. */
  argv: string[];
  /** The oci-netdev executable (the single executable, or bin/oci-netdev; absolute): hook entries name it. */
  self: string;
  log: Logger;
  out: (text: string) => void;
}

export interface Command {
  name: string;
  /** The operands, as the usage line shows them. */
  operands: string;
  /** How many operands: [least, most]. */
  arity: [number, number];
  /** One line for `oci-netdev --help`. */
  summary: string;
  /** Paragraphs for `oci-netdev COMMAND --help` and the man page. */
  description: string;
  options: OptionName[];
  /** Run by a runtime: bounded by the watchdog. */
  hook?: boolean;
  run: (inv: Invocation) => number;
}

const HOOK_OPTIONS: OptionName[] = ['stateDir', 'policy', 'logFile', 'cniConfDir', 'cniPath', 'cniCacheDir'];
/** The hooks a CDI spec writes also carry --device entries. */
const DEVICE_HOOK_OPTIONS: OptionName[] = [...HOOK_OPTIONS, 'device'];

const PASSED_ON = 'Options given (--state-dir, --policy, --log-file, and the --cni ones) go into the hook entries; each entry also ' +
  'has an env whose PATH starts with the folder of the node running this command (runtimes start hooks ' +
  'with no environment), and a timeout from OCI_NETDEV_TIMEOUT.';

export const COMMANDS: Command[] = [
  {
    name: 'create-runtime', operands: '', arity: [0, 0], hook: true, options: DEVICE_HOOK_OPTIONS,
    summary: 'attach the devices of the container (OCI state on stdin)',
    description: 'The createRuntime hook. Reads the OCI state on stdin, and attaches the devices of BUNDLE/config.json ' +
      '(linux.netDevices) and of the oci-netdev.netDevices annotation. On any failure, everything done is undone. ' +
      'With --device, also those entries and the --device entries of the other oci-netdev createRuntime hooks of ' +
      'config.json (a CDI engine adds one hook per device): the first run attaches them all, the others find them attached.',
    run: (inv) => runHookFor(inv, 'createRuntime'),
  },
  {
    name: 'poststop', operands: '', arity: [0, 0], hook: true, options: DEVICE_HOOK_OPTIONS,
    summary: 'restore every device (OCI state on stdin)',
    description: 'The poststop hook. Reads the OCI state on stdin and puts every device back as it was. A second run does nothing.',
    run: (inv) => runHookFor(inv, 'poststop'),
  },
  {
    name: 'hook', operands: '', arity: [0, 0], hook: true, options: HOOK_OPTIONS,
    summary: 'create-runtime or poststop, chosen by the state\'s status',
    description: 'Either hook, chosen by the status in the OCI state on stdin ("stopped": poststop). ' +
      'hooks.d files use it, as they give one command for both stages.',
    run: (inv) => runHookFor(inv, 'byStatus'),
  },
  {
    name: 'inject', operands: 'BUNDLE', arity: [1, 1], options: HOOK_OPTIONS,
    summary: 'add both hooks to BUNDLE/config.json (idempotent)',
    description: 'Adds the createRuntime and poststop hooks to BUNDLE/config.json, for runc and crun; running it again ' +
      `changes nothing. config.json keeps its mode and owner. ${PASSED_ON}`,
    run: (inv) => {
      const { added } = injectHooks(inv.args[0], hookOptions(inv));
      inv.out(`${inv.args[0]}/config.json: ${added ? `added ${added} hook(s)` : 'hooks already present'}\n`);
      return 0;
    },
  },
  {
    name: 'hooks-d', operands: '', arity: [0, 0], options: HOOK_OPTIONS,
    summary: 'print a hooks.d file (version 1.0.0) for podman and CRI-O',
    description: 'Prints a hooks.d file (version 1.0.0) that runs `oci-netdev hook` at createRuntime and poststop for ' +
      `containers with the oci-netdev.netDevices annotation. ${PASSED_ON}`,
    run: (inv) => {
      inv.out(JSON.stringify(hooksDConfig(hookOptions(inv)), null, 2) + '\n');
      return 0;
    },
  },
  {
    name: 'validate', operands: 'CONFIG|BUNDLE', arity: [1, 1], options: ['live', 'policy', 'stateDir', 'cniConfDir', 'cniPath'],
    summary: 'check a config.json (or BUNDLE/config.json) and the policy; --live: against this host too',
    description: 'Checks the netDevices and the annotation of a config.json, or of BUNDLE/config.json when given a ' +
      'directory, and that the policy allows them. Warns when config.json declares linux.netDevices without the oci-netdev ' +
      'hooks (a runtime that does not implement netDevices ignores them). Touches nothing; oci-netdev plan lists the steps.',
    run: (inv) => {
      const file = configFile(inv.args[0]);
      const req = validateConfig(file, engineOptions(inv), inv.live);
      const warning = missingHooksWarning(file);
      if (warning) inv.log.warn(warning);
      const networks = req.networks.length ? `, ${req.networks.length} CNI network(s)` : '';
      inv.out(`${file}: ok, ${req.devices.length} device(s)${networks}${inv.live ? ', attachable on this host now' : ''}\n`);
      return 0;
    },
  },
  {
    name: 'plan', operands: 'CONFIG|BUNDLE', arity: [1, 1], options: ['json', 'policy', 'stateDir', 'cniConfDir', 'cniPath'],
    summary: 'list the steps createRuntime would take on this host now, and what poststop will restore',
    description: 'Checks a config.json (or BUNDLE/config.json) as validate --live does and prints the plan createRuntime would ' +
      'make on this host now, from the same observation and planner: each step in order (a device\'s move, creation, ' +
      'rename, addresses, settings and routes, then each CNI network\'s ADD), and what poststop will put back (each ' +
      'device home with its name, MTU, MAC, addresses and state, or deleted, then each network\'s DEL). --json: one JSON ' +
      'object. Touches nothing; exits 1, naming the cause, where createRuntime would fail.',
    run: (inv) => {
      const file = configFile(inv.args[0]);
      const plan = planConfig(file, engineOptions(inv));
      if (inv.json) {
        inv.out(JSON.stringify({ config: file, ...plan }, null, 2) + '\n');
        return 0;
      }
      const steps = (list: typeof plan.createRuntime) => (list.length ? list.map((s, i) => `  ${i + 1}. ${s.text}\n`).join('') : '  nothing\n');
      inv.out(`${file}: the plan on this host now (nothing was changed)\ncreateRuntime:\n${steps(plan.createRuntime)}poststop:\n${steps(plan.poststop)}`);
      return 0;
    },
  },
  {
    name: 'status', operands: '', arity: [0, 0], options: ['json', 'noTrunc', 'stateDir'],
    summary: 'list containers and the devices they hold',
    description: 'Lists each container that holds devices: for every device the host and container names, the kind ' +
      '(moved, adopted, veth, macvlan), where it is (in, restored, missing, lost, or unproven: nothing proves it is not a look-alike), ' +
      'why where there is a reason, what the container changed on a created macvlan, and its live MAC and MTU.',
    run: (inv) => {
      printStatus(inv);
      return 0;
    },
  },
  {
    name: 'gc', operands: '', arity: [0, 0], options: ['json', 'stateDir', 'logFile', 'cniPath', 'cniCacheDir', 'forget'],
    summary: 'restore containers whose hook died or whose poststop never came',
    description: 'Restores the devices of containers whose hook died mid-way or whose container is gone without a ' +
      'poststop; keeps those whose container still runs, and gives devices that came home under a fallback name, or ' +
      'without an altname, their names back once the host frees them (kept until then). Run it in the host\'s network namespace: a journal names ' +
      'the namespace its devices belong to, and gc run anywhere else changes nothing and says where to run it. ' +
      'A device proven gone (deleted on the host) is reported lost once and its record closed. Then, as libcni\'s GC, ' +
      'runs DEL for each attachment in libcni\'s cache (--cni-cache-dir) that oci-netdev made (a type cni network of ' +
      'the hooks, or a network with the oci-netdev plugin) when no journal holds it and its namespace is gone, as after ' +
      'a reboot: this frees its IPAM lease and cache entry; a CNI 1.1.0 network\'s plugins then get GC. Give the --cni ' +
      'options the hooks were given. Prints one line per container and a summary line (--json: one JSON object). ' +
      'Exits 0 when nothing is left to do, ' +
      '1 when something failed and is left as it was (each line says why; an operator must look; a journal written ' +
      `by a newer release is one: run that release's gc, or upgrade), ${GC_RETRY_LATER} ` +
      'when nothing failed but a hook was busy with a container (run gc again later).',
    run: (inv) => {
      const results = inv.forget !== undefined ? [forget(inv.forget, engineOptions(inv))] : gc(engineOptions(inv));
      for (const r of results) if (r.action !== 'kept') inv.log.info(`gc: ${r.action} (${r.reason})`, r.containerId);
      if (inv.json) {
        inv.out(JSON.stringify({ summary: gcCounts(results), containers: results }, null, 2) + '\n');
      } else {
        for (const r of results) inv.out(`${r.containerId}: ${r.action} (${r.reason})\n`);
        inv.out(`${gcSummary(results)}\n`);
      }
      return results.some((r) => r.action === 'failed') ? 1 : results.some((r) => r.action === 'busy') ? GC_RETRY_LATER : 0;
    },
  },
  {
    name: 'cdi', operands: 'generate', arity: [1, 1], options: ['out', 'cdiVersion', 'device', 'include', 'exclude', ...HOOK_OPTIONS],
    summary: 'write a CDI spec with one device per host NIC the policy allows',
    description: `Writes a CDI spec (kind ${CDI_KIND}) with one device per host NIC of this network namespace that the ` +
      'policy\'s config section allows (never an always-refused one), named after the NIC, for ' +
      `\`podman run --device ${CDI_KIND}=eth1\`. Each device's edits add the createRuntime and poststop hooks with its ` +
      `entry as a --device argument. --include and --exclude limit the NICs by name (a NIC they leave out is not listed as skipped). ${PASSED_ON}`,
    run: (inv) => {
      if (inv.args[0] !== 'generate') throw new UsageError(`unknown cdi command ${inv.args[0]} (cdi generate)`, 'cdi');
      const out = inv.outFile ?? DEFAULT_CDI_FILE;
      const opts = hookOptions(inv);
      const { spec, skipped } = generateCdi({
        out, cdiVersion: inv.cdiVersion ?? DEFAULT_CDI_VERSION, deviceTexts: inv.devices, stateDir: inv.stateDir, filter: inv.cdiFilter,
        ...(inv.policyFile !== undefined ? { policyFile: inv.policyFile } : {}),
        hook: (command) => hookEntry(command, opts),
      });
      for (const s of skipped) inv.out(`skipped ${s.name}: ${s.refused}\n`);
      inv.out(`${out}: ${spec.devices.length} device(s) of kind ${spec.kind}: ${spec.devices.map((d) => d.name).join(', ')}\n`);
      return 0;
    },
  },
  {
    name: 'cni', operands: 'add|check|del NETWORK NETNS | status|gc NETWORK', arity: [2, 3],
    options: ['ifname', 'cniArgs', 'runtimeConfig', 'containerId', 'cniConfDir', 'cniPath', 'cniCacheDir', 'stateDir'],
    summary: 'run a CNI network\'s plugins on a network namespace, as cnitool does',
    description: 'Runs the plugin chain of the CNI network NETWORK (found in NETCONFPATH) on the network namespace NETNS, as ' +
      'cnitool and libcni do: every plugin gets the network\'s cniVersion (the highest of cniVersion and cniVersions that ' +
      'oci-netdev speaks); add prints the result JSON and caches it (DIR/results of --cni-cache-dir), check and del ' +
      'use the cached result, del runs the chain in reverse. status runs the plugins\' STATUS (CNI 1.1.0 networks). gc is ' +
      'libcni\'s: del of every attachment of NETWORK in the cache that no journal of the state dir holds (with the config ' +
      'and arguments its add cached), then, for a CNI 1.1.0 network, GC of each plugin with the attachments still valid.',
    run: (inv) => {
      const [op, network, netns] = inv.args;
      if (!['add', 'check', 'del', 'status', 'gc'].includes(op)) throw new UsageError(`unknown cni command ${op} (add, check, del, status, gc)`, 'cni');
      const needsNetns = op === 'add' || op === 'check' || op === 'del';
      if (needsNetns !== (netns !== undefined)) throw new UsageError(`cni ${op} takes ${needsNetns ? 'NETWORK NETNS' : 'NETWORK'}`, 'cni');
      const result = cniTool(op as Parameters<typeof cniTool>[0], {
        network, ...(netns !== undefined ? { netns } : {}),
        ...(inv.cniRun.containerId !== undefined ? { containerId: inv.cniRun.containerId } : {}),
        ifname: inv.cniRun.ifname ?? DEFAULT_CNI_IFNAME,
        ...(inv.cniRun.args !== undefined ? { args: inv.cniRun.args } : {}),
        runtimeConfig: runtimeConfigArg(inv.cniRun.runtimeConfig),
      }, cniSettings(inv.cni), inv.stateDir);
      if (result) inv.out(JSON.stringify(result, null, 2) + '\n');
      return 0;
    },
  },
  {
    name: 'help', operands: '[COMMAND]', arity: [0, 1], options: [],
    summary: 'show this help, or the help of COMMAND',
    description: 'Shows the help of oci-netdev, or of COMMAND.',
    run: (inv) => {
      inv.out(inv.args.length ? commandHelp(findCommand(inv.args[0])) : mainHelp());
      return 0;
    },
  },
  {
    name: 'version', operands: '', arity: [0, 0], options: [],
    summary: 'show the version',
    description: 'Shows the version of oci-netdev.',
    run: (inv) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      inv.out(`oci-netdev ${(require('../../../package.json') as { version: string }).version}\n`);
      return 0;
    },
  },
];


export function findCommand(name: string): Command {
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command ${name}`);
  return command;
}

/**
 * The text before the command list of `oci-netdev --help` and the man page's DESCRIPTION.
 * @public scripts/gen-man.mjs reads it (and ENVIRONMENT, optionLabel) from the built module.
 */
export const INTRO = `Moves host network devices into a container's network namespace (runtime-spec
linux.netDevices), creates veth and macvlan devices there, and puts everything
back when the container stops. Runs as OCI createRuntime and poststop hooks.`;

/** @public for scripts/gen-man.mjs */
export const ENVIRONMENT: [string, string][] = [
  ['OCI_NETDEV_STATE_DIR', 'state directory, as --state-dir'],
  ['OCI_NETDEV_POLICY', 'policy file, as --policy'],
  ['OCI_NETDEV_LOG_FILE', 'log file, as --log-file'],
  ['OCI_NETDEV_TIMEOUT', `seconds one hook run may take before it is killed (default ${DEFAULT_HOOK_TIMEOUT_S}); oci-netdev gc restores what it left. inject and hooks-d write it into the hook entries`],
  ['NETCONFPATH', 'CNI network files, as --cni-conf-dir'],
  ['CNI_PATH', 'CNI plugin directories, as --cni-path'],
  ['OCI_NETDEV_CNI_CACHE_DIR', 'libcni\'s result cache, as --cni-cache-dir'],
  ['OCI_NETDEV_TRACE=1', 'print one line per netlink request on stderr'],
];

/** @public for scripts/gen-man.mjs: the man page's EXAMPLES, a command line and what it does. */
export const EXAMPLES: [string, string][] = [
  ['oci-netdev inject /path/to/bundle && runc run --bundle /path/to/bundle web1',
    'add the createRuntime and poststop hooks to a bundle whose config.json declares linux.netDevices (see oci-netdev(5)), then run it'],
  ['oci-netdev validate --live /path/to/bundle', 'check the bundle\'s devices against the policy and this host, changing nothing'],
  ['oci-netdev hooks-d > /etc/containers/oci/hooks.d/oci-netdev.json',
    'let podman and CRI-O run the hooks for containers that carry the annotation oci-netdev.netDevices'],
  ['podman run --network none --annotation \'"oci-netdev.netDevices={""eth1"":{""name"":""net1""}}"\' busybox ip addr',
    'give a podman container the host NIC eth1 as net1 (podman 4.3 reads --annotation as one CSV field: inner quotes doubled); the policy must allow eth1 for the annotation'],
  [`oci-netdev cdi generate --include 'enp*' --device enp3s0f1:name=net1,mtu=9000 && podman run --device ${CDI_KIND}=enp3s0f1 busybox ip addr`,
    'describe the host NICs named enp* as CDI devices, then hand one to a container by name'],
  ['oci-netdev status', 'list the containers that hold devices, and where each device is'],
  ['oci-netdev gc', 'restore the devices of containers whose hook died or whose poststop never came (the oci-netdev-gc.timer unit runs it every 5 minutes)'],
  ['oci-netdev cni add web /run/netns/ctr1', 'attach the CNI network web to a network namespace, as cnitool does'],
];

/** @public for scripts/gen-man.mjs: the man page's FILES. */
export const FILES: [string, string][] = [
  [DEFAULT_POLICY_FILE, 'the device policy: which devices, masters, modes, bridges and networks each source may use (oci-netdev(5))'],
  [DEFAULT_STATE_DIR, 'the state directory: per container a journal, its claims and the pinned network namespace; on a tmpfs'],
  ['/etc/containers/oci/hooks.d/oci-netdev.json', 'the hooks.d file podman and CRI-O read (hooks-d prints it; packages install it in /usr/share/containers/oci/hooks.d)'],
  [DEFAULT_CDI_FILE, 'the CDI spec cdi generate writes; podman 4.3 reads CDI specs from /etc/cdi and /var/run/cdi only'],
  [DEFAULT_NETCONF_PATH, 'CNI network configs (.conflist, .conf, .json) for type cni entries and the cni command'],
  ['/opt/cni/bin/oci-netdev', 'oci-netdev as a CNI plugin (a link to the launcher)'],
  [`${DEFAULT_CACHE_DIR}/results`, 'libcni\'s cache of CNI results, shared with cnitool and the runtimes'],
  ['oci-netdev-gc.service, oci-netdev-gc.timer', 'systemd units that run oci-netdev gc every 5 minutes'],
];

/** @public for scripts/gen-man.mjs: the man page's SEE ALSO. */
export const SEE_ALSO = ['oci-netdev(5)', 'runc(8)', 'crun(1)', 'podman-run(1)', 'oci-hooks(5)', 'systemd.timer(5)', 'ip-link(8)'];

export const usageLine = (c: Command): string =>
  `oci-netdev ${c.name}${c.options.length ? ' [OPTIONS]' : ''}${c.operands ? ` ${c.operands}` : ''}`;

/** Words wrapped at `width` columns. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Two columns: `left` padded to 22, `right` wrapped beside it. */
function row(left: string, right: string): string {
  const [first = '', ...rest] = wrap(right, 56);
  const head = left.length > 20 ? `  ${left}\n${' '.repeat(24)}${first}` : `  ${left.padEnd(22)}${first}`;
  return [head, ...rest.map((l) => ' '.repeat(24) + l)].join('\n') + '\n';
}

/** @public for scripts/gen-man.mjs */
export const optionLabel = (o: OptionSpec): string => (o.value ? `${o.flag} ${o.value}` : o.flag);

export function commandHelp(c: Command): string {
  let text = `Usage: ${usageLine(c)}\n\n${wrap(c.description, 78).join('\n')}\n\nOptions:\n`;
  for (const name of c.options) text += row(optionLabel(OPTIONS[name]), OPTIONS[name].help);
  return text + row('-h, --help', 'show this help');
}

export function mainHelp(): string {
  let text = `Usage: oci-netdev [OPTIONS] COMMAND [ARGS]\n\n${INTRO}\n\nCommands:\n`;
  for (const c of COMMANDS) text += row(`${c.name}${c.operands ? ` ${c.operands}` : ''}`, c.summary);
  text += '\nOptions (each command takes those its --help lists):\n';
  for (const name of ['stateDir', 'policy', 'logFile'] as const) text += row(optionLabel(OPTIONS[name]), OPTIONS[name].help);
  text += row('-h, --help', 'show this help; oci-netdev COMMAND --help shows the help of COMMAND');
  text += row('-V, --version', 'show the version');
  text += '\nEnvironment:\n';
  for (const [name, help] of ENVIRONMENT) text += row(name, help);
  return text;
}

function engineOptions(inv: Invocation): EngineOptions {
  return {
    stateDir: inv.stateDir,
    ...(inv.policyFile !== undefined ? { policyFile: inv.policyFile } : {}),
    warn: (m) => inv.log.warn(m),
    info: (m, containerId) => inv.log.info(m, containerId),
    ...(inv.devices.length ? { hookSelf: { path: inv.self, args: inv.argv } } : {}),
    cni: cniSettings(inv.cni),
  };
}

/** CONFIG, or BUNDLE/config.json when given a directory. */
function configFile(given: string): string {
  return isDirectory(given) ? path.join(given, 'config.json') : given;
}

/** --runtime-config: a JSON object. */
function runtimeConfigArg(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = parseJsonText(text);
  } catch (err) {
    throw new UsageError(`--runtime-config: not JSON: ${(err as Error).message}`, 'cni');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError('--runtime-config: must be a JSON object', 'cni');
  return v as Record<string, unknown>;
}

function hookOptions(inv: Invocation): HookOptions {
  return {
    path: inv.self,
    args: [
      ...(inv.stateDirGiven ? ['--state-dir', inv.stateDir] : []),
      ...(inv.policyFile !== undefined ? ['--policy', inv.policyFile] : []),
      ...(inv.logFile !== undefined ? ['--log-file', inv.logFile] : []),
      ...(inv.cni.confDir !== undefined ? ['--cni-conf-dir', inv.cni.confDir] : []),
      ...(inv.cni.path !== undefined ? ['--cni-path', inv.cni.path] : []),
      ...(inv.cni.cacheDir !== undefined ? ['--cni-cache-dir', inv.cni.cacheDir] : []),
    ],
    timeoutSeconds: hookTimeoutSeconds(),
    timeoutGiven: Boolean(process.env.OCI_NETDEV_TIMEOUT),
  };
}

/** A hook run; once the OCI state on stdin is read, log lines name its container. */
function runHookFor(inv: Invocation, stage: HookStage): number {
  runHook(stage, engineOptions(inv), (state) => (inv.log.containerId = state.id));
  return 0;
}

function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false; // validateConfigFile says why it cannot read it
  }
}

const GC_ACTIONS: GcResult['action'][] = ['restored', 'kept', 'failed', 'busy', 'lost', 'removed', 'forgotten'];

function gcCounts(results: GcResult[]): Record<GcResult['action'], number> {
  const counts = Object.fromEntries(GC_ACTIONS.map((a) => [a, 0])) as Record<GcResult['action'], number>;
  for (const r of results) counts[r.action]++;
  return counts;
}

/** "gc: 2 restored, 1 kept, 0 failed" (the other actions only when there are some), or "gc: nothing to do". */
export function gcSummary(results: GcResult[]): string {
  if (!results.length) return 'gc: nothing to do';
  const counts = gcCounts(results);
  return `gc: ${GC_ACTIONS.filter((a) => counts[a] || ['restored', 'kept', 'failed'].includes(a)).map((a) => `${counts[a]} ${a}`).join(', ')}`;
}

function printStatus(inv: Invocation): void {
  const entries = status(engineOptions(inv));
  if (inv.json) {
    inv.out(JSON.stringify(entries, null, 2) + '\n');
    return;
  }
  if (!entries.length) inv.out('no containers hold devices\n');
  const id = (full: string): string => (inv.noTrunc ? full : shortId(full));
  for (const e of entries) {
    if (e.phase === 'unreadable') {
      inv.out(`${id(e.containerId)} (unreadable: ${e.error})\n`);
      continue;
    }
    const process_ = e.pid === null ? 'no pid' : `pid ${e.pid} ${e.alive ? 'running' : 'gone'}`;
    const o = e.origin;
    inv.out(`${id(e.containerId)} (${e.phase}${e.pinned ? '' : ', namespace not pinned'}; ${process_}; ` +
      `${formatAge(e.ageSeconds)} old; ${o ? `CNI network ${o.network}, container ${id(o.containerId)}, ${o.ifname}` : `bundle ${e.bundle ?? 'unknown'}`})\n`);
    // One row per device: host name <-> container name; a macvlan's key is only an id, so its master is shown too.
    const rows = [['HOST', '', 'CONTAINER', 'KIND', 'STATE', 'MAC', 'MTU'], ...e.devices.map((d) => [
      d.master !== undefined ? `${d.key} on ${d.master}` : d.key, '<->', d.containerName ?? '?', d.kind, d.state,
      d.mac ?? '-', d.mtu === null ? '-' : String(d.mtu),
    ])];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) inv.out(`  ${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
    for (const d of e.devices) {
      if (d.reason !== undefined) inv.out(`  ${d.key} ${d.state}: ${d.reason}\n`);
      if (d.changed !== undefined) inv.out(`  ${d.key} changed by the container: ${d.changed}\n`);
    }
    for (const w of e.waiting ?? []) inv.out(`  ${w} (oci-netdev gc puts it back)\n`);
    for (const n of e.networks) {
      const ports = n.portMappings.map((p) => `${p.hostIP ? `${p.hostIP}:` : ''}${p.hostPort}->${p.containerPort}/${p.protocol ?? 'tcp'}`);
      inv.out(`  network ${n.network} as ${n.ifname} (${n.state}): ${n.addresses.join(' ') || 'no address'}` +
        `${ports.length ? `; ports ${ports.join(' ')}` : ''}\n`);
    }
  }
}

/**
 * A container id of 64 hex digits (podman's, CRI-O's, containerd's) cut to 12, as podman shows it,
 * alone or inside a CNI attachment's id (cni:NETWORK:ID:IFNAME); any other id whole.
 */
function shortId(id: string): string {
  return id.replace(/^(cni:[^:]*:)?([0-9a-f]{12})[0-9a-f]{52}(:[^:]*)?$/, (whole, network?: string, head?: string, ifname?: string) =>
    (network === undefined) === (ifname === undefined) ? `${network ?? ''}${head}${ifname ?? ''}` : whole);
}

/** 42s, 5m3s, 2h0m, 3d4h. */
function formatAge(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`;
}
