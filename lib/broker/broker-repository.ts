import type { Knex } from 'knex';
import type { BrokerNodeRecord } from './broker-node.js';
import { TEE_TPM, type ResourcePath } from './kbs-wire.js';
import type { ResourcePolicy } from './resource-policy.js';

/** A stored resource: the sealed secret and who may read it. */
export interface StoredResource {
  readonly path: ResourcePath;
  readonly sealed: string;
  readonly policy: ResourcePolicy;
}

/** A node's revocation row: when it was revoked and, once reinstated, when (see `revocation-state.ts`). */
export interface RevocationState {
  /** Unix seconds. */
  readonly revokedAt: number;
  /** Unix milliseconds; null while the revocation is in force. */
  readonly reinstatedAt: number | null;
}

/** What a resource request needs, read in one statement: `BrokerRepository.tokenAccessFacts` and `sessionAccessFacts`. */
export interface AccessFacts {
  readonly resource: StoredResource | undefined;
  readonly revocation: RevocationState | undefined;
  /** The node's groups as this broker knows them (empty without a node row). */
  readonly groups: readonly string[];
  /** The node's registered AK, when this broker has one (the good-standing rule compares it). */
  readonly akTpm: string | null;
}

/** An attested session to claim, and the facts the claim depends on: `BrokerRepository.claimAttestedSession`. */
export interface AttestedClaim {
  readonly id: string;
  readonly nonce: string;
  readonly expiresAt: number;
  readonly attested: SessionAttestation;
  /** When the session began (the cookie's issue time, Unix milliseconds): a reinstatement after it refuses. */
  readonly sessionIssuedAt: number;
  /** The stored policy digest the evidence was appraised against (null: a row written before digests). */
  readonly nodeDigest: string | null;
}

/** What `claimAttestedSession` found, read in the statement that claims. */
export interface ClaimOutcome {
  /** This call inserted the attested row. */
  readonly claimed: boolean;
  /** A row for the session existed before: it attested, or an attempt failed and burnt it. */
  readonly sessionUsed: boolean;
  readonly revocation: RevocationState | undefined;
  /** undefined: no such node; null: a row written before digests. */
  readonly nodeDigest: string | null | undefined;
}

/** A used RCAR session (its row is written by `/attest`: `claimAttestedSession` or `burnSession`). */
export interface BrokerSession {
  readonly id: string;
  readonly nonce: string;
  readonly tee: string;
  /** Unix milliseconds. */
  readonly expiresAt: number;
  /** Set when `/attest` passed; null when the attempt failed and burnt the session. */
  readonly attested: SessionAttestation | null;
}

export interface SessionAttestation {
  readonly agentId: string;
  /** The tee-pubkey JWK as JSON text. */
  readonly teePubkey: string;
  /** Unix milliseconds. */
  readonly at: number;
}

type Column = string | number | null;

interface SessionColumns {
  id: string | null;
  nonce: string | null;
  tee: string | null;
  expires_at: Column;
  agent_id: string | null;
  tee_pubkey: string | null;
  attested_at: Column;
}

interface RevocationColumns {
  revoked_at: Column;
  reinstated_at: Column;
}

interface AccessColumns extends RevocationColumns {
  sealed: string | null;
  policy: string | null;
  groups: string | null;
  ak_tpm: string | null;
}

const SESSION_COLUMNS = 's.id, s.nonce, s.tee, s.expires_at, s.agent_id, s.tee_pubkey, s.attested_at';
const ACCESS_COLUMNS = 'r.sealed, r.policy, v.revoked_at, v.reinstated_at, n.groups, n.ak_tpm';

/**
 * A statement of a hot path, fixed at load (no query building per request): knex's `?` form, and the
 * `$n` form PostgreSQL prepares once per pooled connection under `name` (parse and plan were about half
 * of the backend's CPU per statement).
 */
interface FixedStatement {
  readonly name: string;
  readonly knexSql: string;
  readonly pgSql: string;
}

function fixedStatement(name: string, knexSql: string): FixedStatement {
  let index = 0;
  return { name, knexSql, pgSql: knexSql.replace(/\?/g, () => `$${(index += 1)}`) };
}

/** The part of a node-postgres connection the prepared path uses. */
interface PgConnection {
  query(config: { name: string; text: string; values: readonly (string | number | null)[] }): Promise<{ rows: unknown[] }>;
}

// The facts are read from the statement's snapshot, before its insert: `used_id` is a row that existed
// before. The insert happens only for a known node whose stored digest is the one appraised against and
// whose revocation does not refuse a session begun at the given time (`revocationRefusal`, milliseconds:
// refused while in force, or when reinstated at or after the session began).
const CLAIM_ATTESTED = fixedStatement('broker_claim_attested', `with facts as (
  select s.id as used_id, v.revoked_at, v.reinstated_at, n.agent_id as node_id, n.digest as node_digest
  from (select 1) as one
  left join broker_sessions s on s.id = ?
  left join broker_revocations v on v.agent_id = ?
  left join broker_nodes n on n.agent_id = ?
), claimed as (
  insert into broker_sessions (id, nonce, tee, expires_at, agent_id, tee_pubkey, attested_at)
  select ?::text, ?::text, ?::text, ?::bigint, ?::text, ?::text, ?::bigint from facts
  where facts.node_id is not null and facts.node_digest is not distinct from ?::text
    and (facts.revoked_at is null or (facts.reinstated_at is not null and facts.reinstated_at < ?::bigint))
  on conflict (id) do nothing
  returning id
)
select facts.used_id, facts.revoked_at, facts.reinstated_at, facts.node_id, facts.node_digest, (select count(*) from claimed) as claimed
from facts`);

