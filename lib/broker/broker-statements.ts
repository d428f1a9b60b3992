import type { AuditInsertRead } from '../audit/audit-batch.js';
import { fixedStatement } from '../db/fixed-statement.js';

/**
 * The broker's hot-path statements (attest's claim, the resource requests' reads, a failed attest's
 * burn), fixed at load, with the row shapes they return. `BrokerRepository` runs them.
 */

export type Column = string | number | null;

export interface SessionColumns {
  id: string | null;
  nonce: string | null;
  tee: string | null;
  expires_at: Column;
  agent_id: string | null;
  tee_pubkey: string | null;
  attested_at: Column;
  /** The AK the session attested with (the node's current one is `AccessColumns.ak_tpm`). */
  session_ak_tpm: string | null;
  /** The session's trustworthiness vector as JSON text; null in rows attested before it was kept. */
  trust_vector: string | null;
}

export interface RevocationColumns {
  revoked_at: Column;
  reinstated_at: Column;
}

export interface AccessColumns extends RevocationColumns {
  sealed: string | null;
  policy: string | null;
  groups: string | null;
  ak_tpm: string | null;
}

const SESSION_COLUMNS = 's.id, s.nonce, s.tee, s.expires_at, s.agent_id, s.tee_pubkey, s.attested_at, s.ak_tpm as session_ak_tpm, s.trust_vector';
const ACCESS_COLUMNS = 'r.sealed, r.policy, v.revoked_at, v.reinstated_at, n.groups, n.ak_tpm';

// The facts are read from the statement's snapshot, before its insert: `used_id` is a row that existed
// before. The insert happens only for a known node whose stored digest is the one appraised against and
// whose revocation does not refuse a session begun at the given time (`revocationRefusal`, milliseconds:
// refused while in force, or when reinstated at or after the session began).
export const CLAIM_ATTESTED = fixedStatement('broker_claim_attested', `with facts as (
  select s.id as used_id, v.revoked_at, v.reinstated_at, n.agent_id as node_id, n.digest as node_digest
  from (select 1) as one
  left join broker_sessions s on s.id = ?
  left join broker_revocations v on v.agent_id = ?
  left join broker_nodes n on n.agent_id = ?
), claimed as (
  insert into broker_sessions (id, nonce, tee, expires_at, agent_id, tee_pubkey, attested_at, ak_tpm, trust_vector)
  select ?::text, ?::text, ?::text, ?::bigint, ?::text, ?::text, ?::bigint, ?::text, ?::text from facts
  where facts.node_id is not null and facts.node_digest is not distinct from ?::text
    and (facts.revoked_at is null or (facts.reinstated_at is not null and facts.reinstated_at < ?::bigint))
  on conflict (id) do nothing
  returning id
)
select facts.used_id, facts.revoked_at, facts.reinstated_at, facts.node_id, facts.node_digest, (select count(*) from claimed) as claimed
from facts`);

const TOKEN_ACCESS_SQL = `select ${ACCESS_COLUMNS}
  from (select 1) as one
  left join broker_resources r on r.repository = ? and r.type = ? and r.tag = ?
  left join broker_revocations v on v.agent_id = ?
  left join broker_nodes n on n.agent_id = ?`;

export const TOKEN_ACCESS = fixedStatement('broker_token_access', TOKEN_ACCESS_SQL);

/**
 * `TOKEN_ACCESS` for many requests at once (a batch of releases, `BrokerRepository.recordReleases`):
 * its one binding a JSON array of `{ i, repository, type, tag, agent_id }`, a row for each, by `i`.
 */
export const TOKEN_ACCESS_MANY = fixedStatement('broker_token_access_many', `select q.i, ${ACCESS_COLUMNS}
  from jsonb_to_recordset(?::jsonb) as q(i int, repository text, type text, tag text, agent_id text)
  left join broker_resources r on r.repository = q.repository and r.type = q.type and r.tag = q.tag
  left join broker_revocations v on v.agent_id = q.agent_id
  left join broker_nodes n on n.agent_id = q.agent_id`);

/** `TOKEN_ACCESS` as the query of the statement that inserts a release's record (`AuditLog.appendThroughThenRead`). */
export const TOKEN_ACCESS_AFTER_RECORD: AuditInsertRead = { name: 'token_access', sql: TOKEN_ACCESS_SQL };

export const SESSION_ACCESS = fixedStatement('broker_session_access', `select ${SESSION_COLUMNS}, ${ACCESS_COLUMNS}
  from (select 1) as one
  left join broker_sessions s on s.id = ?
  left join broker_resources r on r.repository = ? and r.type = ? and r.tag = ?
  left join broker_revocations v on v.agent_id = s.agent_id
  left join broker_nodes n on n.agent_id = s.agent_id`);

export const BURN_SESSION = fixedStatement(
  'broker_burn_session',
  `insert into broker_sessions (id, nonce, tee, expires_at) values (?, ?, ?, ?) on conflict (id) do nothing`,
);
