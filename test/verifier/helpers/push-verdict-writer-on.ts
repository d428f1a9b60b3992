import { generateKeyPairSync } from 'node:crypto';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { PushRepository } from '../../../lib/verifier/push/push-repository.js';
import { PushVerdictWriter } from '../../../lib/verifier/push/push-verdict-writer.js';
import { auditVerdicts } from '../../../lib/verifier/verdict-audit.js';
import { VerifierAgentRepository } from '../../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../../lib/verifier/verifier-health.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');

/** A push verdict writer on `knex` as the push service builds one (audited verdicts, silent log), batching for `batchDelayMs`. */
export function pushVerdictWriterOn(knex: Knex, batchDelayMs: number, health = new VerifierHealth()): PushVerdictWriter {
  return new PushVerdictWriter(knex, new PushRepository(knex), new VerifierAgentRepository(knex), auditVerdicts({ privateKey, publicKey }, 'instance-1'), batchDelayMs, pino({ level: 'silent' }), health);
}
