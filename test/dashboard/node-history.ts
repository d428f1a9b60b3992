import type { Knex } from 'knex';
import { decideLiveness, INITIAL_LIVENESS, type LivenessState } from '../../lib/attestation/liveness-decision.js';
import { LivenessRepository } from '../../lib/verifier/liveness/liveness-repository.js';
import { seesEveryTenant, storeLivenessState } from '../helpers/liveness-state.js';
import { noAuditRecord } from '../helpers/no-audit-record.js';

/** A failed round (state 9) of `agentId`, tenant `default`, with these failures (event ids and contexts a node's evidence gave). */
export async function insertFailedRound(knex: Knex, agentId: string, failures: readonly object[], attestationCount = 1): Promise<void> {
  await knex('verifier_attestation_history').insert({
    agent_id: agentId,
    tenant: 'default',
    verifier_id: 'default',
    owner: 'test',
    attestation_count: attestationCount,
    attempted_at: new Date(),
    outcome: 'fail',
    operational_state: 9,
    failures: JSON.stringify(failures),
  });
}

/**
 * `rounds` failed rounds of agent-000001 (tenant `default`), one a second up to now, oldest first: each 20
 * failures, event id `<eventIdPrefix><0..19>`, context `{"n": <round>, "path": <filler × 4,000>}`.
 */
export async function insertFullFailedRounds(knex: Knex, rounds: number, eventIdPrefix: string, filler: string): Promise<void> {
  await knex.raw(
    `insert into verifier_attestation_history (agent_id, tenant, verifier_id, owner, attestation_count, attempted_at, outcome, operational_state, failures)
     select 'agent-000001', 'default', 'default', 'test', g, now() - (? - g) * interval '1 second', 'fail', 9,
            (select jsonb_agg(jsonb_build_object('event_id', ?::text || i, 'context', jsonb_build_object('n', g, 'path', repeat(?::text, 4000)))) from generate_series(0, 19) i)
     from generate_series(1, ?) g`,
    [rounds, eventIdPrefix, filler, rounds],
  );
}

const CERT = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';

/**
 * Enrols `agentId`, an `id-only` node without a TPM of tenant `default` held by verifier `verifierId`,
 * and stores the state its liveness check leaves when the node answers with another agent's id,
 * `answeredId` (a node's own text): failed, naming it. Resolves to that state.
 */
export async function storeNodeAnsweringAs(knex: Knex, agentId: string, verifierId: string, answeredId: string): Promise<LivenessState> {
  const liveness = new LivenessRepository(knex);
  await liveness.enrol(
    { agentId, tenant: 'default', verifierId, mode: 'id-only', trustLevel: 'id-only', ip: '127.0.0.1', port: 9, mtlsCert: CERT, proofKey: null },
    noAuditRecord,
    seesEveryTenant,
  );
  const check = { agentId, mode: 'id-only', proofKey: null, nonce: 'n', now: Date.now() / 1000, maxMisses: 3, intervalSeconds: 2 } as const;
  const failed = decideLiveness(INITIAL_LIVENESS, check, { kind: 'answer', results: { agent_uuid: answeredId, identity_mode: 'id-only' } });
  await storeLivenessState(liveness, agentId, failed);
  return failed;
}
