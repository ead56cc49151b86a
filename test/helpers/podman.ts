// podman 4.3 for e2e tests, run inside a simulated host and kept private: its own --root,
// --runroot and --tmpdir under a test temp dir, vfs storage (no overlay mounts), no events
// journal, and a --hooks-dir holding the `oci-netdev hooks-d` output. Teardown removes every
// container of that private store, in the simulated host so that poststop hooks act there.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OCI_NETDEV } from './hook';
import { inSimHost, Sandbox, sh, ShResult, shOk } from './sandbox';

/** podman needs these here: its default asks for more open files than the hard limit (setup-runtimes.sh). */
export const PODMAN_ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export interface PodmanOptions {
  /** State dir for the hook (--state-dir in the hooks.d file). */
  stateDir: string;
  /** Policy file for the hook (--policy in the hooks.d file). */
  policyFile?: string;
  /** Global options added to the private ones (e.g. --network-config-dir). */
  extraArgs?: string[];
  /** Environment for every podman run (e.g. CONTAINERS_CONF for a private containers.conf). */
  env?: Record<string, string>;
}

export interface Podman {
  /** The hooks.d directory given as --hooks-dir. */
  hooksDir: string;
  /** The hooks.d file as `oci-netdev hooks-d` printed it. */
  hookFile: string;
  /** Global options that keep this podman private. */
  globalArgs: string[];
  /** `podman <global> <args>` in the simulated host. */
  run(args: string[], timeoutMs?: number): ShResult;
}

/**
 * podman 4.3 parses --annotation as CSV: a value holding quotes or commas must be one quoted CSV
 * field with its inner quotes doubled. Returns the argument for `--annotation`.
 */
export function csvAnnotation(key: string, value: string): string {
  return `"${`${key}=${value}`.replace(/"/g, '""')}"`;
}

export function makePodman(sb: Sandbox, simhost: string, opts: PodmanOptions): Podman {
  const dir = sb.tempDir('podman');
  const hooksDir = join(dir, 'hooks.d');
  const globalArgs = [
    '--root', join(dir, 'root'),
    '--runroot', join(dir, 'runroot'),
    '--tmpdir', join(dir, 'tmp'),
    '--hooks-dir', hooksDir,
    '--storage-driver', 'vfs',
    '--events-backend', 'none',
    ...(opts.extraArgs ?? []),
  ];
  const hookFile = join(hooksDir, 'oci-netdev.json');
  shOk('mkdir', ['-p', hooksDir]);
  const hooksD = shOk(OCI_NETDEV, ['--state-dir', opts.stateDir, ...(opts.policyFile ? ['--policy', opts.policyFile] : []), 'hooks-d']);
  writeFileSync(hookFile, hooksD);
  const run = (args: string[], timeoutMs = 120_000): ShResult => sh(...inSimHost(simhost, ['podman', ...globalArgs, ...args]), { timeoutMs, ...(opts.env ? { env: opts.env } : {}) });
  sb.defer(() => {
    const rm = run(['rm', '--all', '--force']);
    const left = run(['ps', '--all', '--quiet']);
    if (rm.status !== 0 || left.stdout.trim() !== '') {
      throw new Error(`podman rm --all --force left containers behind: ${rm.stderr.trim()} ${left.stdout.trim()}`);
    }
  });
  return { hooksDir, hookFile, globalArgs, run };
}
