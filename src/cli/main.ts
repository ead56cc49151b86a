// The command line: parses arguments, runs one command of the table in commands.ts, prints
// results. Every failure is one line on stderr and a non-zero exit; a usage error adds a hint.

import { DEFAULT_STATE_DIR } from '../engine/options';
import { Logger } from '../log/logger';
import type { Invocation, OptionSpec } from './commands';
import { Command, OPTIONS, OptionName, commandHelp, findCommand, mainHelp } from './commands';
import { hookTimeoutSeconds, startWatchdog } from '../engine/watchdog';
import { readFileSync } from 'node:fs';
import type * as CniPlugin from '../cni/plugin';
import { UsageError } from '../errors';

/** What the command line asks for, a command's Invocation but its outputs; `command` undefined: the main help. */
export type Parsed = Omit<Invocation, 'log' | 'out' | 'self'> & { command?: Command; help: boolean };

/** What a value placeholder stands for, in "needs a ..." errors. */
const VALUE_NAMES: Record<string, string> = {
  DIR: 'directory', FILE: 'file', SPEC: 'device SPEC', V: 'version', DIRS: 'directory list', NAME: 'name', ARGS: 'K=V list', JSON: 'JSON object', ID: 'id',
};

const BY_FLAG = new Map(Object.entries(OPTIONS).map(([name, o]) => [o.flag, name as OptionName]));

/** Options may come before or after the command; each command takes only the options its help lists. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Parsed {
  const given = new Map<OptionName, string | true>();
  const devices: string[] = [];
  const cdiFilter = { include: [] as string[], exclude: [] as string[] };
  const operands: string[] = [];
  let help = false;
  let version = false;
  const unknown: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') help = true;
    else if (a === '-V' || a === '--version') version = true;
    else if (a.startsWith('-') && a !== '-') {
      const eq = a.indexOf('=');
      const flag = eq > 0 ? a.slice(0, eq) : a;
      const name = BY_FLAG.get(flag);
      if (name === undefined) {
        unknown.push(flag);
        continue;
      }
      const spec: OptionSpec = OPTIONS[name];
      if (spec.value === undefined) {
        if (eq > 0) throw new UsageError(`${flag} takes no value`, operands[0]);
        given.set(name, true);
      } else {
        const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (!value) throw new UsageError(`${flag} needs a ${VALUE_NAMES[spec.value]}`, operands[0]);
        // --device, --include and --exclude may be given many times; every other option once, the last one counting.
        if (name === 'device') devices.push(value);
        else if (name === 'include' || name === 'exclude') cdiFilter[name].push(value);
        given.set(name, value);
      }
    } else operands.push(a);
  }
  // Hook entries put the program name first (args: ["oci-netdev", "create-runtime"]).
  if (operands[0] === 'oci-netdev') operands.shift();
  const [name, ...args] = operands;
  if (name === undefined && version) return parseArgs(['version'], env);
  const command = name === undefined ? undefined : findCommand(name);
  const parsed: Parsed = {
    ...(command ? { command } : {}), help, args, stateDir: DEFAULT_STATE_DIR, stateDirGiven: false, json: false, noTrunc: false, live: false, devices, cdiFilter, cni: {}, cniRun: {},
    argv: argv[0] === 'oci-netdev' ? argv.slice(1) : argv,
  };
  if (help) return parsed;
  if (!command) {
    if (unknown.length || given.size) throw new UsageError(`${unknown[0] ?? OPTIONS[[...given.keys()][0]].flag} needs a command`);
    parsed.help = true;
    return parsed;
  }
  if (unknown.length) throw new UsageError(`${command.name}: unknown option ${unknown[0]}`, command.name);
  if (version) throw new UsageError(`${command.name}: unknown option --version`, command.name);
  for (const opt of given.keys()) {
    if (!command.options.includes(opt)) throw new UsageError(`${command.name} does not take ${OPTIONS[opt].flag}`, command.name);
  }
  const [least, most] = command.arity;
  if (args.length < least || args.length > most) {
    const wanted = most === 0 ? 'no arguments'
      : least === most ? `${command.operands} (${least} argument${least === 1 ? '' : 's'})`
      : least === 0 ? `at most ${most} argument${most === 1 ? '' : 's'}`
      : `${command.operands} (${least} to ${most} arguments)`;
    throw new UsageError(`${command.name} takes ${wanted}`, command.name);
  }
  // The environment stands in for an option only where the command takes that option.
  const fromEnv = (opt: OptionName, variable: string): string | undefined => {
    if (!command.options.includes(opt)) return undefined;
    const v = given.get(opt);
    return typeof v === 'string' ? v : env[variable] || undefined;
  };
  const stateDir = fromEnv('stateDir', 'OCI_NETDEV_STATE_DIR');
  const policyFile = fromEnv('policy', 'OCI_NETDEV_POLICY');
  const logFile = fromEnv('logFile', 'OCI_NETDEV_LOG_FILE');
  const cniConfDir = fromEnv('cniConfDir', 'NETCONFPATH');
  const cniCacheDir = fromEnv('cniCacheDir', 'OCI_NETDEV_CNI_CACHE_DIR');
  const paths = [['state dir', stateDir], ['policy file', policyFile], ['log file', logFile], ['CNI conf dir', cniConfDir], ['CNI cache dir', cniCacheDir]] as const;
  for (const [what, value] of paths) {
    if (value !== undefined && !value.startsWith('/')) throw new UsageError(`${what} must be an absolute path (got ${value})`, command.name);
  }
  return {
    ...parsed,
    ...(stateDir !== undefined ? { stateDir, stateDirGiven: true } : {}),
    ...(policyFile !== undefined ? { policyFile } : {}),
    ...(logFile !== undefined ? { logFile } : {}),
    json: given.has('json'),
    noTrunc: given.has('noTrunc'),
    live: given.has('live'),
    ...(typeof given.get('out') === 'string' ? { outFile: given.get('out') as string } : {}),
    ...(typeof given.get('cdiVersion') === 'string' ? { cdiVersion: given.get('cdiVersion') as string } : {}),
    ...(typeof given.get('forget') === 'string' ? { forget: given.get('forget') as string } : {}),
    cni: defined({ confDir: cniConfDir, path: fromEnv('cniPath', 'CNI_PATH'), cacheDir: cniCacheDir }),
    cniRun: defined({
      ifname: fromEnv('ifname', 'CNI_IFNAME'), args: fromEnv('cniArgs', 'CNI_ARGS'), runtimeConfig: fromEnv('runtimeConfig', 'CAP_ARGS'),
      containerId: fromEnv('containerId', 'CNI_CONTAINERID'),
    }),
  };
}

/** `o` without its undefined fields. */
function defined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

