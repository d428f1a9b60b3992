import { expect } from 'chai';
import type { Knex } from 'knex';
import { MAX_STORED_FAILURES, MAX_STORED_FAILURE_BYTES } from '../../lib/attestation/stored-failures.js';
import { runCli } from '../helpers/cli-runner.js';
import { createDeployment, type Deployment } from './helpers/verifier-fixture.js';

const AGENT = 'agent-history-cli-pages';
/** Rows as large as a row gets (~400 KB each): the verifier's 4 MiB page holds about ten of them. */
const HEAVY_ROWS = 30;

/**
 * `ironlime tenant history --limit n` against a verifier whose history pages stop at 4 MiB of rows
 * (`next_before`): the CLI follows the pages up to the rows asked for, and `--before` reads on from a
 * history id. Before, it printed the first page only — about ten of 31 rows — and said nothing.
 */
describe('ironlime tenant history: follows the verifier\'s byte-bounded pages [postgres]', function () {
  this.timeout(60_000);
  let deployment: Deployment;
  let connection: string[];
  let ids: number[];

  before(async function () {
    deployment = await createDeployment();
    const verifier = await deployment.startVerifier();
    connection = ['--verifier', verifier.url, '--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir];
    const knex = verifier.container.resolve<{ knex: Knex }>('ironlime.database').knex;
    const failure = { event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', recoverable: true, context: { message: 'x'.repeat(MAX_STORED_FAILURE_BYTES - 150) } };
    const failures = JSON.stringify(Array.from({ length: MAX_STORED_FAILURES }, () => failure));
    for (let i = 0; i < HEAVY_ROWS; i += 1) {
      await knex('verifier_attestation_history').insert({ agent_id: AGENT, verifier_id: 'default', outcome: 'fail', operational_state: 9, attestation_count: i, failures });
    }
    await knex('verifier_attestation_history').insert({ agent_id: AGENT, verifier_id: 'default', outcome: 'pass', operational_state: 3, attestation_count: HEAVY_ROWS });
    ids = (await knex('verifier_attestation_history').where({ agent_id: AGENT }).orderBy('id', 'desc').pluck('id')).map(Number);
  });

  after(async function () {
    await deployment?.dispose();
  });

  const history = async (...args: string[]): Promise<number[]> => {
    const run = await runCli(['tenant', 'history', '--uuid', AGENT, ...args, ...connection]);
    expect(run.code, run.stderr).to.equal(0);
    return (JSON.parse(run.stdout) as { history: { id: number }[] }).history.map((row) => row.id);
  };

  it('--limit gets every row asked for, newest first, each once, across pages', async function () {
    expect(await history('--limit', String(HEAVY_ROWS + 1))).to.deep.equal(ids);
    expect(await history('--limit', '15')).to.deep.equal(ids.slice(0, 15));
  });

  it('--before reads on from the last id printed', async function () {
    const first = await history('--limit', '12');
    expect(await history('--limit', '1000', '--before', String(first[first.length - 1]))).to.deep.equal(ids.slice(12));
  });
});
