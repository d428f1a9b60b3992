import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { Database } from '../../lib/db/database-factory.js';
import { openMigratedTestSchema, openSchemaThroughPort, type OpenedDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { pushVerdictWriterOn } from './helpers/push-verdict-writer-on.js';
import { CommitReplyDropper } from './helpers/commit-reply-dropper.js';
import { bareVerdict } from './helpers/bare-verdict.js';

const AGENT = 'agent-000001';

/**
 * At shutdown the push verdict writer sends its waiting verdicts at once and refuses later writes, so
 * a verdict whose COMMIT reply is lost then (a proxy passes the COMMIT, which commits, and cuts the
 * connection) cannot be written again. It is still stored: the writer asks the history for its round
 * id and answers stored, so that its caller announces it, instead of failing it as not stored.
 */
describe('push verdict writer: a verdict sent by close() whose COMMIT reply is lost (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let proxy: CommitReplyDropper;
  let proxied: Database;

  before(async function () {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await seedVerifierAgents(knex, 1, 0);
    proxy = new CommitReplyDropper();
    await proxy.start();
    proxied = await openSchemaThroughPort(knex, proxy.port);
  });

  after(async function () {
    await proxied?.close();
    await proxy?.close();
    await opened?.dispose();
  });

  it('answers stored, the FAIL stored once', async function () {
    const knex = opened.database.knex;
    const through = proxied.knex;
    // A batch delay far beyond the test's timeout: only close() sends the verdict.
    const writer = pushVerdictWriterOn(through, 600_000);
    const outcome = writer.write({
      agentId: AGENT, verifierId: 'default', owner: 'bench', leaseSeconds: 30,
      ...bareVerdict(OperationalState.FAILED, 1),
      expectedVersion: await agentRowVersion(knex, AGENT),
    });
    proxy.dropNextCommitReplyAfter('expected_version text');
    await writer.close();
    expect(await outcome).to.deep.equal({ stored: true, agentVersion: undefined });
    expect(proxy.dropped).to.equal(1);
    const rows = (await knex('verifier_attestation_history').where({ agent_id: AGENT }).select('outcome')) as { outcome: string }[];
    expect(rows).to.deep.equal([{ outcome: 'fail' }]);
  });
});
