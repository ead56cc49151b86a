// The command line: parses arguments, calls the engine, prints results.
// Every failure is one line on stderr and a non-zero exit.

import { DEFAULT_STATE_DIR } from '../state/statedir';
import { DEFAULT_POLICY_FILE, checkPolicy, loadPolicy, readStdinState, validateConfigFile } from '../config';
import type { OciState } from '../config';
import { attach, detach, gc, status, EngineOptions } from '../engine/lifecycle';
import { BIN_PATH, hookEntry, hooksDConfig, injectHooks } from '../engine/hooks';
import { CDI_KIND, CDI_VERSIONS, DEFAULT_CDI_FILE, DEFAULT_CDI_VERSION } from '../cdi/spec';
import { generateCdi } from '../cdi/generate';
import { Logger } from '../log/logger';
import { hookTimeoutSeconds, startWatchdog } from './watchdog';

const HELP = `Usage: oci-netdev [--state-dir DIR] [--policy FILE] [--log-file FILE] COMMAND [ARGS]

Moves host network devices into a container's network namespace (runtime-spec
linux.netDevices), creates veth and macvlan devices there, and puts everything
back when the container stops. Runs as OCI createRuntime and poststop hooks.

Hook commands (read the OCI state on stdin):
  create-runtime      attach the devices of BUNDLE/config.json and the
                      oci-netdev.netDevices annotation; on failure, undo all
                      --device SPEC: also this entry (repeatable), with the
                      --device entries of the other oci-netdev createRuntime
                      hooks of config.json (CDI adds one hook per device)
  poststop            restore every device; a second run does nothing
  hook                either of the two, chosen by the state's status
                      (used by hooks.d files, which give one command for
                      both stages)

Other commands:
  inject BUNDLE       add both hooks to BUNDLE/config.json (idempotent)
  hooks-d             print a hooks.d file (version 1.0.0) for podman/CRI-O
  validate CONFIG     check a config.json's netDevices and annotation,
                      and that the policy allows them
  status [--json]     list containers and the devices they hold
  gc                  restore containers whose hook died or whose
                      container is gone without a poststop
  cdi generate        write a CDI spec (kind ${CDI_KIND}) with one device per
                      host NIC the policy's config section allows, for
                      \`podman run --device ${CDI_KIND}=eth1\`:
    --out FILE          the spec file (default ${DEFAULT_CDI_FILE})
    --cdi-version V     ${CDI_VERSIONS.join(', ')} (default ${DEFAULT_CDI_VERSION},
                        the newest podman 4.3 reads); 1.1.0 also adds
                        netDevices edits, for engines that move devices
    --device SPEC       extension fields for one NIC (repeatable)

Device SPEC: NAME[:FIELD=VALUE,...], the netDevices entry of host device
NAME; fields name, mtu, mac (type, master, mode and address, repeatable, for
created devices in hooks), e.g. --device eth1:name=net1,mtu=9000.

Options:
  --state-dir DIR     state directory (env OCI_NETDEV_STATE_DIR,
                      default ${DEFAULT_STATE_DIR})
  --policy FILE       device policy (env OCI_NETDEV_POLICY, default
                      ${DEFAULT_POLICY_FILE}; without that file,
                      config.json may use any device and the annotation
                      none). inject and hooks-d pass it on to the hooks
  --log-file FILE     also append every change, warning and error to FILE
                      (env OCI_NETDEV_LOG_FILE); they always go to the
                      system log (/dev/log, tag oci-netdev) when it exists.
                      inject, hooks-d and cdi generate pass --state-dir,
                      --policy and --log-file on to the hooks
  -h, --help          show this help
  -V, --version       show the version

Environment:
  OCI_NETDEV_TIMEOUT  seconds one hook run may take before it is killed
                      (default 120); oci-netdev gc restores what it left
  OCI_NETDEV_TRACE=1  print one line per netlink request on stderr
`;

class UsageError extends Error {}

interface Parsed {
  command: string;
  args: string[];
  stateDir: string;
  stateDirGiven: boolean;
  /** --policy or OCI_NETDEV_POLICY; unset means the default file, which may be absent. */
  policyFile?: string;
  /** --log-file or OCI_NETDEV_LOG_FILE. */
  logFile?: string;
  json: boolean;
  /** --device SPEC, in order. */
  devices: string[];
  /** cdi generate: --out and --cdi-version. */
  out?: string;
  cdiVersion?: string;
  /** The arguments as given, for a hook to find its siblings in config.json. */
  argv: string[];
}

