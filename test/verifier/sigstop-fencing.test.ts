import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:https';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { FakeAgent } from '../attestation/fake-agent.js';
import { enrolFakeAgents } from './helpers/enrol-fake-agents.js';
import { serveFakeAgents } from './helpers/fake-agent-server.js';
import { eventually } from './helpers/verifier-fixture.js';
import { createVerifierProcessFleet, type VerifierProcessFleet } from './helpers/verifier-process-fleet.js';
import { passRowsPerAgent } from './helpers/pass-rows-per-agent.js';

const AGENTS = 12;
const INTERVAL = 1;
const LEASE = 4;
/** Each quote answered this late: a paused process is likely to hold a round in flight. */
const ANSWER_DELAY_MS = 300;

interface HistoryRow {
  id: number;
  agent_id: string;
  owner: string;
  outcome: string;
  attestation_count: number;
}

/**
 * Two `ironlime verifier` processes on one PostgreSQL. A is paused (SIGSTOP) with rounds in flight for
 * longer than its leases: B takes its agents over. When A resumes (SIGCONT), whatever it decided before
 * the pause is stale: none of it may be stored over B's newer verdicts (the writes are fenced by the
 * owner and the row version), no agent may be attested by both, and every agent's `pass` rows still
 * equal its `attestation_count`. A then gets its fair share back.
 */
describe('verifier: a paused process (SIGSTOP) resumed after its agents were taken over', function () {
  this.timeout(120_000);
  let fleet: VerifierProcessFleet;
  let knex: Knex;
  let server: Server;
  const fake = new FakeAgent();

  function startProcess(instance: string): ChildProcess {
    return fleet.start(instance, ['--quote-interval', String(INTERVAL), '--lease-seconds', String(LEASE)], process.env['SIGSTOP_TEST_LOG'] ?? 'error');
  }

  before(async function () {
    fleet = await createVerifierProcessFleet('ironlime-sigstop-');
    knex = fleet.knex;
    const agents = await serveFakeAgents(fake, 0x400, ANSWER_DELAY_MS);
    server = agents.server;
    await enrolFakeAgents(knex, fake, agents, Array.from({ length: AGENTS }, (_, i) => `paused-${String(i).padStart(2, '0')}`), LEASE);
  });

  after(async function () {
    server?.close();
    await fleet?.close();
  });

  const held = async (): Promise<[number, number]> => {
    const rows = (await knex('verifier_agents').select('owner')) as { owner: string | null }[];
    return [rows.filter((r) => r.owner === 'verifier-a').length, rows.filter((r) => r.owner === 'verifier-b').length];
  };

  it('stores no verdict twice nor over a newer one, and shares the agents again', async function () {
    const a = startProcess('verifier-a');
    await eventually('A attests every agent', async () => {
      const rows = (await knex('verifier_agents').select('owner', 'attestation_count')) as { owner: string | null; attestation_count: number }[];
      return rows.every((r) => r.owner === 'verifier-a' && r.attestation_count >= 1);
    }, 60_000, 200);
    startProcess('verifier-b');
    await eventually('A and B hold half each', async () => (await held()).every((n) => n === AGENTS / 2), 30_000, 200);
    const pausedAgents = ((await knex('verifier_agents').where({ owner: 'verifier-a' }).select('agent_id')) as { agent_id: string }[]).map((r) => r.agent_id);

    a.kill('SIGSTOP');
    const { lastBefore } = (await knex('verifier_attestation_history').max('id as lastBefore').first()) as { lastBefore: number };
    await eventually('B holds every agent', async () => (await held())[1] === AGENTS, 30_000, 200);
    await eventually('B attested each taken agent twice', async () => {
      const rows = (await knex('verifier_attestation_history')
        .where('id', '>', lastBefore)
        .where({ owner: 'verifier-b', outcome: 'pass' })
        .whereIn('agent_id', pausedAgents)
        .groupBy('agent_id')
        .havingRaw('count(*) >= 2')
        .select('agent_id')) as unknown[];
      return rows.length === pausedAgents.length;
    }, 30_000, 200);
    a.kill('SIGCONT');
    await eventually('A and B hold half each again', async () => (await held()).every((n) => n === AGENTS / 2), 30_000, 200);
    // A few more rounds of both, then stop both so that nothing moves while the rows are compared.
    await new Promise((resolve) => setTimeout(resolve, 3 * INTERVAL * 1000));
    for (const child of fleet.processes.values()) child.kill('SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 500));

    const history = (await knex('verifier_attestation_history').orderBy('id').select('id', 'agent_id', 'owner', 'outcome', 'attestation_count')) as HistoryRow[];
    // Each pass row carries the count after it: a count seen twice is a verdict stored twice (by both processes).
    for (let i = 0; i < AGENTS; i += 1) {
      const agentId = `paused-${String(i).padStart(2, '0')}`;
      const counts = history.filter((row) => row.agent_id === agentId && row.outcome === 'pass').map((row) => row.attestation_count);
      expect(counts, agentId).to.deep.equal(counts.map((_, index) => index + 1));
    }
    const rows = await passRowsPerAgent(knex);
    expect(rows).to.have.length(AGENTS);
    for (const row of rows) expect(row.passes, row.agent_id).to.equal(row.attestation_count);
  });
});
