import { generateKeyPairSync } from 'node:crypto';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { PushVerdictWriter } from '../../../lib/verifier/push/push-verdict-writer.js';
import { VerifierAgentRepository } from '../../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../../lib/verifier/verifier-health.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');

/**
 * A push verdict writer on `knex` as the push service builds one (audited verdicts, silent log), batching for `batchDelayMs`;
 * `prepared`: its transaction on a node-postgres connection with prepared statements, as on PostgreSQL.
 */
export function pushVerdictWriterOn(knex: Knex, batchDelayMs: number, health = new VerifierHealth(), prepared = false): PushVerdictWriter {
  return new PushVerdictWriter(knex, new VerifierAgentRepository(knex), { key: { privateKey, publicKey }, actor: 'instance-1' }, batchDelayMs, pino({ level: 'silent' }), health, prepared);
}

/** Attestation 0 of each of `agentIds`, challenge `c`, at `stage` (awaiting or being judged), its challenges valid a minute. */
export async function insertOpenAttestations(knex: Knex, agentIds: readonly string[], stage: 'awaiting_evidence' | 'evaluating_evidence'): Promise<void> {
  await knex('verifier_push_attestations').insert(
    agentIds.map((agentId) => ({
      agent_id: agentId,
      index: 0,
      stage,
      challenge: 'c',
      choice: '{}',
      system_info: '{}',
      capabilities_received_at: new Date(),
      challenges_expire_at: new Date(Date.now() + 60_000),
    })),
  );
}
