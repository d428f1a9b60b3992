import type { Knex } from 'knex';
import type { PushChoice } from '../../attestation/push-decision.js';
import { recordFromRow, type VerifierAgentRecord } from '../verifier-agent-record.js';
import { storableJson } from '../../db/storable-text.js';
import {
  AGENTS,
  AGENT_WITH_LATEST,
  AGENT_WITH_VERSION,
  ATTESTATIONS,
  INSERT,
  INSERT_AFTER,
  KEPT_ATTESTATIONS,
  LATEST,
  STORED_LOG_BOOT,
  TAKE_JUDGED_EVIDENCE,
  TAKE_OWNERSHIP,
  VERSION,
} from './push-statements.js';

/** Evidence judged before it was taken (`takeJudgedEvidence`). */
export interface JudgedEvidenceTake {
  readonly agentId: string;
  readonly index: number;
  readonly challenge: string;
  readonly receivedAt: Date;
  /** `agentVersionSql` of the agent's row the evidence was judged from. */
  readonly agentVersion: string;
  /** The evidence was judged failing the agent (`recordedOverOperatorStop`): taken over an operator's stop too. */
  readonly recordOverStop?: boolean;
}

/** An attestation as phase 1 inserts it. */
export type NewPushAttestation = Omit<PushAttestation, 'evaluation' | 'failureReason' | 'evidenceReceivedAt' | 'verificationCompletedAt'>;

/** An attestation to insert after `after` (its agent's latest, judged) while the agent's row has `agentVersion` (`insertAfter`). */
export interface InsertAfter {
  readonly attestation: NewPushAttestation;
  readonly after: Pick<PushAttestation, 'index' | 'challenge'>;
  readonly agentVersion: string;
}

/** An agent's row and its version (`agentVersionSql`), read together. */
export interface AgentWithVersion {
  readonly record: VerifierAgentRecord;
  readonly agentVersion: string;
}

/** `AgentWithVersion`, the agent's latest attestation and the boot time of its stored boot log (none: no log, or a failure's tombstone), read together. */
export interface AgentWithLatest extends AgentWithVersion {
  readonly latest: PushAttestation | undefined;
  readonly storedLogBootTime?: number;
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

/** The push model's attestations (migration 20261203100000) and the agents' rows as both phases read them; the sessions are `PushSessionRepository`'s. */
export class PushRepository {
  constructor(private readonly knex: Knex) {}

  /** The agent's row, its latest attestation and its stored boot log's boot time in ONE round trip (both phases need them): undefined when not enrolled. */
  async agentWithLatest(agentId: string): Promise<AgentWithLatest | undefined> {
    const row = await this.agentRow(AGENT_WITH_LATEST, agentId);
    if (row === undefined) return undefined;
    const latest = row[LATEST] === null || row[LATEST] === undefined ? undefined : attestationFromRow(json(row[LATEST]) as Record<string, unknown>);
    const stored = row[STORED_LOG_BOOT];
    return { record: recordFromRow(row), latest, agentVersion: String(row[VERSION]), storedLogBootTime: stored === null || stored === undefined ? undefined : Number(stored) };
  }

  /** The agent's row and its version, without its attestations (the silence sweep judges the row alone): undefined when not enrolled. */
  async agentWithVersion(agentId: string): Promise<AgentWithVersion | undefined> {
    const row = await this.agentRow(AGENT_WITH_VERSION, agentId);
    return row === undefined ? undefined : { record: recordFromRow(row), agentVersion: String(row[VERSION]) };
  }

  private async agentRow(query: string, agentId: string): Promise<Record<string, unknown> | undefined> {
    const result = (await this.knex.raw(query, [agentId])) as { rows: Record<string, unknown>[] };
    return result.rows[0];
  }

