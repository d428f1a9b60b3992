import type { Logger } from 'pino';
import type { AgentPolicies } from '../../attestation/agent-policies.js';
import { OperationalState } from '../../attestation/operational-state.js';
import { checkPushEvidence, choosePushEvidence, type PushEngineOptions, type PushVerdict } from '../../attestation/push-decision.js';
import { decidePushException, decidePushMissingLog } from '../../attestation/push-failure-decision.js';
import { BoundedCache } from '../../cache/bounded-cache.js';
import { messageOf } from '../error-message.js';
import type { VerifierAgentRecord } from '../verifier-agent-record.js';
import type { VerifierAgentRepository } from '../verifier-agent-repository.js';
import type { VerifierHealth } from '../verifier-health.js';
import type { VerifierMetrics } from '../verifier-metrics.js';
import { capabilitiesOf, evidenceOf, unlessRefused } from './push-body-decoding.js';
import type { CapabilitiesBody, EvidenceBody } from './push-dtos.js';
import type { AgentWithLatest, NewPushAttestation, PushAttestation, PushRepository } from './push-repository.js';
import type { PushInsertBatch } from './push-insert-batch.js';
import { PushJudgement, type Answer, type KnownAttestation } from './push-judgement.js';
import type { BootLogMemo } from '../../attestation/boot-log-memo.js';
import { HeldBootLogs } from './held-boot-logs.js';
import { JudgingAgents } from './judging-agents.js';
import type { PushBootLogStore } from './push-boot-log-store.js';
import { newPushAttestation } from './new-push-attestation.js';
import { PushPolicyCache, type PushPolicyDeps } from './push-policy-cache.js';
import { PushRefused, verificationInProgress } from './push-reply.js';
import type { AuthenticatedSession, PushSessions } from './push-sessions.js';
import type { PushVerdictStore } from './push-verdict-store.js';

export interface PushAttestationSettings {
  readonly verifierId: string;
  readonly owner: string;
  /** Seconds between an agent's evidence and its next attestation (`quote_interval`). */
  readonly quoteInterval: number;
  /** Seconds an attestation's challenge may be answered (`challenge_lifetime`). */
  readonly challengeLifetime: number;
  readonly engine: PushEngineOptions;
  /** The boot logs this process verified (shared with the pull loop); absent: every attestation asks for the `uefi_log`. */
  readonly bootLogs?: BootLogMemo;
  /**
   * Now on the database's clock (`DatabaseClock.nowMs`): the times an attestation stores (its challenge's
   * expiry, the evidence's arrival, the agent's last quote and success) are judged by any process.
   */
  readonly now: () => number;
}

export interface PushAttestationDeps {
  readonly agents: VerifierAgentRepository;
  readonly repository: PushRepository;
  /** Phase 1's inserts after a stored verdict, batched. */
  readonly inserts: PushInsertBatch;
  readonly sessions: PushSessions;
  readonly verdicts: PushVerdictStore;
  readonly policies: PushPolicyDeps;
  /** The verified boot logs any process may judge with (`HeldBootLogs`). */
  readonly bootLogStore: PushBootLogStore;
  /** Told while a verdict waits for the database (`PushJudgement`): not ready meanwhile. */
  readonly health: Pick<VerifierHealth, 'writeFailed' | 'writeSettled'>;
  /** Counts what a verdict waited for and gave up on (`PushJudgementDeps.metrics`). */
  readonly metrics?: Pick<VerifierMetrics, 'verdictWaitGivenUp'> | undefined;
  readonly log: Logger;
}

/**
 * What phase 1 reads after a verdict this process stored (`createAfterCompleted`): the agent's row as
 * the verdict left it, that row's version, and the attestation the verdict completed — its index and
 * challenge (the insert's condition) and when its evidence came (the 429).
 */
interface CompletedAttestation {
  readonly record: VerifierAgentRecord;
  readonly agentVersion: string;
  readonly index: number;
  readonly challenge: string;
  readonly evidenceReceivedAt: Date;
}

/** Agents whose policies, issued and completed attestations one process remembers (a bound on memory). */
const MAX_REMEMBERED = 100_000;
/** An evaluation that never finished (the process died in it) stops blocking new attestations after this. */
const STALE_EVALUATION_MS = 120_000;

