import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { DashboardQueries } from '../../lib/dashboard/dashboard-queries.js';
import { nodePage } from '../../lib/dashboard/dashboard-pages.js';
import { statusFreshnessBounds } from '../../lib/verifier/freshness-bounds.js';
import { VerifierConfig } from '../../lib/verifier/verifier-config.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { insertFailedRound } from './node-history.js';

const NOT_IN_ALLOWLIST = 'ima.validation.ima-ng.not_in_allowlist';
const PCR_MISMATCH = 'ima.validation.pcr_mismatch';
/** One failure per IMA line: a tampered agent's padded list (a quote reply may be 64 MiB). */
const FAILURES = 20_000;

/**
 * A round's history row keeps every failure, one per IMA line of the agent's list, and the node page
 * showed them all: every failure's context, pretty-printed, and an event id element per failure. One
 * tampered agent made its page (the one the operator opens) tens of megabytes, read whole from the
 * database and built in the verifier's memory, for every view. A round shows its first failures, each
 * bounded, and its distinct event ids (in order of first appearance, so a failure after the padding is
 * still named), and says how many more there are.
 */
describe("dashboard: a node's timeline is bounded whatever number of failures a round holds", function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let queries: DashboardQueries;

  before(async function () {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    await seedVerifierAgents(knex, 1, 0);
    const padded = Array.from({ length: FAILURES }, (_, i) => ({ event_id: NOT_IN_ALLOWLIST, context: { path: `/tmp/${String(i).padStart(8, '0')}/${'x'.repeat(400)}` } }));
    // The first one's context alone is 100 kB: it is cut.
    padded[0] = { event_id: NOT_IN_ALLOWLIST, context: { path: `/tmp/00000000/${'z'.repeat(100_000)}` } };
    const failures = [...padded, { event_id: PCR_MISMATCH, context: { message: 'IMA measurement list does not match TPM PCR', huge: 'y'.repeat(100_000) } }];
    await insertFailedRound(knex, 'agent-000001', failures, 0);
    queries = new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000);
  });

  after(async function () {
    await opened?.dispose();
  });

  it('20,001 failures in a round: its entry names both event ids once, shows the first failures, says how many more; the page stays small', async function () {
    const node = await queries.node(undefined, 'agent-000001');
    if (node === undefined) throw new Error('agent-000001 not found');
    const timeline = await queries.timeline(undefined, node);
    const failed = timeline.find((entry) => entry.kind === 'fail');
    expect(failed?.eventIds).to.deep.equal([NOT_IN_ALLOWLIST, PCR_MISMATCH]);
    expect(failed?.detail).to.include('/tmp/00000000/zzz').and.to.include('"truncated"').and.to.include('/tmp/00000019/');
    expect(failed?.detail).to.not.include('/tmp/00000020/');
    expect(failed?.detail).to.include(`and 19,981 more failures`);
    const page = nodePage(undefined, node, timeline);
    expect(page.length, 'the node page').to.be.below(256 * 1024);
  });
});
