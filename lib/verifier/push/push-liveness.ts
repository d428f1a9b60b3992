import type { Logger } from 'pino';
import { decidePushSilence, outageExcuseLimit, verifierOutageDeadline, verifierSilence, type VerifierOutage } from '../../attestation/push-failure-decision.js';
import type { SeverityPolicy } from '../../attestation/severity.js';
import { RoundRefused } from '../round-retrier.js';
import type { DatabaseOutage } from './database-outage.js';
import type { PushRepository } from './push-repository.js';
import type { PushSessions } from './push-sessions.js';
import type { SlowHashGate } from './slow-hash-gate.js';
import type { PushVerdictStore } from './push-verdict-store.js';

/**
 * Hashes per attesting agent a busy time may count as down: a fleet's storm lasts longer than one hash
 * each, since agents keep enrolling while it runs and a refused agent may be refused again when it comes
 * back (measured: 1,000 agents enrolled over 13 minutes on a loaded machine kept the gate refusing for 14,
 * about four times one hash each at its measured speed).
 */
const BUSY_CAP_FACTOR = 4;

export interface PushLivenessDeps {
  readonly repository: Pick<PushRepository, 'silentAgents' | 'agentWithVersion' | 'attestingAgentCount'>;
  readonly verdicts: PushVerdictStore;
  readonly sessions: PushSessions;
  /** Whether this process is judging the agent's evidence now (`PushAttestations.isJudging`). */
  readonly isJudging: (agentId: string) => boolean;
  /** When this process could not use its database; closed with the sweep. */
  readonly outage: Pick<DatabaseOutage, 'latest' | 'close'>;
  /** When this process's session hashes were backed up (`SlowHashGate.busy`), and how fast it hashes. */
  readonly slowHashes: Pick<SlowHashGate, 'busy' | 'hashingSeconds'>;
  readonly log: Logger;
  /** Now on the database's clock, which dated the agents' last attestations: the latest it may be (`DatabaseClock.latestNowMs`). */
  readonly now: () => number;
}

export interface PushLivenessSettings {
  readonly verifierId: string;
  /** Seconds of silence that fail a push agent. */
  readonly timeout: number;
  /** Extra seconds of silence allowed before an agent's first attestation (`decidePushSilence`). */
  readonly firstAttestationGrace: number;
  readonly severityPolicy: SeverityPolicy;
  /** Seconds between sweeps. */
  readonly everySeconds: number;
}

/**
 * Runs the push liveness sweep (`sweepSilence`) and the session clean-up every `everySeconds`, and
 * once at start: push agents that went silent while no verifier ran are failed as soon as one starts.
 * A sweep that fails (database away) is logged and tried at the next tick.
 */
export class PushLiveness {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** Start (unix seconds) of the verifier's silence last announced as sparing agents: said once per silence, not every sweep. */
  private announcedSilence: number | undefined;

  constructor(
    private readonly deps: PushLivenessDeps,
    private readonly settings: PushLivenessSettings,
  ) {}

  async start(): Promise<void> {
    await this.tick();
  }

