import type { Knex } from 'knex';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/audit-record.js';
import type { BrokerNodeRecord } from './broker-node.js';
import { TEE_TPM, type ResourcePath } from './kbs-wire.js';
import type { ResourcePolicy } from './resource-policy.js';
import { RevocationStore } from './revocation-store.js';
import type { TrustworthinessVector } from './tpm-evidence.js';
import { runFixedStatement, statementsOn, type Binding, type FixedStatement, type Statements } from '../db/fixed-statement.js';
import { inPgTransaction } from '../db/pg-transaction.js';
import {
  BURN_SESSION,
  CLAIM_ATTESTED,
  SESSION_ACCESS,
  TOKEN_ACCESS,
  TOKEN_ACCESS_AFTER_RECORD,
  TOKEN_ACCESS_MANY,
  type AccessColumns,
  type Column,
  type RevocationColumns,
  type SessionColumns,
} from './broker-statements.js';

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

/** A release waiting for its record (`BrokerRepository.recordReleases`). */
export interface PendingRelease {
  readonly event: AuditEvent;
  readonly path: ResourcePath;
  readonly agentId: string;
  /** Throws to refuse the release, on its facts read with its stream's head locked. */
  readonly confirm: (facts: AccessFacts) => void;
}

/** What became of one release of `recordReleases`' batch: its record committed, or what its `confirm` threw. */
export type ReleaseOutcome = 'recorded' | { readonly refused: unknown };

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
  /** The AK (base64 TPM2B_PUBLIC) the evidence was appraised with; null in rows attested before it was kept. */
  readonly akTpm: string | null;
  /** The trustworthiness vector the evidence was appraised to; null in rows attested before it was kept. */
  readonly vector: TrustworthinessVector | null;
}

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
  /** The revocation rows' writes (revoke, reinstate). */
  readonly revocations: RevocationStore;

  constructor(
    private readonly knex: Knex,
    private readonly prepared = false,
    /** Where the changes made through `recorded` are appended; none: they are applied unrecorded (tests of the rows alone). */
    private readonly audit?: AuditLog,
    /** Runs the fixed statements instead of `knex` (`recordedStatements`' transaction): only those methods may then be used. */
    private readonly statements?: Statements,
  ) {
    this.revocations = new RevocationStore(knex);
  }

  /**
   * Applies a change through `change` (a repository on one transaction) and appends the audit record
   * `record` makes of its result in that same transaction: the change and its record commit together
   * or neither does, so a change whose record cannot be stored fails (and the caller with it) unapplied.
   * `record` answers undefined for a result that changed nothing (nothing to delete, a message applied
   * before): nothing is appended.
   */
  async recorded<T>(change: (rows: BrokerRepository) => Promise<T>, record: (result: T) => AuditEvent | undefined): Promise<T> {
    const audit = this.audit;
    if (audit === undefined) {
      return change(this);
    }
    return this.knex.transaction(async (trx) => {
      const result = await change(new BrokerRepository(trx, this.prepared));
      const event = record(result);
      if (event !== undefined) {
        await audit.appendIn(trx, event);
      }
      return result;
    });
  }

  /**
   * `recorded` for a change made of this class's fixed statements only (the session claim of every
   * `/attest`), for the hot paths: on PostgreSQL the transaction is `inPgTransaction`'s, its
   * statements and the record's prepared, without knex's transaction (with it and unprepared, about
   * 1.5 times the CPU, the broker's and PostgreSQL's: `bench/grant-audit-micro.ts`); on PGlite it is `recorded`.
   */
  async recordedStatements<T>(change: (rows: BrokerRepository) => Promise<T>, record: (result: T) => AuditEvent | undefined): Promise<T> {
    const audit = this.audit;
    if (audit === undefined || !this.prepared) {
      return this.recorded(change, record);
    }
    return inPgTransaction(this.knex, async (run) => {
      const result = await change(new BrokerRepository(this.knex, true, undefined, run));
      const event = record(result);
      if (event !== undefined) {
        await audit.appendThrough(run, event);
      }
      return result;
    });
  }

  /**
   * Appends `event` alone, in a transaction of its own, and resolves once it committed: the record of a
   * resource released to `agentId`, which changes no row of its own, so the caller acts only once it
   * is stored. The statement that inserts the record, its stream's head locked by the one before
   * (until the commit), also reads the facts the release depends on (`tokenAccessFacts`), as the
   * database is once the head is locked: a change appended to that stream (a revocation) either
   * committed before, and is seen, or is appended after this record. `confirm` throws to refuse the
   * release, the record rolled back. Four round trips: begin, lock, insert and read, commit. Without an
   * audit log, `confirm` alone runs on `tokenAccessFacts`. @throws when the record cannot be stored,
   * or what `confirm` throws.
   */
  async recordRelease(event: AuditEvent, path: ResourcePath, agentId: string, confirm: (facts: AccessFacts) => void): Promise<void> {
    const audit = this.audit;
    if (audit === undefined) {
      confirm(await this.tokenAccessFacts(path, agentId));
      return;
    }
    const appendAndConfirm = async (run: Statements): Promise<void> => {
      const rows = await audit.appendThroughThenRead(run, event, TOKEN_ACCESS_AFTER_RECORD, tokenAccessBindings(path, agentId));
      confirm(accessFactsOf(path, rows[0] as AccessColumns));
    };
    if (this.prepared) {
      await inPgTransaction(this.knex, appendAndConfirm);
    } else {
      await this.knex.transaction((trx) => appendAndConfirm(statementsOn(trx, false)));
    }
  }

  /**
   * `recordRelease` for several releases in one transaction (`ReleaseRecords`' batches): the heads of
   * their nodes' streams are locked, then one statement reads every release's facts as the database
   * is once they are, each `confirm` decides on its own, and the records of those confirmed are
   * appended with one signature and one insert. Five round trips for the batch. Resolves, release by
   * release, to `recorded` once the transaction committed, or to what its `confirm` threw. @throws
   * when the records cannot be stored: then none is.
   */
  async recordReleases(releases: readonly PendingRelease[]): Promise<ReleaseOutcome[]> {
    const outcomes: ReleaseOutcome[] = releases.map(() => 'recorded');
    const confirmAll = (facts: readonly AccessFacts[]): boolean[] =>
      releases.map((release, index) => {
        try {
          release.confirm(facts[index] as AccessFacts);
          return true;
        } catch (refused) {
          outcomes[index] = { refused };
          return false;
        }
      });
    const audit = this.audit;
    if (audit === undefined) {
      confirmAll(await this.manyAccessFacts(releases));
      return outcomes;
    }
    const append = async (run: Statements): Promise<void> => {
      const rows = new BrokerRepository(this.knex, this.prepared, undefined, run);
      await audit.appendKeptThrough(
        run,
        releases.map((release) => release.event),
        async () => confirmAll(await rows.manyAccessFacts(releases)),
      );
    };
    if (this.prepared) {
      await inPgTransaction(this.knex, append);
    } else {
      await this.knex.transaction((trx) => append(statementsOn(trx, false)));
    }
    return outcomes;
  }

  /** `tokenAccessFacts` of each request, in order, in one statement. */
  private async manyAccessFacts(requests: readonly { readonly path: ResourcePath; readonly agentId: string }[]): Promise<AccessFacts[]> {
    const input = requests.map((request, i) => ({ i, ...request.path, agent_id: request.agentId }));
    const rows = (await this.rows(TOKEN_ACCESS_MANY, [JSON.stringify(input)])) as (AccessColumns & { i: number })[];
    const byIndex = new Map(rows.map((row) => [Number(row.i), row]));
    return requests.map((request, i) => accessFactsOf(request.path, byIndex.get(i) as AccessColumns));
  }

  /**
   * `recorded` for a withdrawal (a revocation, a deletion): a node or a resource is never left trusted
   * because the audit log cannot take a record. When the change and its record fail together, the
   * change is applied again on its own, and `unrecorded` is told why the record was lost; a change
   * that fails on its own (the database is down) throws.
   */
  async recordedWithdrawal<T>(
    change: (rows: BrokerRepository) => Promise<T>,
    record: (result: T) => AuditEvent | undefined,
    unrecorded: (error: unknown) => void,
  ): Promise<T> {
    try {
      return await this.recorded(change, record);
    } catch (error) {
      const result = await change(this);
      unrecorded(error);
      return result;
    }
  }

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

  /**
   * Deletes the node and, in the same transaction, ends every session and token issued for it up to
   * `atMs`: its revocation row is marked reinstated at the whole second after `atMs` (a token's `iat`
   * has whole seconds, so one issued in `atMs`'s own second, even at .000, is refused), so `revocationRefusal` refuses every credential issued before
   * ("attest again") while a node stored again may attest afresh. A revocation in force is left as it
   * is: the node stays revoked.
   */
  async deleteNode(agentId: string, atMs: number): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const deleted = (await trx('broker_nodes').where({ agent_id: agentId }).delete().returning('agent_id')).length > 0;
      if (deleted) {
        await trx.raw(
          `insert into broker_revocations (agent_id, revoked_at, reason, reinstated_at) values (?, ?, 'node deleted', ?)
           on conflict (agent_id) do update set reinstated_at = greatest(broker_revocations.reinstated_at, excluded.reinstated_at)
           where broker_revocations.reinstated_at is not null`,
          [agentId, Math.floor(atMs / 1000), (Math.floor(atMs / 1000) + 1) * 1000],
        );
      }
      return deleted;
    });
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
    // `returning`: on PGlite knex's delete resolves to the driver's result object, not a count.
    return (await this.knex('broker_resources').where({ ...path }).delete().returning('tag')).length > 0;
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
    const vectorText = claim.attested.vector === null ? null : JSON.stringify(claim.attested.vector);
    const row = await this.firstRow<{ used_id: string | null; node_id: string | null; node_digest: string | null; claimed: Column } & RevocationColumns>(
      CLAIM_ATTESTED,
      [claim.id, agentId, agentId, claim.id, claim.nonce, TEE_TPM, claim.expiresAt, agentId, claim.attested.teePubkey, claim.attested.at, claim.attested.akTpm, vectorText, claim.nodeDigest, claim.sessionIssuedAt],
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
    const row = await this.firstRow<AccessColumns>(TOKEN_ACCESS, tokenAccessBindings(path, agentId));
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

  private async firstRow<T>(statement: FixedStatement, bindings: readonly Binding[]): Promise<T> {
    return (await this.rows(statement, bindings))[0] as T;
  }

  private rows(statement: FixedStatement, bindings: readonly Binding[]): Promise<unknown[]> {
    return this.statements !== undefined ? this.statements(statement, bindings) : runFixedStatement(this.knex, this.prepared, statement, bindings);
  }
}

function tokenAccessBindings(path: ResourcePath, agentId: string): Binding[] {
  return [path.repository, path.type, path.tag, agentId, agentId];
}

function sessionOf(row: SessionColumns | undefined): BrokerSession | undefined {
  if (row === undefined || row.id === null || row.nonce === null || row.tee === null) {
    return undefined;
  }
  const attested =
    row.agent_id === null || row.tee_pubkey === null || row.attested_at === null
      ? null
      : {
          agentId: row.agent_id,
          teePubkey: row.tee_pubkey,
          at: Number(row.attested_at),
          akTpm: row.session_ak_tpm,
          // Parsed on every read: ≈ 0.6 µs for the ~140 bytes, too little for a per-session cache to pay.
          vector: row.trust_vector === null ? null : (JSON.parse(row.trust_vector) as TrustworthinessVector),
        };
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
