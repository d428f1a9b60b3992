import type { AuditInsertWith } from '../audit/audit-batch.js';
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

/**
 * A left join of a JSON array's rows (`jsonb_to_recordset`) to a table by its key, `from` naming the
 * table and the condition: one index lookup per row. A plain join is planned for the 100 rows the
 * planner assumes such a function returns, by hashing the whole table: a scan of every session row
 * per batch. `offset 0` keeps the lateral subquery from being flattened into that join.
 */
function byKey(columns: string, from: string): string {
  const alias = from.split(' ')[1] as string;
  return `left join lateral (select ${columns} from ${from} offset 0) ${alias} on true`;
}

const SESSION_COLUMNS = 's.id, s.nonce, s.tee, s.expires_at, s.agent_id, s.tee_pubkey, s.attested_at, s.ak_tpm as session_ak_tpm, s.trust_vector';
const ACCESS_COLUMNS = 'r.sealed, r.policy, v.revoked_at, v.reinstated_at, n.groups, n.ak_tpm';

/**
 * The claims of attested sessions (`BrokerRepository.claimAttestedSessions`), as CTEs: `claims`, its
 * one binding a JSON array of `{ i, id, nonce, tee, expires_at, agent_id, tee_pubkey, attested_at,
 * ak_tpm, trust_vector, node_digest, session_issued_at }`, one for each session (no two of one);
 * `claim_facts`, read from the statement's snapshot, before its insert (`used_id` is a row that existed
 * before); `claimed`, the ids inserted: a session is inserted only for a known node whose stored digest
 * is the one appraised against and whose revocation does not refuse a session begun at
 * `session_issued_at` (`revocationRefusal`, milliseconds: refused while in force, or when reinstated at
 * or after the session began), and only if it has no row (`on conflict do nothing`). Inserted in id
 * order: two workers' batches claiming the same sessions (their one client's, sent to both) then wait
 * on each other's rows in one order, never crosswise (a deadlock would fail every claim of both).
 */
const CLAIM_CTES = `claims as (
  select * from jsonb_to_recordset(?::jsonb) as q(
    i int, id text, nonce text, tee text, expires_at bigint, agent_id text, tee_pubkey text,
    attested_at bigint, ak_tpm text, trust_vector text, node_digest text, session_issued_at bigint)
), claim_facts as (
  select c.*, s.id as used_id, v.revoked_at, v.reinstated_at, n.agent_id as node_id, n.digest as stored_digest
  from claims c
  ${byKey('s.id', 'broker_sessions s where s.id = c.id')}
  ${byKey('v.revoked_at, v.reinstated_at', 'broker_revocations v where v.agent_id = c.agent_id')}
  ${byKey('n.agent_id, n.digest', 'broker_nodes n where n.agent_id = c.agent_id')}
), claimed as (
  insert into broker_sessions (id, nonce, tee, expires_at, agent_id, tee_pubkey, attested_at, ak_tpm, trust_vector)
  select id, nonce, tee, expires_at, agent_id, tee_pubkey, attested_at, ak_tpm, trust_vector from claim_facts f
  where f.node_id is not null and f.stored_digest is not distinct from f.node_digest
    and (f.revoked_at is null or (f.reinstated_at is not null and f.reinstated_at < f.session_issued_at))
  order by f.id
  on conflict (id) do nothing
  returning id
)`;

/** Each claim's facts and whether it inserted its session, by `i`. */
const CLAIM_RESULTS = `select f.i, f.used_id, f.revoked_at, f.reinstated_at, f.node_id, f.stored_digest as node_digest,
  (select count(*) from claimed c where c.id = f.id) as claimed
from claim_facts f`;

/** The claims alone (a repository without an audit log). */
export const CLAIM_ATTESTED_MANY = fixedStatement('broker_claim_attested_many', `with ${CLAIM_CTES}\n${CLAIM_RESULTS}`);

/**
 * The claims in the statement that inserts their `node.attest` records (`LockedAuditStreams.insertWith`),
 * the records inserted only when every claim of the batch inserted its session (else none is, and the
 * claimed ones' records follow in a statement of their own).
 */
export const CLAIM_ATTESTED_WITH_RECORDS: AuditInsertWith = {
  name: 'claims',
  ctes: CLAIM_CTES,
  guard: '(select count(*) from claimed) = (select count(*) from claims)',
  sql: CLAIM_RESULTS,
};

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
const TOKEN_ACCESS_MANY_SQL = `select q.i, ${ACCESS_COLUMNS}
  from jsonb_to_recordset(?::jsonb) as q(i int, repository text, type text, tag text, agent_id text)
  ${byKey('r.sealed, r.policy', 'broker_resources r where r.repository = q.repository and r.type = q.type and r.tag = q.tag')}
  ${byKey('v.revoked_at, v.reinstated_at', 'broker_revocations v where v.agent_id = q.agent_id')}
  ${byKey('n.groups, n.ak_tpm', 'broker_nodes n where n.agent_id = q.agent_id')}`;

export const TOKEN_ACCESS_MANY = fixedStatement('broker_token_access_many', TOKEN_ACCESS_MANY_SQL);

/** `TOKEN_ACCESS_MANY` as the query of the statement that inserts the releases' records (`LockedAuditStreams.insertWith`). */
export const TOKEN_ACCESS_WITH_RECORDS: AuditInsertWith = { name: 'token_access_many', sql: TOKEN_ACCESS_MANY_SQL };

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
