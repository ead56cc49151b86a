// A run loads only the validators of the documents it reads (scripts/gen-validators.mjs writes one
// file per schema): a hook's poststop reads the OCI state and the journal, never config.json.
import t from 'tap';
import { basename } from 'node:path';
import { validate } from '../../src/schema/validate';

const loaded = () => Object.keys(require.cache).filter((f) => f.includes('/schema/generated/')).map((f) => basename(f, '.js')).sort();

t.test('each validator is loaded at its first use, once', async (t) => {
  t.same(loaded(), [], 'none before a document is checked');
  validate('state', { ociVersion: '1.0.2', id: 'c1', status: 'stopped', bundle: '/b' }, 'OCI state');
  t.same(loaded(), ['state'], 'the OCI state: its validator alone');
  t.throws(() => validate('state', { ociVersion: '1.0.2', id: 'c1', status: 'stopped', bundle: 7 }, 'OCI state'),
    { message: 'OCI state: bundle: must be string (got 7)' }, 'and it still refuses what it refused');
  validate('netDevices', { eth1: { name: 'net1' } }, 'config.json', true);
  t.same(loaded(), ['netDevices', 'state'], 'then netDevices');
});
