// Runs the hook CLI the way a runtime would, inside a simulated host.
import { join } from 'node:path';
import { inSimHost, REPO_ROOT, Sandbox, sh, ShResult } from './sandbox';

export const OCI_NETDEV = join(REPO_ROOT, 'bin/oci-netdev');

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

/** A private state dir under /run/oci-netdev-test-<run>/; pins left in it are unmounted in teardown. */
export function makeStateDir(sb: Sandbox): string {
  return sb.tempDir('state');
}
