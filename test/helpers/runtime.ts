// Runs containers under runc or crun inside a simulated host, each runtime with a private --root.
import { inSimHost, Sandbox, sh, shQuote, ShResult, withoutNode } from './sandbox';

export type Runtime = 'runc' | 'crun';
export const RUNTIMES: readonly Runtime[] = ['runc', 'crun'];

/** Container ids in a runtime root (`<runtime> --root <root> list -q`). */
export function listContainers(runtime: Runtime, root: string): string[] {
  const r = sh(runtime, ['--root', root, 'list', '-q']);
  if (r.status !== 0) throw new Error(`${runtime} --root ${root} list: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** A private --root for `runtime`; teardown force-deletes container `id` in it (in the simulated host, so poststop hooks act there) and fails if it is still listed. */
function runtimeRoot(sb: Sandbox, runtime: Runtime, simhost: string, id: string): string {
  const root = sb.tempDir(`${runtime}-root`);
  sb.defer(() => {
    const del = sh(...inSimHost(simhost, [runtime, '--root', root, 'delete', '--force', id]));
    if (listContainers(runtime, root).includes(id)) {
      throw new Error(`${runtime} delete --force ${id} left it behind: ${del.stderr.trim()}`);
    }
  });
  return root;
}

/**
 * `nsenter --net=/run/netns/<simhost> <runtime> --root <new dir> run --bundle <bundle> <id>`, in the
 * foreground, capturing the container's output. Teardown force-deletes the container and fails if it
 * is still listed.
 */
export function runContainer(sb: Sandbox, runtime: Runtime, simhost: string, bundle: string, id: string, timeoutMs = 60_000): ShResult {
  const root = runtimeRoot(sb, runtime, simhost, id);
  return sh(...inSimHost(simhost, [runtime, '--root', root, 'run', '--bundle', bundle, id]), { timeoutMs });
}

/**
 * runContainer where no node is reachable and /tmp is an empty noexec tmpfs (withoutNode): stdout
 * is the container's output, then `<runtime>: <exit status>`, then `/tmp:` and what /tmp held.
 */
export function runContainerWithoutNode(sb: Sandbox, runtime: Runtime, simhost: string, bundle: string, id: string): ShResult {
  const root = runtimeRoot(sb, runtime, simhost, id);
  const [cmd, args] = inSimHost(simhost, [runtime, '--root', root, 'run', '--bundle', bundle, id]);
  return withoutNode(`${[cmd, ...args].map(shQuote).join(' ')}; echo "${runtime}: $?"`);
}
