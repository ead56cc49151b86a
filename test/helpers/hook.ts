// Runs the hook CLI the way a runtime would, inside a simulated host.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { inSimHost, REPO_ROOT, Sandbox, sh, ShResult } from './sandbox';

/** The Node launcher, for the tests of the launcher itself. */
export const NODE_LAUNCHER = resolve(REPO_ROOT, 'bin/oci-netdev');

/** The single executable that `make build` compiles (scripts/build-exe.mjs). */
export const EXECUTABLE = resolve(REPO_ROOT, 'dist/oci-netdev');

/**
 * The binary under test, the one switch between the two builds: OCI_NETDEV_TEST_BIN (a path,
 * relative to the repository or absolute), which `make test` sets to the single executable for
 * its second pass of the integration and e2e suites, else the Node launcher. In that pass the
 * in-process rigs run their hooks through it too (netdevices.ts makeRig).
 */
export const BINARY_UNDER_TEST = process.env.OCI_NETDEV_TEST_BIN ? resolve(REPO_ROOT, process.env.OCI_NETDEV_TEST_BIN) : undefined;

export const OCI_NETDEV = BINARY_UNDER_TEST ?? NODE_LAUNCHER;

export interface HookOptions {
  stateDir: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * `nsenter --net=/run/netns/<simhost> bin/oci-netdev <subcommand> --state-dir <dir>` with the OCI
 * state ({ociVersion, id, status, pid, bundle, annotations}) as JSON on stdin.
 */
export function runHook(simhost: string, subcommand: string, state: object, opts: HookOptions): ShResult {
  return sh(...inSimHost(simhost, [OCI_NETDEV, subcommand, '--state-dir', opts.stateDir]), {
    input: JSON.stringify(state),
    env: opts.env,
    timeoutMs: opts.timeoutMs,
  });
}

export interface RunningHook {
  pid: number;
  done: Promise<ShResult>;
}

/**
 * runHook without waiting: the hook as a runtime starts it, for tests that kill it mid-way.
 * `onStderr` sees the whole stderr so far each time more arrives (a clock for OCI_NETDEV_TRACE=1).
 */
export function startHook(
  simhost: string, subcommand: string, state: object, opts: HookOptions & { onStderr?: (soFar: string) => void },
): RunningHook {
  const [cmd, args] = inSimHost(simhost, [OCI_NETDEV, subcommand, '--state-dir', opts.stateDir]);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    opts.onStderr?.(stderr);
  });
  const done = new Promise<ShResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  child.stdin.end(JSON.stringify(state));
  if (child.pid === undefined) throw new Error(`cannot start ${cmd}`);
  return { pid: child.pid, done };
}

/** A private state dir under /run/oci-netdev-test-<run>/; pins left in it are unmounted in teardown. */
export function makeStateDir(sb: Sandbox): string {
  return sb.tempDir('state');
}
