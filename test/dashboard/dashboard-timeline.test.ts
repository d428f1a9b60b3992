import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { appendAuditEvents } from '../../lib/audit/audit-batch.js';
import { statementsOn } from '../../lib/db/fixed-statement.js';
import type { AuditEvent } from '../../lib/audit/audit-record.js';
import { DashboardQueries } from '../../lib/dashboard/dashboard-queries.js';
import { statusFreshnessBounds } from '../../lib/verifier/freshness-bounds.js';
import { VerifierConfig } from '../../lib/verifier/verifier-config.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';
const NOT_IN_ALLOWLIST = 'ima.validation.ima-ng.not_in_allowlist';

/** `2026-12-01T10:00:<second>.000Z`: every row at a fixed time, so the whole timeline can be pinned. */
function at(second: number): string {
  return new Date(Date.UTC(2026, 11, 1, 10, 0, second)).toISOString();
}

function audit(stream: string, second: number, action: string, details: Record<string, unknown>, actor = 'cert:CN=operator'): AuditEvent {
  return { stream, at: at(second), actor, action, agentId: stream === 'fleet' ? null : stream, details };
}

/** Actions on `rp-2`, which only tenant `blue`'s agent-000002 uses: records before `details.tenant` existed have only the actor. */
const RP_2_ACTIONS: readonly AuditEvent[] = [
  audit('fleet', 50, 'PUT /allowlists/:name', { params: { name: 'rp-2' }, status: 201 }),
  audit('fleet', 51, 'PUT /allowlists/:name', { params: { name: 'rp-2' }, status: 201, tenant: 'blue' }, 'token:alice (operator@blue)'),
  audit('fleet', 52, 'PUT /allowlists/:name', { params: { name: 'rp-2' }, status: 404, tenant: 'default' }, 'token:mallory (operator@default)'),
  audit('fleet', 53, 'DELETE /allowlists/:name', { params: { name: 'rp-2' }, status: 409 }, 'token:bob (admin@blue)'),
  audit('fleet', 54, 'PUT /allowlists/:name', { params: { name: 'rp-2' }, status: 201 }, 'token:eve (admin@default)'),
  audit('fleet', 55, 'PUT /allowlists/:name', { params: { name: 'rp-2' }, status: 201 }, 'token:x (admin@blue) (viewer@default)'),
];

/**
 * A node's timeline merges three sources — its rounds, its liveness changes, the audit records about
 * it and its policies — ordered newest first, ties kept in that source order. Pinned entry by entry.
 */