/** Options of the CDI commands that take a value, and what the value is. */
const CDI_OPTIONS: Record<string, string> = { '--device': 'a device SPEC', '--out': 'a file', '--cdi-version': 'a version' };

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Parsed {
  let stateDir: string | undefined;
  let policy: string | undefined;
  let logFile: string | undefined;
  let json = false;
  let out: string | undefined;
  let cdiVersion: string | undefined;
  const devices: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const valued = Object.keys(CDI_OPTIONS).find((o) => a === o || a.startsWith(`${o}=`));
    if (valued !== undefined) {
      const value = a === valued ? argv[++i] : a.slice(valued.length + 1);
      if (!value) throw new UsageError(`${valued} needs ${CDI_OPTIONS[valued]}`);
      if (valued === '--device') devices.push(value);
      else if (valued === '--out') out = value;
      else cdiVersion = value;
      continue;
    }
    if (a === '--state-dir') {
      stateDir = argv[++i];
      if (!stateDir) throw new UsageError('--state-dir needs a directory');
    } else if (a.startsWith('--state-dir=')) {
      stateDir = a.slice('--state-dir='.length);
    } else if (a === '--policy') {
      policy = argv[++i];
      if (!policy) throw new UsageError('--policy needs a file');
    } else if (a.startsWith('--policy=')) {
      policy = a.slice('--policy='.length);
    } else if (a === '--log-file') {
      logFile = argv[++i];
      if (!logFile) throw new UsageError('--log-file needs a file');
    } else if (a.startsWith('--log-file=')) {
      logFile = a.slice('--log-file='.length);
    } else if (a === '--json') {
      json = true;
    } else if (a === '-h' || a === '--help') {
      rest.unshift('help');
    } else if (a === '-V' || a === '--version') {
      rest.unshift('version');
    } else if (a.startsWith('-')) {
      throw new UsageError(`unknown option ${a}`);
    } else {
      rest.push(a);
    }
  }
  // Hook entries put the program name first (args: ["oci-netdev", "create-runtime"]).
  if (rest[0] === 'oci-netdev') rest.shift();
  const [command = 'help', ...args] = rest;
  const given = stateDir ?? env.OCI_NETDEV_STATE_DIR;
  if (given !== undefined && !given.startsWith('/')) throw new UsageError(`state dir must be an absolute path (got ${given})`);
  const policyFile = policy ?? (env.OCI_NETDEV_POLICY || undefined);
  if (policyFile !== undefined && !policyFile.startsWith('/')) throw new UsageError(`policy file must be an absolute path (got ${policyFile})`);
  const logTo = logFile ?? (env.OCI_NETDEV_LOG_FILE || undefined);
  if (logTo !== undefined && !logTo.startsWith('/')) throw new UsageError(`log file must be an absolute path (got ${logTo})`);
  return {
    command, args, stateDir: given ?? DEFAULT_STATE_DIR, stateDirGiven: given !== undefined, json, devices,
    argv: argv[0] === 'oci-netdev' ? argv.slice(1) : argv,
    ...(out !== undefined ? { out } : {}),
    ...(cdiVersion !== undefined ? { cdiVersion } : {}),
    ...(policyFile !== undefined ? { policyFile } : {}),
    ...(logTo !== undefined ? { logFile: logTo } : {}),
  };
}

const ARITY: Record<string, number> = {
  'create-runtime': 0, poststop: 0, hook: 0, inject: 1, 'hooks-d': 0, validate: 1, status: 0, gc: 0, cdi: 1, help: 0, version: 0,
};

/** The commands a runtime runs; they are bounded in wall time. */
const HOOK_COMMANDS = new Set(['create-runtime', 'poststop', 'hook']);

