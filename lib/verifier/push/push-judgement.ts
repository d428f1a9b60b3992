import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { decidePushEvidence, type PushEngineOptions, type PushEvidence, type PushVerdict } from '../../attestation/push-decision.js';
import { decidePushException } from '../../attestation/push-failure-decision.js';
import { recordedOverOperatorStop } from '../../attestation/failure-over-operator-stop.js';
import { OPERATOR_STOPPED_STATES } from '../../attestation/operational-state.js';
import { PolicyNotStored } from '../polled-agent.js';
import { messageOf } from '../error-message.js';
import type { VerifierAgentRecord } from '../verifier-agent-record.js';
import type { VerifierHealth } from '../verifier-health.js';
import type { VerifierMetrics } from '../verifier-metrics.js';
import type { AgentPolicies } from '../../attestation/agent-policies.js';
import type { PushPolicyCache } from './push-policy-cache.js';
import type { AgentWithLatest, JudgedEvidenceTake, NewPushAttestation, PushRepository } from './push-repository.js';
import { PushRefused } from './push-reply.js';
import type { PushVerdictStore } from './push-verdict-store.js';
import type { PushCompletion } from './push-verdict-writer.js';
import { untilDatabaseAnswers } from './until-database-answers.js';
import { judgeInSlices } from '../judge-in-slices.js';

/**
 * An attestation as this process knows it, with the agent's row its evidence is judged from and that
 * row's version (`agentVersionSql`): issued by phase 1, or read back by phase 2.
 */
export interface KnownAttestation {
  readonly attestation: NewPushAttestation;
  readonly record: VerifierAgentRecord;
  readonly agentVersion: string;
}

/** What phase 2 judges: an attestation, its evidence decoded, and whether the evidence is already taken. */
export interface Answer extends KnownAttestation {
  readonly evidence: PushEvidence;
  readonly taken: boolean;
}

/** A stored verdict, the row it was judged from and the row's version after it (when the write answered it). */
export interface StoredVerdict {
  readonly attestation: NewPushAttestation;
  readonly record: VerifierAgentRecord;
  readonly verdict: PushVerdict;
  readonly agentVersion: string | undefined;
}

/**
 * Stores after the first one refused before the request gives up and fails the agent (`failClosed`). Two are
 * enough when nothing is wrong: the evidence read back after a lost take, then judged once more after
 * another process's verdict or silence failure landed on the row. A refusal nothing here can explain
 * would otherwise judge and store for ever, with the agent's next attestation refused (503) all along.
 */
const MAX_RESTORES = 3;

/**
 * The pauses between reads of the agent's stored policies that fail (the database away a moment: a
 * restart, a failover, a pool timeout): 2 s in all before the evidence is given back unjudged.
 */
const POLICY_READ_RETRIES_MS = [100, 400, 1500] as const;

/** The agent's stored policies could not be read, the retries spent: the evidence was not judged (`cause`: the last error). */
class StoredPoliciesUnread extends Error {}

export interface PushJudgementDeps {
  readonly repository: Pick<PushRepository, 'takeJudgedEvidence' | 'giveBackEvidence'>;
  readonly verdicts: PushVerdictStore;
  readonly policies: PushPolicyCache;
  /** The agent's row, its version and latest attestation read again; refuses (404, 403) when it is no longer this verifier's push agent. */
  readonly reRead: (agentId: string) => Promise<AgentWithLatest>;
  /** Told while a verdict waits for the database at a re-read (`latestUntilRead`): not ready meanwhile. */
  readonly health: Pick<VerifierHealth, 'writeFailed' | 'writeSettled'>;
  /** Counts a re-read or give-back given up on (`untilDatabaseAnswers`). */
  readonly metrics?: Pick<VerifierMetrics, 'verdictWaitGivenUp'> | undefined;
  readonly log: Logger;
}

export interface PushJudgementSettings {
  readonly owner: string;
  readonly engine: PushEngineOptions;
}

/** Phase 2's verdicts (§10.4): judged, stored on condition of the row judged from, judged again when that row changed. */
export class PushJudgement {
  constructor(
    private readonly deps: PushJudgementDeps,
    private readonly settings: PushJudgementSettings,
  ) {}

