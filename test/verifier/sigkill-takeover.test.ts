import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:https';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { FakeAgent } from '../attestation/fake-agent.js';
import { enrolFakeAgents } from './helpers/enrol-fake-agents.js';
import { eventually } from './helpers/verifier-fixture.js';
import { createVerifierProcessFleet, type VerifierProcessFleet } from './helpers/verifier-process-fleet.js';
import { serveFakeAgents } from './helpers/fake-agent-server.js';
import { passRowsPerAgent } from './helpers/pass-rows-per-agent.js';

const AGENTS = 24;
const INTERVAL = 2;
/** The default lease: the take-over must not wait for the killed process's leases to lapse. */
const LEASE = 30;

/**
 * Three `ironlime verifier` processes on one PostgreSQL (no extra flag: the leases split the agents).
 * The agents are claimed by the first; the other two start after, and the first lets go of all but
 * its fair share (a third), which they claim. The first is SIGKILLed (no chance to release its
 * leases, which have up to 30 s left): its process lock is released with its connection, and within
 * two quote intervals every one of its agents has a new round stored by another process, and no
 * verdict is lost or duplicated — every agent's `pass` rows equal its `attestation_count`.
 */
describe('verifier: a SIGKILLed process among three (process locks on PostgreSQL, default lease)', function () {
  this.timeout(120_000);
  let fleet: VerifierProcessFleet;
  let knex: Knex;
  let server: Server;
  const fake = new FakeAgent();

  function startProcess(instance: string): ChildProcess {
    return fleet.start(instance, ['--quote-interval', String(INTERVAL)], process.env['SIGKILL_TEST_LOG'] ?? 'error');
  }

  before(async function () {
    fleet = await createVerifierProcessFleet('ironlime-sigkill-');
    knex = fleet.knex;
    const agents = await serveFakeAgents(fake, 0x400);
    server = agents.server;
    await enrolFakeAgents(knex, fake, agents, Array.from({ length: AGENTS }, (_, i) => `fleet-${String(i).padStart(3, '0')}`), LEASE);
  });

  after(async function () {
    server?.close();
    await fleet?.close();
  });

  const owners = async (): Promise<Map<string, string | null>> =>
    new Map(((await knex('verifier_agents').select('agent_id', 'owner')) as { agent_id: string; owner: string | null }[]).map((r) => [r.agent_id, r.owner]));

  it('hands the killed process\'s agents to the others within two intervals, losing and duplicating no verdict', async function () {
    startProcess('verifier-a');
    await eventually('A attests every agent', async () => {
      const rows = (await knex('verifier_agents').select('owner', 'attestation_count')) as { owner: string | null; attestation_count: number }[];
      return rows.every((r) => r.owner === 'verifier-a' && r.attestation_count >= 1);
    }, 60_000, 250).catch(async (error: unknown) => {
      process.stdout.write(`${JSON.stringify(await knex('verifier_agents').select('agent_id', 'owner', 'operational_state', 'attestation_count', 'last_event_id').limit(3))}\n`);
      throw error;
    });
    startProcess('verifier-b');
    startProcess('verifier-c');
    // B and C beat in `verifier_processes`: A lets go of what it holds above ⌈24 / 3⌉, and they claim it.
    const held = async (): Promise<number[]> => {
      const counts = new Map<string, number>();
      for (const owner of (await owners()).values()) counts.set(owner ?? '', (counts.get(owner ?? '') ?? 0) + 1);
      return ['verifier-a', 'verifier-b', 'verifier-c'].map((owner) => counts.get(owner) ?? 0);
    };
    await eventually('the three processes hold 8 agents each', async () => (await held()).every((n) => n === AGENTS / 3), 30_000, 200).catch(async (error: unknown) => {
      process.stdout.write(`held: ${JSON.stringify(await held())}\n`);
      throw error;
    });
    const killedAgents = [...(await owners()).entries()].filter(([, owner]) => owner === 'verifier-a').map(([agentId]) => agentId);
    // Taken just before the kill, nothing awaited in between: the times below count from the kill.
    const killedAt = new Date();
    fleet.processes.get('verifier-a')?.kill('SIGKILL');
    if (process.env['SIGKILL_TEST_LOG'] !== undefined) {
      process.stdout.write(`killed at ${killedAt.getTime()}\n`);
    }
    await eventually('every agent attested again by B or C', async () => {
      const rows = (await knex('verifier_attestation_history')
        .where('attempted_at', '>', killedAt)
        .whereIn('owner', ['verifier-b', 'verifier-c'])
        .where({ outcome: 'pass' })
        .distinct('agent_id')) as { agent_id: string }[];
      return rows.length === AGENTS;
    }, 30_000, 200);
    /** Seconds from the kill until the last of `agentIds` had its first round after it stored by a survivor. */
    const lastFirstRound = async (agentIds: string[]): Promise<number | undefined> =>
      (
        (await knex.raw(
          `select max(first)::float as took from (select extract(epoch from min(attempted_at) - ?::timestamptz) as first
             from verifier_attestation_history where attempted_at > ? and agent_id = any(?) and owner <> 'verifier-a' and outcome = 'pass'
             group by agent_id) firsts`,
          [killedAt, killedAt, agentIds],
        )) as { rows: { took: number }[] }
      ).rows[0]?.took;
    const killedAgentsTook = await lastFirstRound(killedAgents);
    // From the rounds' own times, not from when this process's poll saw the last one: that adds the poll's
    // interval and any stall of this process by a busy CI host to what the survivors took.
    const tookSeconds = (await lastFirstRound([...(await owners()).keys()])) ?? Number.POSITIVE_INFINITY;
    if (process.env['SIGKILL_TEST_LOG'] !== undefined) {
      const firsts = (await knex.raw(`select agent_id, owner, outcome, extract(epoch from attempted_at - ?::timestamptz)::float as at from verifier_attestation_history where attempted_at > ? order by id limit 60`, [killedAt, killedAt])).rows;
      process.stdout.write(`${JSON.stringify(firsts)}\n`);
    }
    process.stdout.write(
      `      the killed verifier's ${killedAgents.length} agents attested by another within ${killedAgentsTook?.toFixed(2)} s of the kill, every agent within ${tookSeconds.toFixed(1)} s (interval ${INTERVAL} s, lease ${LEASE} s)\n`,
    );
    expect(killedAgents).to.have.length(AGENTS / 3);
    expect(killedAgentsTook).to.be.below(2 * INTERVAL);
    expect(tookSeconds).to.be.below(2 * INTERVAL);
    const after = new Set((await owners()).values());
    expect([...after].every((owner) => owner === 'verifier-b' || owner === 'verifier-c')).to.equal(true);
    await eventually('the two survivors hold 12 agents each', async () => {
      const [, b, c] = await held();
      return b === AGENTS / 2 && c === AGENTS / 2;
    }, 30_000, 200);

    const rows = await passRowsPerAgent(knex);
    expect(rows).to.have.length(AGENTS);
    for (const row of rows) {
      expect(row.passes, row.agent_id).to.equal(row.attestation_count);
    }
  });
});
