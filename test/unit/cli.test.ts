// The command line as a person meets it: every command has its own --help, takes only its own
// options, and README, --help and the man page show the same commands. No kernel work here.
import t from 'tap';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS, OPTIONS, commandHelp, gcSummary, mainHelp, usageLine } from '../../src/cli/commands';
import { parseArgs } from '../../src/cli/main';
import type { OptionName } from '../../src/cli/commands';
import type { GcResult } from '../../src/engine/detach';
import { OCI_NETDEV } from '../helpers/hook';
import { REPO_ROOT, sh } from '../helpers/sandbox';
import { UsageError } from '../../src/errors';

// Without the environment's stand-ins for options, so each run sees only its arguments.
const env = { OCI_NETDEV_STATE_DIR: '', OCI_NETDEV_POLICY: '', OCI_NETDEV_LOG_FILE: '', OCI_NETDEV_TIMEOUT: '' };
const run = (args: string[], extra: Record<string, string> = {}) => sh(OCI_NETDEV, args, { env: { ...env, ...extra } });

t.test('every command has its own --help: its usage and options, exit 0', async (t) => {
  for (const c of COMMANDS) {
    // Every form for one command; the usual form for the others (each run is a process start).
    for (const args of c.name === 'validate' ? [[c.name, '--help'], [c.name, '-h'], ['help', c.name], ['--help', c.name], [c.name, '--live', '--help']] : [[c.name, '--help']]) {
      const r = run(args);
      t.equal(r.status, 0, `${args.join(' ')} exits 0`);
      t.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`);
      t.equal(r.stdout, commandHelp(c), `${args.join(' ')} prints the help of ${c.name}`);
    }
    const help = commandHelp(c);
    t.ok(help.startsWith(`Usage: ${usageLine(c)}\n`), `${c.name}: the help starts with its usage`);
    for (const o of c.options) t.match(help, `\n  ${OPTIONS[o].flag}`, `${c.name} --help lists ${OPTIONS[o].flag}`);
  }
  t.equal(run(['status', '--help']).stdout.split('\n')[0], 'Usage: oci-netdev status [OPTIONS]', 'status --help is about status');
  const main = run(['--help']);
  t.equal(main.status, 0);
  t.equal(main.stdout, mainHelp());
  t.equal(run([]).stdout, mainHelp(), 'no command: the main help');
  for (const c of COMMANDS) t.match(main.stdout, `\n  ${c.name}`, `the main help lists ${c.name}`);
});

/** The UsageError parseArgs throws for `args`, or undefined. */
function usageError(args: string[]): UsageError | undefined {
  try {
    parseArgs(args, {});
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  return undefined;
}

t.test('each command takes only the options its help lists', async (t) => {
  for (const c of COMMANDS) {
    for (const [name, o] of Object.entries(OPTIONS)) {
      const args = [c.name, o.flag, ...('value' in o ? ['/x'] : []), ...Array(c.arity[0]).fill('/x')];
      const err = usageError(args);
      if (c.options.includes(name as OptionName)) t.equal(err, undefined, `${args.join(' ')} is accepted`);
      else t.same([err?.message, err?.command], [`${c.name} does not take ${o.flag}`, c.name], `${args.join(' ')} is refused`);
    }
  }
  t.equal(usageError(['--policy', '/p', 'poststop'])?.message, undefined, 'options may come before the command, as hook entries put them');
  t.same(parseArgs(['oci-netdev', '--state-dir', '/s', 'gc', '--json'], {}).json, true, 'or after it');
});

t.test('an unknown or untaken option is a usage error: one line and the hint, exit 2', async (t) => {
  const cases: [string[], string][] = COMMANDS.map((c) => [[c.name, '--bogus'], `${c.name}: unknown option --bogus`]);
  cases.push([['--bogus=1', 'gc'], 'gc: unknown option --bogus'], [['hooks-d', '--json'], 'hooks-d does not take --json'],
    [['gc', '--policy', '/p'], 'gc does not take --policy']);
  for (const [args, message] of cases) {
    const r = run(args);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
    const command = args.find((a) => !a.startsWith('-'))!;
    t.equal(r.stderr, `oci-netdev: ${message}\nTry oci-netdev ${command} --help\n`, `${args.join(' ')}: ${message}`);
  }
  t.equal(run(['inject']).stderr, 'oci-netdev: inject takes BUNDLE (1 argument)\nTry oci-netdev inject --help\n', 'a missing operand');
  t.equal(run(['status', 'x']).stderr, 'oci-netdev: status takes no arguments\nTry oci-netdev status --help\n', 'an extra operand');
  t.equal(run(['nope']).stderr, 'oci-netdev: unknown command nope\nTry oci-netdev --help\n', 'an unknown command');
  t.equal(run(['--state-dir', 'rel', 'gc']).stderr, 'oci-netdev: state dir must be an absolute path (got rel)\nTry oci-netdev gc --help\n');
});

t.test('README, --help and the man page list the same commands', async (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = /\n## Commands\n[\s\S]*?```\n([\s\S]*?)```/.exec(readme);
  t.ok(section, 'README has a Commands section with a code block');
  const listing = /\nCommands:\n([\s\S]*?)\n\n/.exec(mainHelp())![1];
  t.equal(section?.[1].trimEnd(), listing.trimEnd(), 'its code block is the command list of oci-netdev --help');
  const man = readFileSync(join(REPO_ROOT, 'man/oci-netdev.1'), 'utf8');
  const roff = (text: string) => text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  for (const c of COMMANDS) {
    t.match(man, `\n\\fB${roff(usageLine(c))}\\fR\n`, `the man page has ${c.name}'s usage`);
    t.match(man, roff(c.description.slice(0, 40)), `and its description`);
    for (const o of c.options) t.match(man, roff(OPTIONS[o].help.slice(0, 30)), `and its option ${OPTIONS[o].flag}`);
  }
});

t.test('gc summary line', async (t) => {
  t.equal(gcSummary([]), 'gc: nothing to do');
  const r = (action: GcResult['action']) => ({ containerId: 'c', action, reason: '' });
  t.equal(gcSummary([r('restored'), r('restored'), r('kept')]), 'gc: 2 restored, 1 kept, 0 failed');
  t.equal(gcSummary([r('failed'), r('busy'), r('removed')]), 'gc: 0 restored, 0 kept, 1 failed, 1 busy, 1 removed');
  t.equal(gcSummary([r('lost'), r('forgotten')]), 'gc: 0 restored, 0 kept, 0 failed, 1 lost, 1 forgotten');
});

t.test('inject keeps config.json\'s mode, and writes env and timeout into each entry', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ondt-inject-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ ociVersion: '1.0.2' }));
  chmodSync(file, 0o600);
  const r = run(['--state-dir', '/run/ondt-x', 'inject', dir], { OCI_NETDEV_TIMEOUT: '30' });
  t.equal(r.status, 0, r.stderr);
  t.equal(statSync(file).mode & 0o7777, 0o600, '0600 stays 0600');
  const hooks = JSON.parse(readFileSync(file, 'utf8')).hooks;
  for (const [stage, command] of [['createRuntime', 'create-runtime'], ['poststop', 'poststop']]) {
    t.same(hooks[stage], [{
      path: join(REPO_ROOT, 'bin/oci-netdev'),
      args: ['oci-netdev', '--state-dir', '/run/ondt-x', command],
      env: [`PATH=${join(process.execPath, '..')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, 'OCI_NETDEV_TIMEOUT=30'],
      timeout: 35,
    }], `${stage}: env PATH from the running node, the timeout for the runtime and the hook's watchdog`);
  }
  chmodSync(file, 0o640);
  t.equal(run(['inject', dir]).stdout, `${dir}/config.json: hooks already present\n`, 'a second run adds nothing');
  t.equal(statSync(file).mode & 0o7777, 0o640, 'and keeps 0640 too');
  t.equal(JSON.parse(readFileSync(file, 'utf8')).hooks.poststop[0].timeout, 125, 'without OCI_NETDEV_TIMEOUT: the default 120 s, plus the margin');
});

t.test('hooks-d carries the CNI options into its hook entry; NETCONFPATH and CNI_PATH stand in for them', async (t) => {
  const given = run(['hooks-d', '--cni-conf-dir', '/etc/ondt/net.d', '--cni-path', '/opt/ondt:/usr/lib/cni', '--cni-cache-dir', '/var/lib/ondt']);
  t.equal(given.status, 0, given.stderr);
  t.same(JSON.parse(given.stdout).hook.args,
    ['oci-netdev', '--cni-conf-dir', '/etc/ondt/net.d', '--cni-path', '/opt/ondt:/usr/lib/cni', '--cni-cache-dir', '/var/lib/ondt', 'hook']);
  const fromEnv = run(['hooks-d'], { NETCONFPATH: '/etc/ondt/net.d', CNI_PATH: '/opt/ondt' });
  t.same(JSON.parse(fromEnv.stdout).hook.args, ['oci-netdev', '--cni-conf-dir', '/etc/ondt/net.d', '--cni-path', '/opt/ondt', 'hook']);
  t.match(run(['hooks-d', '--cni-conf-dir', 'rel']).stderr, 'CNI conf dir must be an absolute path (got rel)');
  t.match(run(['cni', 'add', 'net']).stderr, 'cni add takes NETWORK NETNS');
  t.match(run(['cni', 'add']).stderr, 'cni takes add|check|del NETWORK NETNS | status|gc NETWORK (2 to 3 arguments)', 'too few arguments: what the command takes, not "at most"');
  t.match(run(['cni', 'status', 'net', '/run/netns/x']).stderr, 'cni status takes NETWORK');
  t.match(run(['cni', 'up', 'net', '/run/netns/x']).stderr, 'unknown cni command up');
  t.match(run(['cni', 'add', 'net', '/run/netns/x', '--runtime-config', '[1]']).stderr, '--runtime-config: must be a JSON object');
});
