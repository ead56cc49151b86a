// The runtimes drop a successful hook's stderr, so a warning from poststop would be lost: with
// `inject --log-file`, the hooks the runtime runs append it to the log file. The container is made
// with `create`, the moved NIC's name is taken on the host while it exists, then `start` and
// `delete --force` run it and its poststop, which restores the NIC under a fallback name and warns.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle';
import { makeStateDir, OCI_NETDEV } from '../helpers/hook';
import { uniqueId, uniqueName } from '../helpers/names';
import { RUNTIMES } from '../helpers/runtime';
import { inSimHost, nsSnapshot, Sandbox, sh, shOk } from '../helpers/sandbox';

for (const runtime of RUNTIMES) {
  t.test(`${runtime}: a warning from poststop is found in the log file`, async (t) => {
    const sb = new Sandbox(t);
    const simhost = sb.createNetns('simhost');
    const stateDir = makeStateDir(sb);
    const nic = uniqueName('nic');
    sb.createVethPair(simhost, nic, uniqueName('peer'));
    const logDir = sb.tempDir('log');
    const logFile = join(logDir, 'oci-netdev.log');

    const bundle = makeBundle(sb, { args: ['true'], netDevices: { [nic]: { name: 'eth1' } } });
    shOk(OCI_NETDEV, ['--state-dir', stateDir, '--log-file', logFile, 'inject', bundle]);
    const hooks = (JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { hooks: Record<string, { args: string[] }[]> }).hooks;
    t.same(hooks.poststop[0].args, ['oci-netdev', '--state-dir', stateDir, '--log-file', logFile, 'poststop'], 'inject passes --log-file on');

    const id = uniqueId(runtime);
    const root = sb.tempDir(`${runtime}-root`);
    sb.defer(() => { sh(...inSimHost(simhost, [runtime, '--root', root, 'delete', '--force', id])); });
    // `create` leaves the container's stdio open until it exits: a file, not a pipe to wait on.
    const outFile = join(logDir, 'runtime-output');
    const out = openSync(outFile, 'w');
    const created = spawnSync(...inSimHost(simhost, [runtime, '--root', root, 'create', '--bundle', bundle, id]), { stdio: ['ignore', out, out], timeout: 120_000 });
    closeSync(out);
    t.equal(created.status, 0, `${runtime} create`, { output: readFileSync(outFile, 'utf8') });
    t.notOk(nic in nsSnapshot(simhost), 'the NIC is in the container');

    // The NIC's name is taken on the host meanwhile.
    sb.createVethPair(simhost, nic, uniqueName('peer'));
    shOk(...inSimHost(simhost, [runtime, '--root', root, 'start', id]));
    const deleted = sh(...inSimHost(simhost, [runtime, '--root', root, 'delete', '--force', id]));
    t.equal(deleted.status, 0, `${runtime} delete --force runs poststop`, { stderr: deleted.stderr });
    const fallback = `${nic.slice(0, 12)}-r0`;
    t.ok(fallback in nsSnapshot(simhost), `the NIC is back as ${fallback}`);

    const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    const stamp = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';
    t.ok(lines.some((l) => new RegExp(`^${stamp} info ${id} device ${nic}: moveIn$`).test(l)), 'createRuntime logged the move', { lines });
    const warnings = lines.filter((l) => / warning /.test(l));
    t.equal(warnings.length, 2, 'two warnings', { lines });
    t.match(warnings[0], new RegExp(`^${stamp} warning ${id} device ${nic}: .*restored as ${fallback}$`), 'poststop\'s warning, with the container id');
    t.match(warnings[1], new RegExp(`^${stamp} warning ${id} container ${id}: its record stays open: ${nic}: home as ${fallback}`), 'and that its record stays open for gc');
    t.ok(lines.some((l) => new RegExp(`^${stamp} info ${id} device ${nic}: moveOut`).test(l)), 'poststop logged the move back', { lines });
  });
}

t.test('hooks-d passes --log-file (or OCI_NETDEV_LOG_FILE) on to the hook; a relative path is refused', async (t) => {
  const hookArgs = (args: string[], env: Record<string, string> = {}) =>
    (JSON.parse(shOk(OCI_NETDEV, [...args, 'hooks-d'], { env })) as { hook: { args: string[] } }).hook.args;
  t.same(hookArgs(['--log-file', '/var/log/oci-netdev.log']), ['oci-netdev', '--log-file', '/var/log/oci-netdev.log', 'hook']);
  t.same(hookArgs([], { OCI_NETDEV_LOG_FILE: '/var/log/x.log' }), ['oci-netdev', '--log-file', '/var/log/x.log', 'hook']);
  t.same(hookArgs([]), ['oci-netdev', 'hook'], 'not given: not passed');
  const r = sh(OCI_NETDEV, ['--log-file', 'relative.log', 'hooks-d']);
  t.equal(r.status, 2);
  t.match(r.stderr, /^oci-netdev: log file must be an absolute path \(got relative.log\)\n/);
});