  /** Runs one sweep now (tests, and the timer). */
  async tick(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.running = (async () => {
      try {
        await this.sweepSilence();
        await this.deps.sessions.sweep();
      } catch (error) {
        this.deps.log.error({ err: error }, 'push liveness sweep failed; trying again at the next tick');
      }
    })();
    await this.running;
    if (!this.closed) {
      this.timer = setTimeout(() => void this.tick(), this.settings.everySeconds * 1000);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
    this.deps.outage.close();
  }

  /**
   * Liveness (§10.5): every push agent of this verifier silent for the timeout is FAILED, through the
   * verdicts' write path. Reads the database, so it holds after a restart and across processes: the
   * write is conditional on the row read (its version), so of two processes failing the same agent at
   * once one stores (and announces) the failure and the other finds the row changed and moves on, and
   * an agent whose verdict landed meanwhile is not failed. Only the agent's row is read: silence is
   * judged from it alone, and from this process's own silence (`verifierSilence`: its latest database
   * outage, and the latest time its session hashes were backed up) — silence the verifier caused fails
   * nobody until the agents could come back.
   */
  private async sweepSilence(now = new Date(this.deps.now())): Promise<void> {
    const { repository, verdicts, log } = this.deps;
    const { verifierId, timeout, firstAttestationGrace, severityPolicy } = this.settings;
    const before = new Date(now.getTime() - timeout * 1000);
    const timing = { timeoutSeconds: timeout, firstAttestationGraceSeconds: firstAttestationGrace };
    const nowSeconds = now.getTime() / 1000;
    const outage = await this.ownSilence(now, timing);
    // Agents an outage still excuses are left out, so that after an outage they do not fill the batch
    // and hide others; their deadlines are past `now` (`decidePushSilence`).
    const spared =
      outage !== undefined && nowSeconds < verifierOutageDeadline(outage, timing)
        ? {
            attestedAfter: new Date(Math.max(outage.from - timeout, nowSeconds - outageExcuseLimit(outage, timing, true)) * 1000),
            enrolledAfter: new Date(Math.max(outage.from - timeout - firstAttestationGrace, nowSeconds - outageExcuseLimit(outage, timing, false)) * 1000),
            until: new Date(outage.to * 1000),
          }
        : undefined;
    if (spared !== undefined && outage !== undefined && this.announcedSilence !== outage.from) {
      this.announcedSilence = outage.from;
      log.warn(
        { since: new Date(outage.from * 1000).toISOString(), downSeconds: Math.round(outage.downSeconds), sparedUntil: new Date(verifierOutageDeadline(outage, timing) * 1000).toISOString() },
        'push agents silent while this verifier could not serve them (database outage or session-hash backlog) are not failed before sparedUntil',
      );
    }
    for (const agentId of await repository.silentAgents(verifierId, before, 500, spared)) {
      // Evidence this process is judging may pass: its verdict decides, not the silence before it.
      if (this.deps.isJudging(agentId)) continue;
      const found = await repository.agentWithVersion(agentId);
      if (found === undefined) continue;
      const { record, agentVersion } = found;
      const decision = decidePushSilence(record.state, record.enrolledAt, nowSeconds, timing, severityPolicy, outage);
      if (decision === undefined) continue;
      // Failed first by another process, attested, stopped, deleted or re-enrolled since the read: the next sweep reads it again.
      // Nor is the row taken over then: the process serving the agent keeps it (`PushVerdictStore.store`).
      let stored: boolean;
      try {
        ({ stored } = await verdicts.store(record, decision.state, decision.history, { expectedVersion: agentVersion }));
      } catch (error) {
        // Refused for its values, it would be refused at every sweep: the agents after it are still swept.
        if (!(error instanceof RoundRefused)) throw error;
        log.error({ agentId, failures: decision.history.failures }, 'push agent timed out, but the database refused its failure: not recorded');
        continue;
      }
      if (stored) {
        log.warn({ agentId }, 'push agent timed out');
      } else {
        log.debug({ agentId }, 'push agent changed since the silence sweep read it; not failed now');
      }
    }
  }

  /**
   * This process's silence (`verifierSilence`); a busy time counts as down for at most `BUSY_CAP_FACTOR`
   * hashes for every push agent attesting to the verifier, counted (one statement) only while that time
   * still excuses anyone.
   */
  private async ownSilence(now: Date, timing: { readonly timeoutSeconds: number; readonly firstAttestationGraceSeconds: number }): Promise<VerifierOutage | undefined> {
    const database = this.deps.outage.latest(now.getTime());
    const busy = this.deps.slowHashes.busy(now.getTime());
    const excusing = busy !== undefined && now.getTime() / 1000 < verifierOutageDeadline(busy, timing);
    const cap = excusing ? BUSY_CAP_FACTOR * this.deps.slowHashes.hashingSeconds(await this.deps.repository.attestingAgentCount(this.settings.verifierId)) : 0;
    return verifierSilence(database, excusing ? busy : undefined, timing.timeoutSeconds, cap);
  }
}