function run(p: Parsed, self: string, log: Logger): number {
  const out = (text: string) => process.stdout.write(text);
  if (p.help) {
    out(p.command ? commandHelp(p.command) : mainHelp());
    return 0;
  }
  const command = p.command!;
  if (command.hook) startWatchdog(hookTimeoutSeconds());
  return command.run({ ...p, self, log, out });
}

/**
 * A reader that went away (`oci-netdev status | head -1`) ends the output quietly: what the
 * command had to do is done by the time the write fails, and the status it chose stands.
 */
function endQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit();
  });
}

/** Runs the command line `argv`; `self` is the executable that runs us (the single executable, or bin/oci-netdev), which hook entries name. */
export function main(argv: string[], self: string): void {
  endQuietlyOnClosedPipe(process.stdout);
  endQuietlyOnClosedPipe(process.stderr);
  // A CNI runtime runs every plugin with CNI_COMMAND set and the network config on stdin.
  if (process.env.CNI_COMMAND !== undefined) {
    // Required here, not above: the CNI front door brings node:crypto and node:child_process,
    // which cost every hook run 10-50 ms to load and which a hook does not use.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runPlugin } = require('../cni/plugin') as typeof CniPlugin;
    process.exitCode = runPlugin({
      env: process.env, stdin: readFileSync(0, 'utf8'), stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t),
    });
    return;
  }
  let code: number;
  let log: Logger | undefined;
  try {
    const parsed = parseArgs(argv);
    log = new Logger(parsed.logFile !== undefined ? { file: parsed.logFile } : {});
    code = run(parsed, self, log);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // A usage error is for the person at the terminal, not the logs.
    if (log && !(err instanceof UsageError)) log.error(message);
    else process.stderr.write(`oci-netdev: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (err instanceof UsageError) process.stderr.write(`Try oci-netdev ${err.command ? `${err.command} ` : ''}--help\n`);
    code = err instanceof UsageError ? 2 : 1;
  }
  log?.close();
  process.exitCode = code;
}