const TOKEN_ACCESS = fixedStatement('broker_token_access', `select ${ACCESS_COLUMNS}
  from (select 1) as one
  left join broker_resources r on r.repository = ? and r.type = ? and r.tag = ?
  left join broker_revocations v on v.agent_id = ?
  left join broker_nodes n on n.agent_id = ?`);

const SESSION_ACCESS = fixedStatement('broker_session_access', `select ${SESSION_COLUMNS}, ${ACCESS_COLUMNS}
  from (select 1) as one
  left join broker_sessions s on s.id = ?
  left join broker_resources r on r.repository = ? and r.type = ? and r.tag = ?
  left join broker_revocations v on v.agent_id = s.agent_id
  left join broker_nodes n on n.agent_id = s.agent_id`);

const BURN_SESSION = fixedStatement(
  'broker_burn_session',
  `insert into broker_sessions (id, nonce, tee, expires_at) values (?, ?, ?, ?) on conflict (id) do nothing`,
);

interface NodeRow {
  agent_id: string;
  ak_tpm: string | null;
  tpm_policy: string;
  runtime_policy: string | null;
  mb_refstate: string | null;
  groups: string;
  digest: string | null;
}

/**
 * The broker's rows (migration `create-broker-tables`). Every method is one statement; errors from the
 * database propagate, so a caller fails closed (a failed read is never "no revocation"). `prepared`:
 * on PostgreSQL the hot paths' statements are named prepared statements (PGlite takes them as knex raw).
 */
export class BrokerRepository {
  constructor(
    private readonly knex: Knex,
    private readonly prepared = false,
  ) {}

  /** Stores a node with the digest of its AK and policy texts (`nodeDigest`). */
  async putNode(node: BrokerNodeRecord, digest: string): Promise<void> {
    const row = {
      digest,
      agent_id: node.agentId,
      ak_tpm: node.akTpm,
      tpm_policy: node.tpmPolicy,
      runtime_policy: node.runtimePolicy,
      mb_refstate: node.mbRefstate,
      groups: JSON.stringify(node.groups),
      updated_at: Date.now(),
    };
    await this.knex('broker_nodes').insert(row).onConflict('agent_id').merge();
  }

  async findNode(agentId: string): Promise<(BrokerNodeRecord & { readonly digest: string | null }) | undefined> {
    const row = (await this.knex('broker_nodes').where({ agent_id: agentId }).first()) as NodeRow | undefined;
    if (row === undefined) {
      return undefined;
    }
    return {
      agentId: row.agent_id,
      akTpm: row.ak_tpm,
      tpmPolicy: row.tpm_policy,
      runtimePolicy: row.runtime_policy,
      mbRefstate: row.mb_refstate,
      groups: JSON.parse(row.groups) as string[],
      digest: row.digest,
    };
  }

  /** The node's stored digest (null before its first), or undefined when the node is not stored: without reading its policies. */
  async nodeDigest(agentId: string): Promise<string | null | undefined> {
    const row = (await this.knex('broker_nodes').select('digest').where({ agent_id: agentId }).first()) as { digest: string | null } | undefined;
    return row?.digest;
  }

  async deleteNode(agentId: string): Promise<boolean> {
    return (await this.knex('broker_nodes').where({ agent_id: agentId }).delete()) > 0;
  }

  async putResource(resource: StoredResource): Promise<void> {
    await this.knex('broker_resources')
      .insert({ ...resource.path, sealed: resource.sealed, policy: JSON.stringify(resource.policy), updated_at: Date.now() })
      .onConflict(['repository', 'type', 'tag'])
      .merge();
  }

  async findResource(path: ResourcePath): Promise<StoredResource | undefined> {
    const row = (await this.knex('broker_resources').where({ ...path }).first()) as { sealed: string; policy: string } | undefined;
    return row === undefined ? undefined : { path, sealed: row.sealed, policy: JSON.parse(row.policy) as ResourcePolicy };
  }

  async deleteResource(path: ResourcePath): Promise<boolean> {
    return (await this.knex('broker_resources').where({ ...path }).delete()) > 0;
  }

