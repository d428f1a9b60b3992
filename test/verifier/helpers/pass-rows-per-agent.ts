import type { Knex } from 'knex';

/** An agent's `attestation_count` beside its number of `pass` history rows. */
export interface PassRowsOfAgent {
  readonly agent_id: string;
  readonly attestation_count: number;
  readonly passes: number;
}

/** Every agent's `attestation_count` and `pass` history rows, read in one statement (one snapshot). */
export async function passRowsPerAgent(knex: Knex): Promise<PassRowsOfAgent[]> {
  return (
    await knex.raw(`select a.agent_id, a.attestation_count,
      (select count(*)::int from verifier_attestation_history h where h.agent_id = a.agent_id and h.outcome = 'pass') as passes
      from verifier_agents a`)
  ).rows as PassRowsOfAgent[];
}
