import type { Knex } from 'knex';
import type { PushChoice } from '../../attestation/push-decision.js';
import { recordFromRow, type VerifierAgentRecord } from '../verifier-agent-record.js';
import type { StoredTokenHash } from './token-hash.js';

const SESSIONS = 'verifier_push_sessions';
const ATTESTATIONS = 'verifier_push_attestations';
const AGENTS = 'verifier_agents';
/** Column of `AGENT_WITH_LATEST` holding the latest attestation as JSON (timestamps as ISO text with offset). */
const LATEST = 'push_latest_attestation';
const AGENT_WITH_LATEST = `
select a.*, (
  select to_jsonb(t) from verifier_push_attestations t where t.agent_id = a.agent_id order by t.index desc limit 1
) as ${LATEST}
from verifier_agents a where a.agent_id = ?`;
const TAKE_ISSUED_EVIDENCE = `
with taken as (
  update verifier_push_attestations t set stage = 'evaluating_evidence', evidence_received_at = ?
  where t.agent_id = ? and t.index = ? and t.challenge = ? and t.stage = 'awaiting_evidence' and t.challenges_expire_at > ?
    and t.index = (select max(m.index) from verifier_push_attestations m where m.agent_id = t.agent_id)
  returning t.*
)
select a.*, to_jsonb(taken) as ${LATEST}
from verifier_agents a join taken on taken.agent_id = a.agent_id where a.agent_id = ?`;

/** Column of `INSERT_AFTER` saying whether the attestation was inserted. */
const INSERTED = 'push_inserted';
const INSERT_AFTER = `
with latest as (
  select t.index, t.stage, t.challenge from verifier_push_attestations t where t.agent_id = ? order by t.index desc limit 1
), inserted as (
  insert into verifier_push_attestations
    (agent_id, index, stage, challenge, choice, system_info, capabilities_received_at, challenges_expire_at)
  select ?::text, ?::int, ?::text, ?::text, ?::jsonb, ?::jsonb, ?::timestamptz, ?::timestamptz
  from latest where latest.index = ?::int and latest.challenge = ? and latest.stage = 'verification_complete'
  on conflict do nothing
  returning 1
)
select a.*, exists (select 1 from inserted) as ${INSERTED}
from (select 1) one left join verifier_agents a on a.agent_id = ?`;

export interface PushSession {
  readonly sessionId: string;
  readonly agentId: string;
  readonly challenge: string;
  readonly challengeExpiresAt: Date;
  readonly token: StoredTokenHash | null;
  readonly tokenExpiresAt: Date | null;
}

export type AttestationStage = 'awaiting_evidence' | 'evaluating_evidence' | 'verification_complete';

export interface PushAttestation {
  readonly agentId: string;
  readonly index: number;
  readonly stage: AttestationStage;
  readonly evaluation: 'pass' | 'fail' | null;
  readonly failureReason: string | null;
  readonly challenge: string;
  readonly choice: PushChoice;
  readonly systemInfo: Readonly<Record<string, unknown>>;
  readonly capabilitiesReceivedAt: Date;
  readonly challengesExpireAt: Date;
  readonly evidenceReceivedAt: Date | null;
  readonly verificationCompletedAt: Date | null;
}

/** The push model's rows (migration 20261203100000): sessions and attestations. */
export class PushRepository {
  constructor(private readonly knex: Knex) {}

  async createSession(session: Omit<PushSession, 'token' | 'tokenExpiresAt'>): Promise<void> {
    await this.knex(SESSIONS).insert({
      session_id: session.sessionId,
      agent_id: session.agentId,
      challenge: session.challenge,
      challenge_expires_at: session.challengeExpiresAt,
    });
  }

