// The command line: parses arguments, calls the engine, prints results.
// Every failure is one line on stderr and a non-zero exit.

import { DEFAULT_STATE_DIR } from '../apply/statedir';
import { readStdinState, validateConfigFile } from '../config';
import type { OciState } from '../config';
import { attach, detach, gc, status, EngineOptions } from '../engine/lifecycle';
import { hooksDConfig, injectHooks } from '../engine/hooks';

const HELP = `Usage: oci-netdev [--state-dir DIR] COMMAND [ARGS]

Moves host network devices into a container's network namespace (runtime-spec
linux.netDevices), creates veth and macvlan devices there, and puts everything
back when the container stops. Runs as OCI createRuntime and poststop hooks.

Hook commands (read the OCI state on stdin):
  create-runtime      attach the devices of BUNDLE/config.json and the
                      oci-netdev.netDevices annotation; on failure, undo all
  poststop            restore every device; a second run does nothing
  hook                either of the two, chosen by the state's status
                      (used by hooks.d files, which give one command for
                      both stages)

Other commands:
  inject BUNDLE       add both hooks to BUNDLE/config.json (idempotent)
  hooks-d             print a hooks.d file (version 1.0.0) for podman/CRI-O
  validate CONFIG     check a config.json's netDevices and annotation
  status [--json]     list containers and the devices they hold
  gc                  restore containers whose hook died or whose
                      container is gone without a poststop

Options:
  --state-dir DIR     state directory (env OCI_NETDEV_STATE_DIR,
                      default ${DEFAULT_STATE_DIR})
  -h, --help          show this help
  -V, --version       show the version
`;

class UsageError extends Error {}

interface Parsed {
  command: string;
  args: string[];
  stateDir: string;
  stateDirGiven: boolean;
  json: boolean;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Parsed {
  let stateDir: string | undefined;
  let json = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--state-dir') {
      stateDir = argv[++i];
      if (!stateDir) throw new UsageError('--state-dir needs a directory');
    } else if (a.startsWith('--state-dir=')) {
      stateDir = a.slice('--state-dir='.length);
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
  return { command, args, stateDir: given ?? DEFAULT_STATE_DIR, stateDirGiven: given !== undefined, json };
}

const ARITY: Record<string, number> = {
  'create-runtime': 0, poststop: 0, hook: 0, inject: 1, 'hooks-d': 0, validate: 1, status: 0, gc: 0, help: 0, version: 0,
};

function run(p: Parsed): number {
  if (!(p.command in ARITY)) throw new UsageError(`unknown command ${p.command}`);
  if (p.args.length !== ARITY[p.command]) {
    throw new UsageError(`${p.command} takes ${ARITY[p.command] || 'no'} argument${ARITY[p.command] === 1 ? '' : 's'}`);
  }
  const opts: EngineOptions = {
    stateDir: p.stateDir,
    warn: (m) => process.stderr.write(`oci-netdev: WARNING: ${m}\n`),
  };
  const passStateDir = p.stateDirGiven ? ['--state-dir', p.stateDir] : [];
  switch (p.command) {
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'version':
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      process.stdout.write(`oci-netdev ${require('../../../package.json').version}\n`);
      return 0;
    case 'create-runtime':
      attach(readStdinState(), opts);
      return 0;
    case 'poststop':
      detach(readStdinState(), opts);
      return 0;
    case 'hook': {
      const state: OciState = readStdinState();
      if (state.status === 'stopped') detach(state, opts);
      else attach(state, opts);
      return 0;
    }
    case 'inject': {
      const { added } = injectHooks(p.args[0], passStateDir);
      process.stdout.write(`${p.args[0]}/config.json: ${added ? `added ${added} hook(s)` : 'hooks already present'}\n`);
      return 0;
    }
    case 'hooks-d':
      process.stdout.write(JSON.stringify(hooksDConfig(passStateDir), null, 2) + '\n');
      return 0;
    case 'validate': {
      const devices = validateConfigFile(p.args[0]);
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
        process.stdout.write(`${e.containerId} (${e.phase}${e.pinned ? '' : ', namespace not pinned'})\n`);
        // One row per device: host name <-> container name; a macvlan's key is only an id, so its master is shown too.
        const rows = [['HOST', '', 'CONTAINER', 'KIND', 'MAC', 'MTU'], ...e.devices.map((d) => [
          d.master !== undefined ? `${d.key} on ${d.master}` : d.key, '<->', d.containerName ?? '?', d.kind, d.mac ?? '-', d.mtu === null ? '-' : String(d.mtu),
        ])];
        const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) process.stdout.write(`  ${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
      }
      return 0;
    }
    case 'gc': {
      const results = gc(opts);
      for (const r of results) process.stdout.write(`${r.containerId}: ${r.action} (${r.reason})\n`);
      return results.some((r) => r.action === 'failed') ? 1 : 0;
    }
  }
  return 0;
}

export function main(argv: string[]): void {
  let code: number;
  try {
    code = run(parseArgs(argv));
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`oci-netdev: ${message}\n`);
    if (err instanceof UsageError) process.stderr.write('Try oci-netdev --help.\n');
    code = err instanceof UsageError ? 2 : 1;
  }
  process.exitCode = code;
}
