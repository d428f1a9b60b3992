import { expect } from 'chai';
import { MAX_STORED_FAILURES, MAX_STORED_FAILURE_BYTES } from '../../lib/attestation/stored-failures.js';
import { MAX_HISTORY_PAGE_BYTES, VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

const AGENT = 'agent-history-page';
/** Rows as large as a row gets: `MAX_STORED_FAILURES` failures of about `MAX_STORED_FAILURE_BYTES` each (~400 KB). */
const HEAVY_ROWS = 30;

/**
 * `GET /agents/{id}/history?limit=1000`: each row may hold 100 failures of up to 4 KB (~400 KB), so one
 * page could be ~400 MB, read whole into the verifier's memory and sent in one reply. A page stops once
 * its rows reach `MAX_HISTORY_PAGE_BYTES` and says where to go on (`nextBefore`); the next page starts
 * there, so every row is read, a page at a time.
 */
describe('history API: a page is bounded by bytes, and pages on [postgres]', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let repository: VerifierAgentRepository;

  before(async function () {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    const failure = { event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', recoverable: true, context: { message: 'x'.repeat(MAX_STORED_FAILURE_BYTES - 150) } };
    const failures = JSON.stringify(Array.from({ length: MAX_STORED_FAILURES }, () => failure));
    for (let i = 0; i < HEAVY_ROWS; i += 1) {
      await knex('verifier_attestation_history').insert({ agent_id: AGENT, verifier_id: 'default', outcome: 'fail', operational_state: 9, attestation_count: i, failures });
    }
    await knex('verifier_attestation_history').insert({ agent_id: AGENT, verifier_id: 'default', outcome: 'pass', operational_state: 3, attestation_count: HEAVY_ROWS });
    repository = new VerifierAgentRepository(knex);
  });

  after(async function () {
    await opened?.dispose();
  });

  it('stops a page at the byte bound, says where the next one starts, and every row is read once across the pages', async function () {
    const first = await repository.history(AGENT, 1000, undefined);
    const bytes = first.rows.reduce((sum, row) => sum + JSON.stringify(row).length, 0);
    expect(first.rows.length).to.be.within(2, HEAVY_ROWS);
    expect(bytes).to.be.below(MAX_HISTORY_PAGE_BYTES + MAX_STORED_FAILURES * MAX_STORED_FAILURE_BYTES);
    expect(first.nextBefore).to.equal(first.rows[first.rows.length - 1]?.id);
    const ids = first.rows.map((row) => row.id);
    let before = first.nextBefore;
    for (let pages = 0; before !== undefined && pages < HEAVY_ROWS; pages += 1) {
      const page = await repository.history(AGENT, 1000, undefined, before);
      ids.push(...page.rows.map((row) => row.id));
      before = page.nextBefore;
    }
    const all = (await opened.database.knex('verifier_attestation_history').where({ agent_id: AGENT }).orderBy('id', 'desc').pluck('id')).map(Number);
    expect(ids).to.deep.equal(all);
  });

  it('a small history fits one page with no next page; limit still counts rows', async function () {
    const newest = await repository.history(AGENT, 1, undefined);
    expect(newest.rows.map((row) => row.outcome)).to.deep.equal(['pass']);
    expect(newest.nextBefore).to.equal(undefined);
  });
});