  async findSession(sessionId: string): Promise<PushSession | undefined> {
    const row = (await this.knex(SESSIONS).where({ session_id: sessionId }).first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : sessionFromRow(row);
  }

  /**
   * Stores the token hash of a session whose challenge was answered — once: a second proof for the
   * same session (a replay) finds the hash set and stores nothing (false).
   */
  async grantToken(sessionId: string, token: StoredTokenHash, expiresAt: Date): Promise<boolean> {
    const updated = await this.knex(SESSIONS)
      .update({ token_salt: token.salt, token_hash: token.hash, token_expires_at: expiresAt })
      .where({ session_id: sessionId })
      .whereNull('token_hash');
    return updated > 0;
  }

  async extendToken(sessionId: string, expiresAt: Date): Promise<void> {
    await this.knex(SESSIONS).update({ token_expires_at: expiresAt }).where({ session_id: sessionId }).where('token_expires_at', '<', expiresAt);
  }

  /** Sessions of agents whose challenge and token have both lapsed. */
  async deleteLapsedSessions(now: Date): Promise<number> {
    return this.knex(SESSIONS)
      .where('challenge_expires_at', '<', now)
      .where((q) => {
        void q.whereNull('token_expires_at').orWhere('token_expires_at', '<', now);
      })
      .delete();
  }

  /**
   * The agent's row and its latest attestation in ONE round trip (both phases need both): undefined
   * when the agent is not enrolled.
   */
  async agentWithLatest(agentId: string): Promise<{ readonly record: VerifierAgentRecord; readonly latest: PushAttestation | undefined } | undefined> {
    const result = (await this.knex.raw(AGENT_WITH_LATEST, [agentId])) as { rows: Record<string, unknown>[] };
    const row = result.rows[0];
    if (row === undefined) return undefined;
    const latest = row[LATEST] === null || row[LATEST] === undefined ? undefined : attestationFromRow(json(row[LATEST]) as Record<string, unknown>);
    return { record: recordFromRow(row), latest };
  }

  async latestAttestation(agentId: string): Promise<PushAttestation | undefined> {
    const row = (await this.knex(ATTESTATIONS).where({ agent_id: agentId }).orderBy('index', 'desc').first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : attestationFromRow(row);
  }

  async findAttestation(agentId: string, index: number): Promise<PushAttestation | undefined> {
    const row = (await this.knex(ATTESTATIONS).where({ agent_id: agentId, index }).first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : attestationFromRow(row);
  }

  async listAttestations(agentId: string): Promise<PushAttestation[]> {
    const rows = (await this.knex(ATTESTATIONS).where({ agent_id: agentId }).orderBy('index', 'asc').limit(1000)) as Record<string, unknown>[];
    return rows.map(attestationFromRow);
  }

  /**
   * Inserts attestation `index` (the latest + 1). Two concurrent POSTs compute the same index and the
   * primary key lets one through: the other gets false (Keylime's 409).
   */
  async insertAttestation(attestation: Omit<PushAttestation, 'evaluation' | 'failureReason' | 'evidenceReceivedAt' | 'verificationCompletedAt'>): Promise<boolean> {
    try {
      await this.knex(ATTESTATIONS).insert({
        agent_id: attestation.agentId,
        index: attestation.index,
        stage: attestation.stage,
        challenge: attestation.challenge,
        choice: JSON.stringify(attestation.choice),
        system_info: JSON.stringify(attestation.systemInfo),
        capabilities_received_at: attestation.capabilitiesReceivedAt,
        challenges_expire_at: attestation.challengesExpireAt,
      });
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === '23505') return false;
      throw error;
    }
  }

  /**
   * Inserts `attestation` only while the agent's latest attestation is still `after` (same index and
   * challenge, judged), and reads the agent's row in the same round trip (undefined when it is not
   * enrolled). A concurrent insert of the same index makes it insert nothing.
   */
  async insertAfter(
    attestation: Omit<PushAttestation, 'evaluation' | 'failureReason' | 'evidenceReceivedAt' | 'verificationCompletedAt'>,
    after: Pick<PushAttestation, 'index' | 'challenge'>,
  ): Promise<{ readonly record: VerifierAgentRecord | undefined; readonly inserted: boolean }> {
    const a = attestation;
    const result = (await this.knex.raw(INSERT_AFTER, [
      a.agentId,
      a.agentId,
      a.index,
      a.stage,
      a.challenge,
      JSON.stringify(a.choice),
      JSON.stringify(a.systemInfo),
      a.capabilitiesReceivedAt,
      a.challengesExpireAt,
      after.index,
      after.challenge,
      a.agentId,
    ])) as { rows: Record<string, unknown>[] };
    const row = result.rows[0];
    return { record: row === undefined || row['agent_id'] === null ? undefined : recordFromRow(row), inserted: row?.[INSERTED] === true };
  }

  /** Deletes attestation `index` while it still awaits its evidence and has `challenge` (its choice turned out stale). */
  async withdrawAttestation(agentId: string, index: number, challenge: string): Promise<void> {
    await this.knex(ATTESTATIONS).where({ agent_id: agentId, index, challenge, stage: 'awaiting_evidence' }).delete();
  }

  /**
   * Moves an attestation from `awaiting_evidence` to `evaluating_evidence` — for one request only: a
   * replayed or concurrent PATCH finds the stage moved and gets false.
   */
  async takeEvidence(agentId: string, index: number, receivedAt: Date): Promise<boolean> {
    const updated = await this.knex(ATTESTATIONS)
      .update({ stage: 'evaluating_evidence', evidence_received_at: receivedAt })
      .where({ agent_id: agentId, index, stage: 'awaiting_evidence' });
    return updated > 0;
  }

  /**
   * `takeEvidence` of attestation `index` with `challenge` — only while it is still the agent's latest
   * and its challenge has not expired — and, in the same round trip, the agent's row and the taken
   * attestation. Undefined when nothing was taken (or the agent is gone): the caller reads and
   * explains.
   */
  async takeIssuedEvidence(
    agentId: string,
    index: number,
    challenge: string,
    receivedAt: Date,
  ): Promise<{ readonly record: VerifierAgentRecord; readonly latest: PushAttestation } | undefined> {
    const result = (await this.knex.raw(TAKE_ISSUED_EVIDENCE, [receivedAt, agentId, index, challenge, receivedAt, agentId])) as { rows: Record<string, unknown>[] };
    const row = result.rows[0];
    return row === undefined ? undefined : { record: recordFromRow(row), latest: attestationFromRow(json(row[LATEST]) as Record<string, unknown>) };
  }

  /** Push agents of `verifierId` still attesting whose last attestation (or enrolment) is older than `before`. */
  async silentAgents(verifierId: string, before: Date, limit: number): Promise<string[]> {
    const rows = (await this.knex(AGENTS)
      .select('agent_id')
      .where({ verifier_id: verifierId, attestation_mode: 'push' })
      .whereIn('operational_state', [1, 3])
      .where((q) => {
        void q.where('last_received_quote', '<', before).orWhere((q2) => {
          void q2.whereNull('last_received_quote').where('created_at', '<', before);
        });
      })
      .orderBy('agent_id')
      .limit(limit)) as { agent_id: string }[];
    return rows.map((row) => row.agent_id);
  }

  /** A push agent is written by whichever process takes its request: take the row over first (the round writer writes only its owner's rows). */
  async takeOwnership(agentId: string, owner: string, leaseSeconds: number): Promise<boolean> {
    const updated = await this.knex(AGENTS)
      .update({ owner, lease_expires_at: this.knex.raw('now() + make_interval(secs => ?)', [leaseSeconds]) })
      .where({ agent_id: agentId, attestation_mode: 'push' });
    return updated > 0;
  }
}

function sessionFromRow(row: Record<string, unknown>): PushSession {
  const salt = row['token_salt'];
  const hash = row['token_hash'];
  return {
    sessionId: String(row['session_id']),
    agentId: String(row['agent_id']),
    challenge: String(row['challenge']),
    challengeExpiresAt: toDate(row['challenge_expires_at']) as Date,
    token: typeof salt === 'string' && typeof hash === 'string' ? { salt, hash } : null,
    tokenExpiresAt: toDate(row['token_expires_at']) ?? null,
  };
}

function attestationFromRow(row: Record<string, unknown>): PushAttestation {
  return {
    agentId: String(row['agent_id']),
    index: Number(row['index']),
    stage: row['stage'] as AttestationStage,
    evaluation: (row['evaluation'] ?? null) as 'pass' | 'fail' | null,
    failureReason: (row['failure_reason'] ?? null) as string | null,
    challenge: String(row['challenge']),
    choice: json(row['choice']) as PushChoice,
    systemInfo: (json(row['system_info']) ?? {}) as Record<string, unknown>,
    capabilitiesReceivedAt: toDate(row['capabilities_received_at']) as Date,
    challengesExpireAt: toDate(row['challenges_expire_at']) as Date,
    evidenceReceivedAt: toDate(row['evidence_received_at']) ?? null,
    verificationCompletedAt: toDate(row['verification_completed_at']) ?? null,
  };
}

function toDate(value: unknown): Date | undefined {
  if (value === null || value === undefined) return undefined;
  return value instanceof Date ? value : new Date(String(value));
}

function json(value: unknown): unknown {
  return typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
}