  /**
   * Judges `first` and stores the verdict, taking the evidence in the verdict's transaction when it
   * is not taken yet — except for a failing verdict, whose evidence is taken at once, so that no
   * later request (another process's new attestation) can keep it from being stored (when that take
   * meets a database error, it is made in the verdict's transaction instead, retried until stored). The verdict is
   * stored only while the agent's row still has the version it was judged from. When the evidence
   * could not be taken, nothing was stored: the answer `readBack` gives (a refusal, or the evidence
   * taken already) is judged instead; when it was taken but the row changed (a silence failure or a
   * verdict of another process, an edit), the same evidence is judged again from the row as it is
   * (`judgedAgain`), so the attestation still ends judged and a failure stored meanwhile is judged on.
   * Evidence taken whose verdict still ends unstored fails the agent (`failClosed`): that FAIL, once
   * stored, is what resolves (the attestation is complete, as after any verdict: the PATCH answers 202,
   * as Keylime answers any evidence it accepted); when it is not stored either, the request fails (500),
   * and when the agent is no longer attested on that attestation, it is refused (404, 403).
   * An error with the evidence not taken stores nothing: the attestation still awaits its evidence.
   * So does a database error reading the stored policies (`readPolicies`, retried first) with the
   * evidence taken but never judged failing: the evidence is given back (`giveBackEvidence`), so the
   * agent's next PATCH is judged; a healthy agent is not FAILED by a database blip. Evidence judged
   * failing is never given back: it fails the agent (`failClosed`), as any error after its take.
   */
  async judgeAndStore(first: Answer, now: Date, readBack: () => Promise<Answer>): Promise<StoredVerdict> {
    let answer = first;
    let judged: { readonly agentVersion: string; readonly verdict: PushVerdict } | undefined;
    let judgedFailing = false;
    /** The last verdict judged failing from a row not stopped: logged with its failures if it ends refused, not recorded. */
    let failing: PushVerdict | undefined;
    // What is read back may be a newer attestation (another process's phase 1), with another challenge
    // under the same row version: judged afresh, never by the verdict judged before.
    const readBackAfresh = (): Promise<Answer> => {
      judged = undefined;
      return readBack();
    };
    try {
      for (let stores = 0; stores <= MAX_RESTORES; stores += 1) {
        // The row unchanged but for its owner gives the same verdict: stored again, not judged again.
        if (judged?.agentVersion !== answer.agentVersion) judged = { agentVersion: answer.agentVersion, verdict: await this.judge(answer, now) };
        const { verdict } = judged;
        judgedFailing ||= verdict.verdict === 'fail';
        const { attestation, record } = answer;
        const overStop = recordedOverOperatorStop(verdict.state, verdict.history, record.state.operationalState);
        if (overStop) failing = verdict;
        let take: JudgedEvidenceTake | undefined;
        if (!answer.taken) {
          take = {
            agentId: record.agentId,
            index: attestation.index,
            challenge: attestation.challenge,
            receivedAt: now,
            agentVersion: answer.agentVersion,
            recordOverStop: overStop,
          };
          if (verdict.verdict === 'fail') {
            const taken = await this.takeFailingEvidence(take);
            if (taken === false) {
              answer = await readBackAfresh();
              continue;
            }
            if (taken) {
              answer = { ...answer, taken: true };
              take = undefined;
            }
          }
        }
        const outcome = await this.deps.verdicts.store(record, verdict.state, verdict.history, { completion: completionOf(attestation.index, verdict), take, expectedVersion: answer.agentVersion });
        if (outcome.stored) return { attestation, record, verdict, agentVersion: outcome.agentVersion };
        if (outcome.reason === 'evidence_not_taken') {
          answer = await readBackAfresh();
          continue;
        }
        // Refused with the evidence taken (a pending take that fails reads 'evidence_not_taken'): judged again from the row as it is.
        answer = { ...answer, taken: true };
        const again = await this.judgedAgain(answer);
        if (again === undefined) break;
        answer = again;
      }
    } catch (error) {
      if (error instanceof PushRefused) {
        // Deleted (or enrolled again) before its failure was stored: the detection goes to the log at least.
        if (failing !== undefined) {
          this.deps.log.error(
            { agentId: answer.attestation.agentId, index: answer.attestation.index, failures: failing.history.failures, reason: error.detail },
            'push FAIL verdict not recorded: the agent is no longer attested on that attestation',
          );
        }
        throw error;
      }
      // Nothing stored and the evidence not taken: logged once, by the routes' error handler (500).
      if (!answer.taken) throw error;
      const { agentId, index } = answer.attestation;
      if (error instanceof StoredPoliciesUnread && !judgedFailing && (await this.givenBack(answer.attestation))) {
        throw new Error(`the evidence of attestation ${index} of agent ${agentId} was not judged and is given back, nothing stored: its attestation awaits it again`, { cause: error });
      }
      return this.storedOr(await this.failClosed(answer, error), error);
    }
    const refused = new Error(`the verdict on attestation ${answer.attestation.index} was refused ${MAX_RESTORES + 1} times, or with nothing changed`);
    return this.storedOr(await this.failClosed(answer, refused), refused);
  }