  async latestAttestation(agentId: string): Promise<PushAttestation | undefined> {
    const row = (await this.knex(ATTESTATIONS).where({ agent_id: agentId }).orderBy('index', 'desc').first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : attestationFromRow(row);
  }

  async findAttestation(agentId: string, index: number): Promise<PushAttestation | undefined> {
    const row = (await this.knex(ATTESTATIONS).where({ agent_id: agentId, index }).first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : attestationFromRow(row);
  }

  /** The agent's newest KEPT_ATTESTATIONS attestations (all it keeps), oldest first. */
  async listAttestations(agentId: string): Promise<PushAttestation[]> {
    const rows = (await this.knex(ATTESTATIONS).where({ agent_id: agentId }).orderBy('index', 'desc').limit(KEPT_ATTESTATIONS)) as Record<string, unknown>[];
    return rows.reverse().map(attestationFromRow);
  }

  /**
   * Inserts attestation `index` (the latest + 1). Two concurrent POSTs compute the same index and the
   * primary key lets one through: the other gets false (Keylime's 409).
   */
  async insertAttestation(attestation: NewPushAttestation): Promise<boolean> {
    const result = (await this.knex.raw(INSERT, [storableJson([newAttestationRow(attestation)])])) as { rows: unknown[] };
    return result.rows.length > 0;
  }

  /**
   * Inserts each attestation only while the agent's latest attestation is still its `after` (same
   * index and challenge, judged) and the agent's row still has its `agentVersion`, in one statement.
   * Resolves to the challenges of the attestations inserted: any other changed (the caller reads and
   * decides again), or lost to a concurrent insert of the same index.
   */
  async insertAfter(inserts: readonly InsertAfter[]): Promise<Set<string>> {
    const rows = inserts.map(({ attestation, after, agentVersion }) => newAttestationRow(attestation, after, agentVersion));
    const result = (await this.knex.raw(INSERT_AFTER, [storableJson(rows)])) as { rows: { challenge: string }[] };
    return new Set(result.rows.map((row) => row.challenge));
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
   * Undoes `takeEvidence` for evidence taken but never judged (the stored policies could not be read):
   * attestation `index` awaits its evidence again, so the agent's next PATCH is judged. True while it
   * is `evaluating_evidence` with `challenge`, or awaits its evidence already: run again after a give-back
   * whose answer was lost, it answers as that one did (before, false, and the PATCH was refused 403
   * `old_attestation` for an attestation still the agent's latest). False otherwise (re-enrolled,
   * deleted, completed).
   */
  async giveBackEvidence(agentId: string, index: number, challenge: string): Promise<boolean> {
    const updated = await this.knex(ATTESTATIONS)
      .update({ stage: 'awaiting_evidence', evidence_received_at: null })
      .where({ agent_id: agentId, index, challenge })
      .whereIn('stage', ['evaluating_evidence', 'awaiting_evidence']);
    return updated > 0;
  }

  /**
   * `takeEvidence` of evidence judged before it was taken, for each of `takes`, alone (a verdict's
   * take in its own transaction is a CTE of `savePushRounds`): only while the attestation is still the agent's latest, its challenge had
   * not expired when the evidence came, and the agent's row is the one the evidence was judged from.
   * Resolves to the ids of the agents whose evidence was taken.
   */
  async takeJudgedEvidence(takes: readonly JudgedEvidenceTake[]): Promise<Set<string>> {
    const rows = takes.map((t) => ({
      agent_id: t.agentId,
      index: t.index,
      challenge: t.challenge,
      received_at: t.receivedAt.toISOString(),
      agent_version: t.agentVersion,
      record_over_stop: t.recordOverStop === true,
    }));
    const result = (await this.knex.raw(TAKE_JUDGED_EVIDENCE, [JSON.stringify(rows)])) as { rows: { agent_id: string }[] };
    return new Set(result.rows.map((row) => row.agent_id));
  }

  /** How many push agents of `verifierId` are attesting (not failed, not stopped): each needs a session of its own. */
  async attestingAgentCount(verifierId: string): Promise<number> {
    const [row] = (await this.knex(AGENTS).where({ verifier_id: verifierId, attestation_mode: 'push' }).whereIn('operational_state', [1, 3]).count({ n: '*' })) as { n: string | number }[];
    return Number(row?.n ?? 0);
  }

  /** Push agents of `verifierId` still attesting whose last attestation (or enrolment) is older than `before`, but the `spared`. */
  async silentAgents(verifierId: string, before: Date, limit: number, spared?: SparedSilence): Promise<string[]> {
    const query = this.knex(AGENTS)
      .select('agent_id')
      .where({ verifier_id: verifierId, attestation_mode: 'push' })
      .whereIn('operational_state', [1, 3])
      .where((q) => {
        void q.where('last_received_quote', '<', before).orWhere((q2) => {
          void q2.whereNull('last_received_quote').where('created_at', '<', before);
        });
      });
    if (spared !== undefined) {
      // whereNotNull first: a null comparison would make the whole negation null, leaving the row out.
      void query.whereNot((q) => {
        void q
          .where((q1) => void q1.whereNotNull('last_received_quote').where('last_received_quote', '>', spared.attestedAfter).where('last_received_quote', '<=', spared.until))
          .orWhere((q2) => void q2.whereNull('last_received_quote').where('created_at', '>', spared.enrolledAfter).where('created_at', '<=', spared.until));
      });
    }
    const rows = (await query.orderBy('agent_id').limit(limit)) as { agent_id: string }[];
    return rows.map((row) => row.agent_id);
  }

  /**
   * A push agent is written by whichever process takes its request: take the row over first (the round
   * writer writes only its owner's rows) — only while the row still has `agentVersion` (the owner is not
   * part of it), so a verdict about to be refused takes nothing over. With `recordOverStop` (a verdict
   * failing the agent, `recordedOverOperatorStop`) a row an operator stopped from `agentVersion` since
   * answers true too, without being taken (its owner and lease stay as the operator left them): that
   * failure is still recorded, once (`SAVE_ROUNDS`). False when the row changed otherwise, or is no
   * longer a push agent's.
   */
  async takeOwnership(agentId: string, owner: string, leaseSeconds: number, agentVersion: string, recordOverStop = false): Promise<boolean> {
    const result = (await this.knex.raw(TAKE_OWNERSHIP, [owner, leaseSeconds, agentId, agentVersion, recordOverStop, agentId, agentVersion])) as { rows: unknown[] };
    return result.rows.length > 0;
  }
}

/**
 * Silent agents a database outage still excuses (`verifierOutageDeadline`): silent since after `attestedAfter`
 * (last attestation) or `enrolledAfter` (enrolment, never attested), and not after `until`, the outage's end.
 */
export interface SparedSilence {
  readonly attestedAfter: Date;
  readonly enrolledAfter: Date;
  readonly until: Date;
}

/**
 * One row of `NEW_ROWS`; `after` and `agentVersion` only for `INSERT_AFTER`. Its `system_info`, and in
 * `choice` the certification key and the capabilities kept, are the agent's own strings: the rows go through `storableJson`, so a
 * NUL or lone surrogate there is stored escaped instead of failing the statement (and, in a batch,
 * every other agent's insert with it).
 */
function newAttestationRow(a: NewPushAttestation, after?: InsertAfter['after'], agentVersion?: string): Record<string, unknown> {
  return {
    agent_id: a.agentId,
    index: a.index,
    stage: a.stage,
    challenge: a.challenge,
    choice: a.choice,
    system_info: a.systemInfo,
    capabilities_received_at: a.capabilitiesReceivedAt.toISOString(),
    challenges_expire_at: a.challengesExpireAt.toISOString(),
    after_index: after?.index ?? null,
    after_challenge: after?.challenge ?? null,
    agent_version: agentVersion ?? null,
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