/**
 * The push model's two phases (keylime-protocol §10.3–§10.4), as I/O: the decisions are
 * `lib/attestation/push-decision.ts`'s; the verdict is judged again as the row changes (`PushJudgement`)
 * and stored by the pull loop's `RoundWriter` (`PushVerdictStore`, `PushVerdictWriter`: the evidence take and the attestation's completion in the
 * same transaction) before the agent hears back. When this process served the agent's previous
 * attestation, phase 1 costs a share of one round trip (`PushInsertBatch`) and phase 2 none besides
 * the verdicts' shared transaction. The liveness sweep is `PushLiveness`'s.
 */
export class PushAttestations {
  /** The attestation this process last issued to each agent (phase 1), for `issuedAnswer`. */
  private readonly issued = new BoundedCache<string, KnownAttestation>(MAX_REMEMBERED);
  /** Per agent, what the last verdict this process stored left (`createAfterCompleted`). */
  private readonly completed = new BoundedCache<string, CompletedAttestation>(MAX_REMEMBERED);
  private readonly policies: PushPolicyCache;
  private readonly judgement: PushJudgement;
  private readonly bootLogs: HeldBootLogs;
  /** Agents whose evidence this process is judging: their next attestation waits (503), the silence sweep skips them. */
  private readonly judging = new JudgingAgents();

  constructor(
    private readonly deps: PushAttestationDeps,
    private readonly settings: PushAttestationSettings,
  ) {
    this.policies = new PushPolicyCache(deps.policies, MAX_REMEMBERED, settings.now);
    this.bootLogs = new HeldBootLogs(settings.bootLogs, settings.engine.measuredBootPolicy ?? 'example', deps.bootLogStore, deps.log);
    this.judgement = new PushJudgement(
      { repository: deps.repository, verdicts: deps.verdicts, policies: this.policies, reRead: (agentId) => this.pushAgentWithLatest(agentId), health: deps.health, metrics: deps.metrics, log: deps.log },
      settings,
    );
  }

  /** Whether this process is judging evidence of `agentId` now (its verdict decides, not the silence before it). */
  isJudging(agentId: string): boolean {
    return this.judging.has(agentId);
  }

  /**
   * Phase 1 (§10.3): the evidence wanted from `agentId`, stored as its next attestation. When this
   * process stored the agent's last verdict, a share of one round trip (`createAfterCompleted`);
   * otherwise, or when anything would be refused, the agent and its latest attestation are read first.
   */
  async create(agentId: string, body: CapabilitiesBody, now = new Date(this.settings.now())): Promise<PushAttestation> {
    if (this.judging.has(agentId)) {
      throw verificationInProgress(this.settings.quoteInterval);
    }
    const issued = (await this.createAfterCompleted(agentId, body, now)) ?? (await this.createAfterReading(agentId, body, now));
    this.issued.set(agentId, issued);
    return { ...issued.attestation, evaluation: null, failureReason: null, evidenceReceivedAt: null, verificationCompletedAt: null };
  }

  /** Reads the agent and its latest attestation, refuses with the status §10.3 names, else chooses and inserts. */
  private async createAfterReading(agentId: string, body: CapabilitiesBody, now: Date): Promise<KnownAttestation> {
    const { record, latest, agentVersion, storedLogBootTime } = await this.pushAgentWithLatest(agentId);
    if (latest !== undefined) {
      const refused = this.paceRefusal(latest, now);
      if (refused !== undefined) throw refused;
    }
    const offered = capabilitiesOf(body);
    const policies = await this.loadablePolicies(record, agentVersion);
    const bootLogs = this.bootLogs.of(record, latest);
    if (bootLogs !== undefined) await this.bootLogs.recallStored(record, policies, latest, offered.bootTime, storedLogBootTime);
    const chosen = choosePushEvidence(record.state, policies, record.akTpm, offered, bootLogs);
    if (!chosen.ok) {
      if (chosen.missingLog !== undefined) await this.failMissingLog(record, agentVersion, chosen.detail, now);
      throw new PushRefused(422, 'invalid_capabilities', chosen.detail);
    }
    const attestation = newPushAttestation(agentId, latest === undefined ? 0 : latest.index + 1, chosen.choice, body, now, this.settings.challengeLifetime);
    if (!(await this.deps.repository.insertAttestation(attestation))) {
      throw new PushRefused(409, 'conflict', 'another attestation was created for this agent at the same time');
    }
    return { attestation, record, agentVersion };
  }

