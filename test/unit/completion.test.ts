// The bash completion (scripts/gen-completion.mjs writes completion/oci-netdev.bash from the command
// table), sourced in bash: what it offers for a command line, word by word, as compgen gives it.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CDI_VERSIONS } from '../../src/cdi/spec';
import { COMMANDS, OPTIONS } from '../../src/cli/commands';
import { REPO_ROOT, shOk } from '../helpers/sandbox';

const SCRIPT = join(REPO_ROOT, 'completion/oci-netdev.bash');

/** What the completion offers for `words` (the last one is the word being completed), in `cwd`, sorted. */
function complete(words: string[], cwd = REPO_ROOT): string[] {
  const line = ['oci-netdev', ...words].map((w) => `'${w}'`).join(' ');
  const out = shOk('bash', ['--norc', '-c', `source "$1"; cd "$2"; COMP_WORDS=(${line}); COMP_CWORD=${words.length}; _oci_netdev; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', SCRIPT, cwd]);
  return out.split('\n').filter(Boolean).sort();
}

t.test('completion offers the commands, their options and their operands', async (t) => {
  t.match(shOk('bash', ['--norc', '-c', 'source "$1"; complete -p oci-netdev', 'bash', SCRIPT]), /-F _oci_netdev oci-netdev/, 'it registers for oci-netdev');
  t.same(complete(['']), COMMANDS.map((c) => c.name).sort(), 'first word: every command');
  t.same(complete(['st']), ['status'], 'a prefix narrows it');
  t.same(complete(['--state-dir', '/run', 'cn']), ['cni'], 'an option and its value before the command are skipped');
  t.same(complete(['--']), ['--help', '--log-file', '--policy', '--state-dir', '--version'], 'options before a command');
  for (const c of COMMANDS) {
    t.same(complete([c.name, '--']), [...c.options.map((o) => OPTIONS[o].flag), '--help'].sort(), `${c.name}: the options its --help lists`);
  }
  t.same(complete(['status', '--no']), ['--no-trunc']);
  t.same(complete(['cdi', '']), ['generate'], 'cdi: its sub-command');
  t.same(complete(['cdi', 'generate', '']), [], 'and nothing after it');
  t.same(complete(['cni', '']), ['add', 'check', 'del', 'gc', 'status'], 'cni: its operations');
  t.same(complete(['help', 'ho']), ['hook', 'hooks-d'], 'help: the commands');
  t.same(complete(['cdi', 'generate', '--cdi-version', '']), [...CDI_VERSIONS].sort(), '--cdi-version: the versions');
  t.ok(complete(['cdi', 'generate', '--device', '']).includes('lo'), '--device: the NICs of this host');
  t.same(complete(['cni', 'add', 'net', '--ifname', '']), [], '--ifname: nothing to offer');

  const dir = mkdtempSync(join(tmpdir(), 'oci-netdev-completion-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bundle'));
  writeFileSync(join(dir, 'bun.json'), '{}');
  t.same(complete(['inject', 'bun'], dir), ['bun.json', 'bundle'], 'inject: paths');
  t.same(complete(['--state-dir', 'bun'], dir), ['bundle'], '--state-dir: directories only');
  t.same(complete(['cni', 'add', 'net', 'bun'], dir), ['bun.json', 'bundle'], 'cni add NETWORK NETNS: NETNS is a path');
  t.same(complete(['cni', 'add', 'bun'], dir), [], 'but NETWORK is not');
});