describe("dashboard: a node's timeline from rounds, liveness changes and audit records", function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let queries: DashboardQueries;

  before(async function () {
    opened = await openMigratedTestSchema();
    const knex = opened.database.knex;
    // agent-000001 is `default`'s, agent-000002 `blue`'s.
    await seedVerifierAgents(knex, 2, 0);
    await knex('verifier_runtime_policies').insert({ name: 'rp-1', runtime_policy: '{}', checksum: '0'.repeat(64), generator: 0 });
    await knex('verifier_runtime_policies').insert({ name: 'rp-2', runtime_policy: '{}', checksum: '0'.repeat(64), generator: 0, tenant: 'blue' });
    await knex('verifier_agents').update({ runtime_policy_name: 'rp-1' }).where({ agent_id: 'agent-000001' });
    await knex('verifier_agents').update({ runtime_policy_name: 'rp-2' }).where({ agent_id: 'agent-000002' });
    const round = { agent_id: 'agent-000001', tenant: 'default', verifier_id: 'default', owner: 'test', attestation_count: 0 };
    await knex('verifier_attestation_history').insert([
      { ...round, attempted_at: at(0), outcome: 'pass', operational_state: 3 },
      { ...round, attempted_at: at(10), outcome: 'pass', operational_state: 3 },
      { ...round, attempted_at: at(20), outcome: 'fail', operational_state: 9, failures: JSON.stringify([{ event_id: NOT_IN_ALLOWLIST, context: { path: '/usr/bin/x' } }]) },
      { ...round, attempted_at: at(30), outcome: 'retry', operational_state: 9 },
      { ...round, attempted_at: at(40), outcome: 'pass', operational_state: 3 },
    ]);
    const liveness = new LivenessRepository(knex);
    await liveness.enrol({ agentId: 'live-1', tenant: 'default', verifierId: 'default', mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port: 9, mtlsCert: CERT, proofKey: null }, noAuditRecord, seesEveryTenant);
    await storeLivenessState(liveness, 'live-1', { status: 'alive', misses: 0, lastSeen: 1_796_000_000, lastFailure: null });
    await storeLivenessState(liveness, 'live-1', { status: 'unreachable', misses: 3, lastSeen: 1_796_000_000, lastFailure: 'no answer to 3 liveness checks in a row: HTTP 500' });
    await knex('verifier_liveness_events').update({ at: at(12) }).where({ to_status: 'alive' });
    await knex('verifier_liveness_events').update({ at: at(32) }).where({ to_status: 'unreachable' });
    const key = generateKeyPairSync('ed25519');
    await knex.transaction((trx) =>
      appendAuditEvents(
        statementsOn(trx, false),
        [
          audit('agent-000001', 5, 'agent.add', { ip: '10.0.0.1' }),
          audit('agent-000001', 15, 'verdict', { outcome: 'fail' }),
          audit('fleet', 25, 'policy.put', { params: { name: 'rp-1' } }),
          audit('fleet', 26, 'policy.put', { params: { name: 'rp-other' } }),
          audit('live-1', 2, 'liveness.enrol', { port: 9 }),
          audit('live-1', 40, 'liveness.delete', {}),
          ...RP_2_ACTIONS,
        ],
        key,
      ),
    );
    queries = new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000);
  });

  after(async function () {
    await opened?.dispose();
  });

  async function shown(agentId: string): Promise<NodeRow> {
    const node = await queries.node(undefined, agentId);
    if (node === undefined) throw new Error(`${agentId} not found`);
    return node;
  }

  it('of an attested node: rounds with passes folded and state changes, its admin actions and its policy changes', async function () {
    const entry = { eventIds: [], detail: '', count: 1, leftOut: false };
    expect(await queries.timeline(undefined, await shown('agent-000001'))).to.deep.equal([
      { ...entry, at: at(40), kind: 'state', title: 'Invalid Quote → Get Quote' },
      { ...entry, at: at(40), kind: 'pass', title: 'pass' },
      { ...entry, at: at(30), kind: 'fail', title: 'no answer (retry)' },
      { ...entry, at: at(25), kind: 'admin', title: 'policy.put by cert:CN=operator', detail: '{"params":{"name":"rp-1"}}' },
      { ...entry, at: at(20), kind: 'state', title: 'Get Quote → Invalid Quote' },
      { ...entry, at: at(20), kind: 'fail', title: 'fail', eventIds: [NOT_IN_ALLOWLIST], detail: `[\n {\n  "event_id": "${NOT_IN_ALLOWLIST}",\n  "context": {\n   "path": "/usr/bin/x"\n  }\n }\n]` },
      { ...entry, at: at(10), kind: 'pass', title: '2 passes', count: 2 },
      { ...entry, at: at(5), kind: 'admin', title: 'agent.add by cert:CN=operator', detail: '{"ip":"10.0.0.1"}' },
    ]);
  });

  it("shows a tenant's viewer the policy actions of certificates and of its own tenant's tokens only, by details.tenant or, in older records, the actor's ending", async function () {
    const titles = async (viewer: string | undefined): Promise<string[]> =>
      (await queries.timeline(viewer, await shown('agent-000002'))).filter((entry) => entry.kind === 'admin').map((entry) => entry.title);
    expect(await titles('blue')).to.deep.equal([
      'DELETE /allowlists/:name by token:bob (admin@blue)',
      'PUT /allowlists/:name by token:alice (operator@blue)',
      'PUT /allowlists/:name by cert:CN=operator',
    ]);
    expect(await titles(undefined)).to.have.length(RP_2_ACTIONS.length);
  });

  it('of a node without a TPM: its liveness changes with their reasons and its admin actions', async function () {
    const entry = { eventIds: [], detail: '', count: 1, leftOut: false };
    expect(await queries.timeline(undefined, await shown('live-1'))).to.deep.equal([
      { ...entry, at: at(40), kind: 'admin', title: 'liveness.delete by cert:CN=operator', detail: '{}' },
      { ...entry, at: at(32), kind: 'state', title: 'LIVE (no integrity evidence) → UNREACHABLE', detail: 'no answer to 3 liveness checks in a row: HTTP 500' },
      { ...entry, at: at(12), kind: 'state', title: 'PENDING → LIVE (no integrity evidence)' },
      { ...entry, at: at(2), kind: 'admin', title: 'liveness.enrol by cert:CN=operator', detail: '{"port":9}' },
    ]);
  });
});