function run(p: Parsed, log: Logger): number {
  if (!(p.command in ARITY)) throw new UsageError(`unknown command ${p.command}`);
  if (p.args.length !== ARITY[p.command]) {
    throw new UsageError(`${p.command} takes ${ARITY[p.command] || 'no'} argument${ARITY[p.command] === 1 ? '' : 's'}`);
  }
  const opts: EngineOptions = {
    stateDir: p.stateDir,
    ...(p.policyFile !== undefined ? { policyFile: p.policyFile } : {}),
    warn: (m) => log.warn(m),
    info: (m, containerId) => log.info(m, containerId),
    ...(p.devices.length ? { hookSelf: { path: BIN_PATH, args: p.argv } } : {}),
  };
  const passOptions = [
    ...(p.stateDirGiven ? ['--state-dir', p.stateDir] : []),
    ...(p.policyFile !== undefined ? ['--policy', p.policyFile] : []),
    ...(p.logFile !== undefined ? ['--log-file', p.logFile] : []),
  ];
  if (HOOK_COMMANDS.has(p.command)) startWatchdog(hookTimeoutSeconds());
  switch (p.command) {
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      process.stdout.write(`oci-netdev ${require('../../../package.json').version}\n`);
      return 0;
    case 'create-runtime':
      attach(containerState(log), opts);
      return 0;
    case 'poststop':
      detach(containerState(log), opts);
      return 0;
    case 'hook': {
      const state = containerState(log);
      if (state.status === 'stopped') detach(state, opts);
      else attach(state, opts);
      return 0;
    }
    case 'inject': {
      const { added } = injectHooks(p.args[0], passOptions);
      process.stdout.write(`${p.args[0]}/config.json: ${added ? `added ${added} hook(s)` : 'hooks already present'}\n`);
      return 0;
    }
    case 'cdi': {
      if (p.args[0] !== 'generate') throw new UsageError(`unknown cdi command ${p.args[0]} (cdi generate)`);
      const out = p.out ?? DEFAULT_CDI_FILE;
      const { spec, skipped } = generateCdi({
        out, cdiVersion: p.cdiVersion ?? DEFAULT_CDI_VERSION, deviceTexts: p.devices, stateDir: p.stateDir,
        ...(p.policyFile !== undefined ? { policyFile: p.policyFile } : {}),
        hook: (command) => hookEntry(command, passOptions),
      });
      for (const s of skipped) process.stdout.write(`skipped ${s.name}: ${s.refused}\n`);
      process.stdout.write(`${out}: ${spec.devices.length} device(s) of kind ${spec.kind}: ${spec.devices.map((d) => d.name).join(', ')}\n`);
      return 0;
    }
    case 'hooks-d':
      process.stdout.write(JSON.stringify(hooksDConfig(passOptions), null, 2) + '\n');
      return 0;
    case 'validate': {
      const devices = validateConfigFile(p.args[0]);
      if (devices.length) checkPolicy(devices, loadPolicy(p.policyFile ?? DEFAULT_POLICY_FILE, p.policyFile !== undefined));
      process.stdout.write(`${p.args[0]}: ok, ${devices.length} device(s)\n`);
      return 0;
    }
    case 'status': {
      const entries = status(opts);
      if (p.json) {
        process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
        return 0;
      }
      if (!entries.length) process.stdout.write('no containers hold devices\n');
      for (const e of entries) {
        if (e.phase === 'unreadable') {
          process.stdout.write(`${e.containerId} (unreadable: ${e.error})\n`);
          continue;
        }
        const process_ = e.pid === null ? 'no pid' : `pid ${e.pid} ${e.alive ? 'running' : 'gone'}`;
        process.stdout.write(`${e.containerId} (${e.phase}${e.pinned ? '' : ', namespace not pinned'}; ${process_}; ` +
          `${formatAge(e.ageSeconds)} old; bundle ${e.bundle ?? 'unknown'})\n`);
        // One row per device: host name <-> container name; a macvlan's key is only an id, so its master is shown too.
        const rows = [['HOST', '', 'CONTAINER', 'KIND', 'STATE', 'MAC', 'MTU'], ...e.devices.map((d) => [
          d.master !== undefined ? `${d.key} on ${d.master}` : d.key, '<->', d.containerName ?? '?', d.kind, d.state,
          d.mac ?? '-', d.mtu === null ? '-' : String(d.mtu),
        ])];
        const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) process.stdout.write(`  ${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
      }
      return 0;
    }
    case 'gc': {
      const results = gc(opts);
      for (const r of results) {
        process.stdout.write(`${r.containerId}: ${r.action} (${r.reason})\n`);
        if (r.action !== 'kept') log.info(`gc: ${r.action} (${r.reason})`, r.containerId);
      }
      return results.some((r) => r.action === 'failed') ? 1 : 0;
    }
  }
  return 0;
}

/** 42s, 5m3s, 2h0m, 3d4h. */
function formatAge(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`;
}

/** The OCI state on stdin; from here on, log lines name its container. */
function containerState(log: Logger): OciState {
  const state = readStdinState();
  log.containerId = state.id;
  return state;
}

export function main(argv: string[]): void {
  let code: number;
  let log: Logger | undefined;
  try {
    const parsed = parseArgs(argv);
    log = new Logger(parsed.logFile !== undefined ? { file: parsed.logFile } : {});
    code = run(parsed, log);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // A usage error is for the person at the terminal, not the logs.
    if (log && !(err instanceof UsageError)) log.error(message);
    else process.stderr.write(`oci-netdev: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (err instanceof UsageError) process.stderr.write('Try oci-netdev --help.\n');
    code = err instanceof UsageError ? 2 : 1;
  }
  log?.close();
  process.exitCode = code;
}
