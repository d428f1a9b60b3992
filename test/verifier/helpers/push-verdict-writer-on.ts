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