  /**
   * Takes the evidence of a failing verdict at once: true when taken, false when refused. A database
   * error there is 'unknown' (the statement may even have committed): the FAIL then goes to the verdict
   * writer with its take, tried again there until stored as a pass is, and a take found done by its own
   * lost commit reads back as taken. Before, that error dropped the FAIL with a 500 and the agent kept
   * its last PASS (test/verifier/push-database-cut-points.test.ts).
   */
  private async takeFailingEvidence(take: JudgedEvidenceTake): Promise<boolean | 'unknown'> {
    try {
      return (await this.deps.repository.takeJudgedEvidence([take])).has(take.agentId);
    } catch (error) {
      this.deps.log.warn({ err: error, agentId: take.agentId, index: take.index }, 'the evidence of a failing verdict could not be taken at once: its FAIL goes to the verdict writer, kept until stored');
      return 'unknown';
    }
  }

  /**
   * `giveBackEvidence` until the database answers (`untilDatabaseAnswers`): whether it was given back;
   * false when it was not (its attestation moved on) or the writer closed first. Before, one failed
   * statement there failed the agent closed (`internal.verifier.exception`), a healthy one too, for a
   * database away a little longer than `POLICY_READ_RETRIES_MS` (test/verifier/push-database-blip.test.ts).
   */
  private givenBack({ agentId, index, challenge }: NewPushAttestation): Promise<boolean> {
    const { repository, health, metrics, log } = this.deps;
    return untilDatabaseAnswers(() => repository.giveBackEvidence(agentId, index, challenge), {
      agentId,
      closed: this.deps.verdicts.closed,
      health,
      metrics,
      log,
      what: `giving back the unjudged evidence of attestation ${index}`,
    }).catch(() => false);
  }

  /** The FAIL `failClosed` stored, or `cause` thrown when it stored none (a refusal `failClosed` throws itself). */
  private storedOr(failed: StoredVerdict | undefined, cause: unknown): StoredVerdict {
    if (failed === undefined) throw cause;
    return failed;
  }

  /**
   * The engine's verdict on `answer`'s evidence. When the engine throws (its policies no longer load
   * or compile, a verifier bug), the evidence was received and could not be judged: a failing verdict,
   * Keylime's `internal.verifier.exception`, as a pull round that throws — stored as any failing
   * verdict (its evidence taken at once), so the agent never keeps its last PASS on evidence nobody judged.
   * A policy the agent names that is not stored is judged so too: it will not come back by itself.
   * Reading the stored policies is not judging: a database error there throws (`readPolicies`), and
   * nothing is stored (the agent sends it again; its silence timeout covers a long outage).
   */
  private async judge(answer: Answer, now: Date): Promise<PushVerdict> {
    const { attestation, record } = answer;
    const compilePolicies = await this.readPolicies(record);
    try {
      // A slice at a time (`judgeInSlices`): a whole IMA log or boot log of tens of MiB does not hold the
      // event loop (the other agents' requests, the pull rounds, /health) for the seconds its replay takes.
      return await judgeInSlices(
        decidePushEvidence({
          state: record.state,
          policies: compilePolicies(),
          choice: attestation.choice,
          challenge: new Uint8Array(Buffer.from(attestation.challenge, 'base64')),
          evidence: answer.evidence,
          now: Math.floor(now.getTime() / 1000),
          options: this.settings.engine,
        }),
      );
    } catch (error) {
      const { agentId, index, challenge } = attestation;
      this.deps.log.error({ err: error, agentId, index, evidenceTaken: answer.taken }, 'push evidence could not be judged: judged as failing (internal.verifier.exception)');
      const message = `the evidence of attestation ${index} could not be judged: ${messageOf(error)}`;
      return this.exceptionVerdict(record, challenge, message);
    }
  }