  /**
   * The agent's compiled policies for phase 1. When they do not compile (a stored AK no TPM key can be
   * trusted as, a stored value that no longer parses), a lasting fault of its enrolment, the agent is
   * failed, `internal.verifier.exception` as phase 2 and a pull round do, and the error thrown: without
   * the failure every phase 1 was refused while the agent kept its last PASS until its silence timeout.
   * What reading the policies throws (the database, a named policy not found) is thrown as it is,
   * nothing stored.
   */
  private async loadablePolicies(record: VerifierAgentRecord, agentVersion: string): Promise<AgentPolicies> {
    const compile = await this.policies.read(record);
    try {
      return compile();
    } catch (error) {
      await this.failEnrolment(record, agentVersion, error);
      throw error;
    }
  }

  /**
   * A session proof refused because the agent's stored AK is one no TPM key can be trusted as
   * (`verifyProofOfPossession`'s `weak-key`): the agent is failed as when phase 1 loads that AK
   * (`loadablePolicies`), since it can no longer reach phase 1 and would otherwise keep its last PASS
   * until its silence timeout. The AK is the enrolment's, not the request's: whoever sent the proof,
   * the agent is untrusted. Nothing happens when it is no longer this verifier's push agent.
   */
  async failUntrustedAk(agentId: string, reason: string): Promise<void> {
    const found = await this.deps.repository.agentWithLatest(agentId);
    if (found === undefined || found.record.verifierId !== this.settings.verifierId || found.record.attestationMode !== 'push') return;
    await this.failEnrolment(found.record, found.agentVersion, new Error(reason));
  }

  /** Stores the failure (`decidePushMissingLog`) of an agent that offers no log its policy needs, once, when the log stays missing. */
  private async failMissingLog(record: VerifierAgentRecord, agentVersion: string, detail: string, now: Date): Promise<void> {
    const timing = { enrolledAt: record.enrolledAt, now: now.getTime() / 1000, quoteInterval: this.settings.quoteInterval };
    const failed = decidePushMissingLog(record.state, timing, `the push agent offers no evidence its policy needs: ${detail}`, this.settings.engine.severityPolicy);
    if (failed === undefined) return;
    const { stored } = await this.deps.verdicts.store(record, failed.state, failed.history, { expectedVersion: agentVersion });
    this.deps.log.warn({ agentId: record.agentId, stored, reason: detail }, 'push agent failed (internal.verifier.no_quote): it offers no log its policy needs');
  }

  /** Stores the failure (`internal.verifier.exception`) of an agent whose enrolment cannot be attested on, once. */
  private async failEnrolment(record: VerifierAgentRecord, agentVersion: string, error: unknown): Promise<void> {
    if (record.state.operationalState === OperationalState.FAILED) return;
    const failed = decidePushException(record.state, null, `the enrolment of agent ${record.agentId} could not be loaded: ${messageOf(error)}`, this.settings.engine.severityPolicy);
    const { stored } = await this.deps.verdicts.store(record, failed.state, failed.history, { expectedVersion: agentVersion });
    this.deps.log.error({ err: error, agentId: record.agentId, stored }, 'push agent failed (internal.verifier.exception): its enrolment could not be loaded');
  }

  /**
   * Phase 1 in a batched statement (`PushInsertBatch`), for an agent whose last verdict this process stored: the evidence is
   * chosen from the agent's row as that verdict left it, and inserted only while the agent's latest
   * attestation is still the one it completed and the row still has the version the verdict left
   * (nothing changed it since: no other process's verdict, no silence failure, no enrolment or policy
   * edit). Undefined when it does not apply or anything would be refused: `createAfterReading` then
   * reads and explains.
   */
  private async createAfterCompleted(agentId: string, body: CapabilitiesBody, now: Date): Promise<KnownAttestation | undefined> {
    const completed = this.completed.get(agentId);
    if (completed === undefined || this.prematureRefusal(completed.evidenceReceivedAt, now) !== undefined) return undefined;
    this.completed.delete(agentId);
    const offered = unlessRefused(() => capabilitiesOf(body));
    if (offered === undefined) return undefined;
    const policies = await this.policies.of(completed.record).catch(() => undefined);
    if (policies === undefined) return undefined;
    const chosen = choosePushEvidence(completed.record.state, policies, completed.record.akTpm, offered, this.bootLogs.of(completed.record));
    if (!chosen.ok) return undefined;
    const attestation = newPushAttestation(agentId, completed.index + 1, chosen.choice, body, now, this.settings.challengeLifetime);
    if (!(await this.deps.inserts.insert({ attestation, after: completed, agentVersion: completed.agentVersion }))) return undefined;
    return { attestation, record: completed.record, agentVersion: completed.agentVersion };
  }

