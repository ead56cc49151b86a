// The man pages scripts/gen-man.mjs writes: oci-netdev(1) from the command table, with EXAMPLES,
// FILES, ENVIRONMENT, EXIT STATUS and SEE ALSO; oci-netdev(5) from the schemas, with every field of
// a netDevices entry and of a policy section. groff must read both without a warning.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLES, FILES } from '../../src/cli/commands';
import { REPO_ROOT, sh } from '../helpers/sandbox';

const page = (name: string) => readFileSync(join(REPO_ROOT, 'man', name), 'utf8');
const sections = (roff: string) => [...roff.matchAll(/^\.SH (.*)$/gm)].map((m) => m[1]);
const roff = (text: string) => text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
/** The page as man shows it, and groff's warnings. */
function render(name: string): { text: string; warnings: string } {
  const r = sh('groff', ['-man', '-Tutf8', '-ww', '-P', '-cbou', join(REPO_ROOT, 'man', name)], { env: { LC_ALL: 'C.UTF-8' } });
  return { text: r.stdout, warnings: r.stderr };
}

t.test('oci-netdev(1): the sections a man page has, from the command table', async (t) => {
  const man = page('oci-netdev.1');
  t.same(sections(man), ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'OPTIONS', 'ENVIRONMENT', 'EXIT STATUS', 'EXAMPLES', 'FILES', 'SEE ALSO']);
  for (const [command] of EXAMPLES) t.match(man, roff(command), `EXAMPLES: ${command}`);
  for (const [file] of FILES) t.match(man, `\\fI${roff(file)}\\fR`, `FILES: ${file}`);
  const { text, warnings } = render('oci-netdev.1');
  t.equal(warnings, '', 'groff reads it without a warning');
  t.match(text, /SEE ALSO\n\s+oci-netdev\(5\), runc\(8\)/, 'SEE ALSO names the section-5 page first');
  t.match(text, /\n\s+2\s+a usage error/, 'EXIT STATUS: one entry per code');
});

t.test('oci-netdev(5): every field of a netDevices entry, of a policy section, and the CNI keys', async (t) => {
  const man = page('oci-netdev.5');
  t.same(sections(man), ['NAME', 'DESCRIPTION', 'CONFIG.JSON', 'ANNOTATION', 'POLICY', 'CNI NETWORK CONFIG', 'FILES', 'SEE ALSO']);
  const schema = (name: string) => JSON.parse(readFileSync(join(REPO_ROOT, 'spec', `${name}.schema.json`), 'utf8'));
  const tags = (section: string) => {
    const body = man.slice(man.indexOf(`.SH ${section}\n`), man.indexOf('\n.SH ', man.indexOf(`.SH ${section}\n`) + 1));
    return [...body.matchAll(/^\.TP\n\\fB(.*)\\fR$/gm)].map((m) => m[1]);
  };
  t.same(tags('CONFIG.JSON'), Object.keys(schema('netdevices').definitions.entry.properties), 'CONFIG.JSON: each entry field, in the schema\'s order');
  t.same(tags('POLICY'), ['config', 'annotation', 'cni', ...Object.keys(schema('policy').definitions.section.properties)], 'POLICY: the sections and their fields');
  t.same(tags('CNI NETWORK CONFIG'), ['kind', 'device', 'hwaddr', 'pciBusID', 'kernelpath', 'runtimeConfig.deviceID', 'hostName', 'master, mode', 'mtu', 'mac', 'ipam', 'stateDir, policy']);
  t.match(man, 'oci\\-netdev.netDevices', 'the annotation by name');
  t.notMatch(man, /src\/|x-message/, 'no notes for developers from the schemas');
  const { warnings } = render('oci-netdev.5');
  t.equal(warnings, '', 'groff reads it without a warning');
});