  /**
   * `PushPolicyCache.read`, tried again after each of `POLICY_READ_RETRIES_MS` when it throws; then
   * `StoredPoliciesUnread`. A policy not stored is not retried: the function returned throws it where
   * compiling throws, so that it is judged failing.
   */
  private async readPolicies(record: VerifierAgentRecord): Promise<() => AgentPolicies> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.deps.policies.read(record);
      } catch (error) {
        if (error instanceof PolicyNotStored) return () => { throw error; };
        const pause = POLICY_READ_RETRIES_MS[attempt];
        if (pause === undefined) throw new StoredPoliciesUnread(`the stored policies of agent ${record.agentId} could not be read`, { cause: error });
        await sleep(pause);
      }
    }
  }

  /**
   * Evidence this request took whose verdict was not stored because the agent's row changed after the
   * judgement: the same evidence with the row as it is now, to judge again. Judged from a FAILED row, a
   * pass stays FAILED (`decidePushEvidence`), so evidence sent before a failure never undoes it.
   * Refused when the row can no longer take a verdict (stopped, deleted, not push) or the attestation
   * is no longer the latest (the agent was enrolled again). Undefined when the row's version is the one
   * judged from and this process owns it: nothing explains the refusal. The row is read until the
   * database answers (`latestUntilRead`): before, one failed read there failed the agent
   * (`failClosed`, `internal.verifier.exception`), a healthy one too, for a database blip
   * (test/verifier/push-database-cut-points.test.ts).
   */
  private async judgedAgain(answer: Answer): Promise<Answer | undefined> {
    const { record, agentVersion } = await this.latestUntilRead(answer);
    if (agentVersion === answer.agentVersion && record.owner === this.settings.owner) return undefined;
    return { ...answer, record, agentVersion, taken: true };
  }

  /** The agent's row as it is now, refused unless a verdict can still be stored on it for `answer`'s attestation. */
  private async latestOf({ attestation }: Answer): Promise<AgentWithLatest> {
    const found = await this.deps.reRead(attestation.agentId);
    const { record, latest } = found;
    if (OPERATOR_STOPPED_STATES.includes(record.state.operationalState)) {
      throw new PushRefused(404, 'not_found', `agent ${record.agentId} was stopped or deleted`);
    }
    if (latest?.index !== attestation.index || latest.challenge !== attestation.challenge || latest.stage !== 'evaluating_evidence') {
      throw new PushRefused(403, 'old_attestation', `attestation ${attestation.index} is no longer the agent's latest`);
    }
    return found;
  }

  /**
   * Evidence taken whose verdict could not be stored (`cause`): the agent FAILED on the row as it is now
   * (`decidePushException`) and the attestation completed as a failure, so it is not left trusted on its
   * last verdict. Resolves to that FAIL once stored: the row is read again until the database answers
   * (`latestUntilRead`) and the writer writes until stored. When it is not stored either (the writer closed
   * at shutdown, the row changed again), the attestation stays `evaluating_evidence` and
   * the agent as it was until its silence timeout fails it (docs/push.md): undefined. Refused (404, 403)
   * when the agent is no longer attested on that attestation (stopped, deleted, enrolled again).
   */
  private async failClosed(answer: Answer, cause: unknown): Promise<StoredVerdict | undefined> {
    const { agentId, index, challenge } = answer.attestation;
    const { log } = this.deps;
    log.error({ err: cause, agentId, index, evidenceTaken: true }, 'push evidence taken (its attestation evaluating_evidence) but its verdict not stored; storing the agent\'s failure');
    try {
      const { record, agentVersion } = await this.latestUntilRead(answer);
      const verdict = this.exceptionVerdict(record, challenge, `the verdict on attestation ${index} was not stored: ${messageOf(cause)}`);
      const outcome = await this.deps.verdicts.store(record, verdict.state, verdict.history, { completion: completionOf(index, verdict), expectedVersion: agentVersion });
      if (outcome.stored) {
        log.error({ agentId, index }, 'push agent failed (internal.verifier.exception): its verdict was not stored');
        return { attestation: answer.attestation, record, verdict, agentVersion: outcome.agentVersion };
      }
      log.error({ agentId, index }, 'the failure of a push agent whose verdict was lost was not stored either; its silence timeout fails it');
    } catch (error) {
      if (error instanceof PushRefused) {
        log.info({ agentId, index, reason: error.detail }, 'a push agent whose verdict was lost is no longer attested on that attestation: nothing to fail');
        throw error;
      }
      log.error({ err: error, agentId, index }, 'the failure of a push agent whose verdict was lost was not stored; its silence timeout fails it');
    }
    return undefined;
  }

  /**
   * `latestOf` for a verdict still to store (`judgedAgain`'s, `failClosed`'s FAIL), read until the
   * database answers (`untilDatabaseAnswers`); a refusal (404, 403) is thrown at once. Before, one failed
   * read dropped the FAIL with a 500, the agent kept its last PASS until its silence timeout
   * (test/verifier/push-database-cut-points.test.ts).
   */
  private latestUntilRead(answer: Answer): Promise<AgentWithLatest> {
    const { agentId, index } = answer.attestation;
    const { health, metrics, log } = this.deps;
    return untilDatabaseAnswers(() => this.latestOf(answer), {
      agentId,
      closed: this.deps.verdicts.closed,
      health,
      metrics,
      log,
      what: `reading the push agent again for its verdict on attestation ${index}`,
      isAnswer: (error) => error instanceof PushRefused,
    });
  }

  /**
   * The verifier's own failure as a verdict (`decidePushException`): its attestation completes as
   * `policy_violation`, the spec's name for any event but a broken evidence chain.
   */
  private exceptionVerdict(record: VerifierAgentRecord, challenge: string, message: string): PushVerdict {
    return { verdict: 'fail', failureReason: 'policy_violation', ...decidePushException(record.state, challenge, message, this.settings.engine.severityPolicy) };
  }
}

/** The attestation's completion a verdict stores with it. */
function completionOf(index: number, verdict: PushVerdict): PushCompletion {
  return { index, evaluation: verdict.verdict, failureReason: verdict.failureReason };
}