  /**
   * Phase 2 (§10.4): checks the evidence answers the latest attestation, judges it, stores the
   * verdict, and extends the session on a pass. Resolves to the attestation as the reply shows it.
   * Evidence for the attestation this process issued is judged from the row phase 1 saw and taken in
   * the verdict's transaction; when that take fails (a replay, a newer attestation, a changed row:
   * perhaps through another process), the verdict is dropped and the attestation read back, which
   * refuses with §10.4's status or judges the evidence again from the row as it is.
   */
  async submit(agentId: string, index: string, body: EvidenceBody, session: AuthenticatedSession, now = new Date(this.settings.now())): Promise<PushAttestation> {
    const readBack = (): Promise<Answer> => this.takeLatest(agentId, index, body, now);
    // Counted as judged only from here: evidence refused before it is taken (an old index, a replay,
    // a 422) must not keep the silence sweep off the agent.
    const answer = this.issuedAnswer(agentId, index, body, now) ?? (await readBack());
    this.judging.begin(agentId);
    try {
      const stored = await this.judgeAndStore(answer, now, readBack);
      if (stored.verdict.verdict === 'pass') {
        // The verdict is stored: a failed extension costs the agent at most a new session, not the 202.
        await this.deps.sessions.extend(session, now).catch((err: unknown) => this.deps.log.warn({ err, agentId }, 'push session not extended'));
      } else {
        this.deps.log.warn({ agentId, index: stored.attestation.index, reason: stored.verdict.failureReason }, 'push attestation failed');
      }
      return { ...stored.attestation, stage: 'evaluating_evidence', evaluation: null, failureReason: null, evidenceReceivedAt: now, verificationCompletedAt: null };
    } finally {
      this.judging.end(agentId);
    }
  }

  /**
   * The common case, without a read: the evidence answers the attestation this process issued to the
   * agent, is complete and came before its challenge expired. Undefined when that does not hold
   * (another process issued it, a replay, an old index, incomplete evidence…): `takeLatest` then
   * reads, and refuses with the status that explains why.
   */
  private issuedAnswer(agentId: string, index: string, body: EvidenceBody, now: Date): Answer | undefined {
    const issued = this.issued.get(agentId);
    if (issued === undefined || (index !== 'latest' && index !== String(issued.attestation.index))) return undefined;
    if (issued.attestation.challengesExpireAt.getTime() <= now.getTime()) return undefined;
    const evidence = unlessRefused(() => this.bootLogs.withHeldLog(issued.record, issued.attestation.choice, evidenceOf(body)));
    if (evidence === undefined || checkPushEvidence(issued.attestation.choice, evidence) !== undefined) return undefined;
    this.issued.delete(agentId);
    return { ...issued, evidence, taken: false };
  }

  /** Reads the agent and its latest attestation, checks the evidence answers it (§10.4), and takes it. */
  private async takeLatest(agentId: string, index: string, body: EvidenceBody, now: Date): Promise<Answer> {
    const { record, latest, agentVersion } = await this.pushAgentWithLatest(agentId);
    const wanted = index === 'latest' ? latest?.index : /^[0-9]{1,9}$/.test(index) ? Number(index) : undefined;
    if (latest === undefined || wanted === undefined || wanted > latest.index) {
      throw new PushRefused(404, 'not_found', `no attestation ${index} for agent ${agentId}`);
    }
    if (wanted !== latest.index) {
      throw new PushRefused(403, 'old_attestation', `attestation ${wanted} is not the latest (${latest.index})`);
    }
    if (latest.stage !== 'awaiting_evidence') {
      throw new PushRefused(403, 'evidence_immutable', `attestation ${wanted} already has its evidence`);
    }
    if (latest.challengesExpireAt.getTime() <= now.getTime()) {
      throw new PushRefused(403, 'challenges_expired', `the challenge of attestation ${wanted} has expired`);
    }
    const evidence = await this.bootLogs.withStoredLog(record, () => this.policies.of(record), latest.choice, evidenceOf(body));
    const refused = checkPushEvidence(latest.choice, evidence);
    if (refused !== undefined) {
      throw new PushRefused(422, 'invalid_evidence', refused.detail);
    }
    if (!(await this.deps.repository.takeEvidence(agentId, latest.index, now))) {
      throw new PushRefused(403, 'evidence_immutable', `attestation ${wanted} already has its evidence`);
    }
    return { attestation: latest, record, agentVersion, evidence, taken: true };
  }