  /**
   * Claims a session as attested by `claim.attested.agentId`, in one statement, and only while what the
   * appraisal assumed holds: the session has no row yet (the id is the primary key and the insert is
   * `on conflict do nothing`, so across every worker at most one claim of a session succeeds), the node
   * is known with the stored digest it was appraised against, and its revocation does not refuse a
   * session begun at `sessionIssuedAt`. The outcome carries the facts the statement read, so a caller
   * that did not claim knows why.
   */
  async claimAttestedSession(claim: AttestedClaim): Promise<ClaimOutcome> {
    const agentId = claim.attested.agentId;
    const row = await this.firstRow<{ used_id: string | null; node_id: string | null; node_digest: string | null; claimed: Column } & RevocationColumns>(
      CLAIM_ATTESTED,
      [claim.id, agentId, agentId, claim.id, claim.nonce, TEE_TPM, claim.expiresAt, agentId, claim.attested.teePubkey, claim.attested.at, claim.nodeDigest, claim.sessionIssuedAt],
    );
    return {
      claimed: Number(row.claimed) === 1,
      sessionUsed: row.used_id !== null,
      revocation: revocationOf(row),
      nodeDigest: row.node_id === null ? undefined : row.node_digest,
    };
  }

  /** A bearer token's resource request: the resource, the node's revocation, groups and AK, in one statement. */
  async tokenAccessFacts(path: ResourcePath, agentId: string): Promise<AccessFacts> {
    const row = await this.firstRow<AccessColumns>(TOKEN_ACCESS, [path.repository, path.type, path.tag, agentId, agentId]);
    return accessFactsOf(path, row);
  }

  /** A cookie's resource request: the session and, for its node, what `tokenAccessFacts` reads, in one statement. */
  async sessionAccessFacts(path: ResourcePath, sessionId: string): Promise<AccessFacts & { readonly session: BrokerSession | undefined }> {
    const row = await this.firstRow<SessionColumns & AccessColumns>(SESSION_ACCESS, [sessionId, path.repository, path.type, path.tag]);
    return { ...accessFactsOf(path, row), session: sessionOf(row) };
  }

  /**
   * Burns a session after a failed attempt: inserts its row, with no node, unless one exists (the id is
   * the primary key, so across every worker sharing the database at most one claim of a session
   * succeeds; an attested claim is `claimAttestedSession`).
   */
  async burnSession(session: { id: string; nonce: string; expiresAt: number }): Promise<void> {
    await this.rows(BURN_SESSION, [session.id, session.nonce, TEE_TPM, session.expiresAt]);
  }

  /** Deletes the rows of sessions that expired before `before` (Unix milliseconds). */
  async deleteExpiredSessions(before: number): Promise<number> {
    return this.knex('broker_sessions').where('expires_at', '<', before).delete();
  }

  /** Records (or renews) a revocation in force. */
  async revoke(agentId: string, at: number, reason: string): Promise<void> {
    await this.knex('broker_revocations')
      .insert({ agent_id: agentId, revoked_at: at, reason, reinstated_at: null })
      .onConflict('agent_id')
      .merge();
  }

  /**
   * Ends a revocation in force and records when (milliseconds): the row stays, so credentials issued
   * before the reinstatement stay refused. False when the node was not revoked.
   */
  async reinstate(agentId: string, at: number): Promise<boolean> {
    return (await this.knex('broker_revocations').where({ agent_id: agentId }).whereNull('reinstated_at').update({ reinstated_at: at })) > 0;
  }

  private async firstRow<T>(statement: FixedStatement, bindings: readonly (string | number | null)[]): Promise<T> {
    return (await this.rows(statement, bindings))[0] as T;
  }

  private async rows(statement: FixedStatement, bindings: readonly (string | number | null)[]): Promise<unknown[]> {
    if (!this.prepared) {
      const result = (await this.knex.raw(statement.knexSql, bindings)) as { rows: unknown[] } | unknown[];
      return Array.isArray(result) ? result : result.rows;
    }
    const connection = (await this.knex.client.acquireConnection()) as PgConnection;
    try {
      return (await connection.query({ name: statement.name, text: statement.pgSql, values: bindings })).rows;
    } finally {
      await this.knex.client.releaseConnection(connection);
    }
  }
}

function sessionOf(row: SessionColumns | undefined): BrokerSession | undefined {
  if (row === undefined || row.id === null || row.nonce === null || row.tee === null) {
    return undefined;
  }
  const attested =
    row.agent_id === null || row.tee_pubkey === null || row.attested_at === null
      ? null
      : { agentId: row.agent_id, teePubkey: row.tee_pubkey, at: Number(row.attested_at) };
  return { id: row.id, nonce: row.nonce, tee: row.tee, expiresAt: Number(row.expires_at), attested };
}

function revocationOf(row: RevocationColumns): RevocationState | undefined {
  return row.revoked_at === null
    ? undefined
    : { revokedAt: Number(row.revoked_at), reinstatedAt: row.reinstated_at === null ? null : Number(row.reinstated_at) };
}

function accessFactsOf(path: ResourcePath, row: AccessColumns): AccessFacts {
  return {
    resource:
      row.sealed === null || row.policy === null ? undefined : { path, sealed: row.sealed, policy: JSON.parse(row.policy) as ResourcePolicy },
    revocation: revocationOf(row),
    groups: row.groups === null ? [] : (JSON.parse(row.groups) as string[]),
    akTpm: row.ak_tpm,
  };
}