  /** `PushJudgement.judgeAndStore`, remembering what a stored verdict left for the agent's next phase 1 (`createAfterCompleted`). */
  private async judgeAndStore(answer: Answer, now: Date, readBack: () => Promise<Answer>): Promise<{ readonly attestation: NewPushAttestation; readonly verdict: PushVerdict }> {
    const { attestation, record, verdict, agentVersion } = await this.judgement.judgeAndStore(answer, now, readBack);
    // The evidence judged is `answer`'s unless a read-back judged another attestation's; remembering is optional.
    if (verdict.verdict === 'fail' || attestation.challenge === answer.attestation.challenge) {
      await this.bootLogs.settle(record, attestation.index, () => this.policies.of(record), attestation.choice, answer.evidence, verdict).catch((err: unknown) => this.deps.log.warn({ err, agentId: record.agentId }, 'boot log not remembered'));
    }
    if (agentVersion !== undefined) {
      this.completed.set(record.agentId, {
        record: { ...record, owner: this.settings.owner, state: verdict.state },
        agentVersion,
        index: attestation.index,
        challenge: attestation.challenge,
        evidenceReceivedAt: now,
      });
    }
    return { attestation, verdict };
  }

  /** `GET …/attestations`: the agent's newest attestations (all it keeps), oldest first. */
  async list(agentId: string): Promise<PushAttestation[]> {
    await this.pushAgent(agentId);
    return this.deps.repository.listAttestations(agentId);
  }

  /** `GET …/attestations/{index|latest}`. */
  async read(agentId: string, index: string): Promise<PushAttestation> {
    await this.pushAgent(agentId);
    const found =
      index === 'latest'
        ? await this.deps.repository.latestAttestation(agentId)
        : /^[0-9]{1,9}$/.test(index)
          ? await this.deps.repository.findAttestation(agentId, Number(index))
          : undefined;
    if (found === undefined) {
      throw new PushRefused(404, 'not_found', `no attestation ${index} for agent ${agentId}`);
    }
    return found;
  }

  /** The agent's record, if it is a push agent of this verifier (404 / 403 otherwise). */
  private async pushAgent(agentId: string): Promise<VerifierAgentRecord> {
    return this.checkPushAgent(agentId, await this.deps.agents.find(agentId));
  }

  /** `pushAgent`, the row's version and the agent's latest attestation, read together. */
  private async pushAgentWithLatest(agentId: string): Promise<AgentWithLatest> {
    const found = await this.deps.repository.agentWithLatest(agentId);
    const record = this.checkPushAgent(agentId, found?.record);
    return { ...(found as AgentWithLatest), record };
  }

  private checkPushAgent(agentId: string, record: VerifierAgentRecord | undefined): VerifierAgentRecord {
    if (record === undefined || record.verifierId !== this.settings.verifierId) {
      throw new PushRefused(404, 'not_found', `agent ${agentId} is not enrolled`);
    }
    if (record.attestationMode !== 'push') {
      throw new PushRefused(403, 'agent_attestations_disabled', `agent ${agentId} is enrolled for pull attestation`);
    }
    return record;
  }

  /**
   * 503 while the previous evidence is being judged, 429 before `quote_interval` has passed since it
   * came — or, while the latest attestation still awaits its evidence, since that attestation was
   * created: each phase 1 stores a row, and without evidence nothing else paced them.
   */
  private paceRefusal(latest: PushAttestation, now: Date): PushRefused | undefined {
    const receivedAt = latest.evidenceReceivedAt;
    if (latest.stage === 'evaluating_evidence' && receivedAt !== null && now.getTime() - receivedAt.getTime() < STALE_EVALUATION_MS) {
      return verificationInProgress(this.settings.quoteInterval);
    }
    if (latest.stage === 'awaiting_evidence') return this.prematureRefusal(latest.capabilitiesReceivedAt, now);
    return receivedAt === null ? undefined : this.prematureRefusal(receivedAt, now);
  }

  /** 429 before `quote_interval` has passed since `since` (the previous evidence, or an attestation still awaiting it). */
  private prematureRefusal(since: Date, now: Date): PushRefused | undefined {
    const wait = (since.getTime() + this.settings.quoteInterval * 1000 - now.getTime()) / 1000;
    return wait > 0 ? new PushRefused(429, 'premature_attestation', `the next attestation is allowed in ${Math.ceil(wait)} s`, wait) : undefined;
  }
}

