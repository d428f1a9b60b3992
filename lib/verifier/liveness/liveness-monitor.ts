import { rmSync } from 'node:fs';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import type { Logger } from 'pino';
import { decideLiveness, INITIAL_LIVENESS, type LivenessCheck, type LivenessObservation, type LivenessState } from '../../attestation/liveness-decision.js';
import { isValueRefusal } from '../../db/database-errors.js';
import { httpsServiceUrl } from '../../http/keylime-client.js';
import { createHttpsAgent } from '../../http/keylime-client-tls.js';
import { freshNonce } from '../nonce.js';
import type { VerifierHealth } from '../verifier-health.js';
import type { LivenessChange, LivenessDecide, LivenessRecord, LivenessRepository } from './liveness-repository.js';
import { claimUnstoredFailures, ownListBeside, writeUnstoredFailures, type UnstoredFailure } from './unstored-failures-file.js';

export interface LivenessMonitorOptions {
  readonly repository: LivenessRepository;
  readonly verifierId: string;
  readonly clientTls: { readonly cert: string; readonly key: string };
  /** Seconds between checks of one node (the verifier's `quoteInterval`). */
  readonly intervalSeconds: number;
  readonly timeoutMs: number;
  /** Misses in a row before a node is `unreachable` (the verifier's `maxRetries`). */
  readonly maxMisses: number;
  /** Agent API version in the URL. */
  readonly apiVersion?: string;
  /** Told which nodes' verdicts wait to be stored: the verifier is not ready meanwhile. */
  readonly health: Pick<VerifierHealth, 'livenessWriteFailed' | 'livenessWriteSettled'>;
  readonly log: Logger;
  /**
   * Where the `failed` verdicts the database refuses are kept, written when the store fails (not at
   * close: a process killed or out of memory never closes), and where the next start takes them from to
   * store them first (the verifier's data folder). Each process keeps its own list beside it
   * (`<name>.<tag>.json`: processes may share the folder) and a start takes over every list there.
   * Without it they are lost when the process ends, and the real host's next good answer would make
   * such a node alive again.
   */
  readonly unstoredFailuresFile?: string;
}

/** A check's verdict the database did not take: stored again before the node is checked again. */
interface UnsavedVerdict {
  /** The enrolment the check was made of (`LivenessRecord.enrolment`). */
  readonly enrolment: string;
  readonly decide: LivenessDecide;
  /** What it decided from the state read before the check: for the log. */
  readonly decided: LivenessState;
  /** The failure stored in place of a verdict the database refused (`LivenessMonitor.giveUp`): refused too, nothing is left to store. */
  readonly inPlace?: true;
}

/** A kept failure's verdict: `failed` with its reason, whatever the row holds now (a failed row is left as it is by `saveState`). */
function failedAs(reason: string): LivenessDecide {
  return (stored) => ({ ...stored, status: 'failed', misses: 0, lastFailure: reason });
}

/** Largest liveness answer read: a few hundred bytes are expected. */
const MAX_ANSWER_BYTES = 16 * 1024;

/**
 * Checks the nodes without a TPM enrolled with this verifier, every `intervalSeconds`: a fresh nonce
 * to `GET /v<x>/liveness` over mTLS (the agent's registered certificate pinned), the engine's
 * `decideLiveness` on what came back, the state stored. Apart from the pull loop on purpose: no
 * quote, no policy, no lease; every process of a verifier id checks its rows (the checks are
 * idempotent: each decides from the stored state under its row lock). `checkNow` runs one sweep
 * (tests), `checkEnrolled` the first check of a node just enrolled. A verdict the database does not take is kept
 * (`unsaved`) and stored again at the next sweep, before (and instead of) a new check of that node, so
 * a wrong proof seen during a database fault is not lost to a later good answer. A verdict the
 * database refuses for its values (`isValueRefusal`: SQLSTATE class 22 or 23) is tried once more at
 * once and then given up (`giveUp`), as a pull or push verdict is: kept, it was refused at every sweep
 * and held `/health` not ready for good.
 */
export class LivenessMonitor {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private closed = false;
  private readonly unsaved = new Map<string, UnsavedVerdict>();
  /**
   * Nodes whose verdicts the database refused, a failure in their place too: not checked again here
   * until re-enrolled. Kept in `ownList` as well (the failure in their place), so that a restart stores
   * that failure, or gives it up again, before it checks the node: a good answer after a restart must
   * not make alive a node whose failure was lost.
   */
  private readonly givenUp = new Map<string, { readonly enrolment: string; readonly reason: string }>();
  private readonly firstChecks = new Set<Promise<void>>();
  /** This process's own list of kept failures, beside `unstoredFailuresFile`. */
  private readonly ownList: string | undefined;
  /** What `ownList` holds now (as written; undefined before the first write): rewritten only when the kept failures change. */
  private keptText: string | undefined;
  /** Lists taken over at start, removed once `ownList` holds what they held. */
  private claimed: string[] = [];

  /**
   * @throws Error when a list kept in the folder cannot be read as one this writes (nothing is checked
   *   rather than a lost failure forgotten).
   */
  constructor(private readonly options: LivenessMonitorOptions) {
    if (options.unstoredFailuresFile === undefined) return;
    this.ownList = ownListBeside(options.unstoredFailuresFile);
    const { failures: kept, claimed } = claimUnstoredFailures(options.unstoredFailuresFile, this.ownList);
    this.claimed = claimed;
    for (const failure of kept) {
      // Kept as any verdict the database did not take: stored before the node is checked again, the verifier not ready meanwhile.
      this.unsaved.set(failure.agentId, { enrolment: failure.enrolment, decide: failedAs(failure.reason), decided: { ...INITIAL_LIVENESS, status: 'failed', lastFailure: failure.reason } });
      options.health.livenessWriteFailed(failure.agentId, new Error(`a failed verdict kept by the last run (${options.unstoredFailuresFile}) is not stored yet`));
    }
    // What was taken over is now kept by this process alone.
    this.keepFailures();
  }

  start(): void {
    this.schedule();
  }

  /** One sweep over every enrolled node; resolves when all states are stored. */
  checkNow(): Promise<void> {
    this.sweeping ??= this.sweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  /**
   * The first check of a node just enrolled, of that node alone (`POST /liveness/{id}` waits for it): a
   * sweep waits for its slowest node, so one node that does not answer would hold every enrolment for
   * the whole request timeout, and a sweep already under way listed the nodes before this one.
   */
  checkEnrolled(agentId: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    const check = this.checkOne(agentId).finally(() => this.firstChecks.delete(check));
    this.firstChecks.add(check);
    return check;
  }

  /** Stops checking once the running sweep and first checks (every check of them) are done, and tries once more to store kept verdicts. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.allSettled([this.sweeping, ...this.firstChecks]);
    await this.storeUnsaved();
    const keeping = this.options.unstoredFailuresFile !== undefined;
    for (const [agentId, verdict] of this.unsaved) {
      const kept = verdict.decided.status === 'failed' && keeping;
      this.options.log.error({ agentId, status: verdict.decided.status, reason: verdict.decided.lastFailure }, kept ? 'liveness failure not stored: kept in the data folder for the next start' : 'liveness verdict never stored: the verifier closed');
    }
  }

  /**
   * Writes the `failed` verdicts now waiting to be stored, and the failures in place of the nodes given
   * up (`givenUp`), to this process's own list (`ownList`) when they changed (the file goes when none wait), so that the next start stores them even after this
   * process is killed. A file that cannot be written is logged with what it would have kept: the
   * verdicts still wait in memory (the verifier is not ready meanwhile) and the next store tries again.
   */
  private keepFailures(): void {
    const file = this.ownList;
    if (file === undefined) return;
    const failures: UnstoredFailure[] = [];
    for (const [agentId, verdict] of this.unsaved) {
      if (verdict.decided.status === 'failed') failures.push({ agentId, enrolment: verdict.enrolment, reason: verdict.decided.lastFailure ?? 'failed liveness check' });
    }
    for (const [agentId, { enrolment, reason }] of this.givenUp) {
      if (!this.unsaved.has(agentId)) failures.push({ agentId, enrolment, reason });
    }
    const text = JSON.stringify(failures);
    if (text === this.keptText) return;
    try {
      writeUnstoredFailures(file, failures);
      this.keptText = text;
    } catch (error) {
      this.options.log.error({ err: error, failures }, 'liveness failures not stored could not be kept in the data folder either: a killed process loses them');
      return;
    }
    this.removeClaimed();
  }

  /** Removes the lists taken over at start, once this process's own list holds what they held. */
  private removeClaimed(): void {
    for (const list of this.claimed) {
      try {
        rmSync(list, { force: true });
      } catch (error) {
        // Left, it only makes the next start store those failures again (storing a failure twice changes nothing).
        this.options.log.warn({ err: error, list }, 'a liveness failures list taken over could not be removed');
      }
    }
    this.claimed = [];
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.checkNow()
        .catch((error: unknown) => this.options.log.error({ err: error }, 'liveness sweep failed'))
        .finally(() => this.schedule());
    }, this.options.intervalSeconds * 1000);
  }

  /** Waits for every check it started, even when one fails, so that two sweeps never overlap. */
  private async sweep(): Promise<void> {
    await this.storeUnsaved();
    const records = await this.options.repository.listFor(this.options.verifierId);
    const checks = records.filter((record) => record.state.status !== 'failed' && !this.unsaved.has(record.agentId) && this.givenUp.get(record.agentId)?.enrolment !== record.enrolment).map((record) => this.check(record));
    const failure = (await Promise.allSettled(checks)).find((result) => result.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
  }

  private async checkOne(agentId: string): Promise<void> {
    const record = await this.options.repository.find(agentId);
    if (record === undefined || record.verifierId !== this.options.verifierId || record.state.status === 'failed' || this.givenUp.get(agentId)?.enrolment === record.enrolment) return;
    await this.check(record);
  }

  private async check(record: LivenessRecord): Promise<void> {
    // Checked only when not given up for this enrolment: a re-enrolment ends an earlier one's give-up.
    if (this.givenUp.delete(record.agentId)) this.keepFailures();
    const nonce = freshNonce();
    const observation = await this.ask(record, nonce);
    // Dated on the database's clock, less the time since the answer (monotonic): processes whose clocks
    // differ share the stored last answer, and one ahead kept a dead node alive, one behind lost a blip's grace.
    const observedAt = performance.now();
    const check = (databaseNow: number): LivenessCheck => ({
      agentId: record.agentId,
      mode: record.mode,
      proofKey: record.proofKey === null ? null : Buffer.from(record.proofKey, 'hex'),
      nonce,
      now: Math.floor(databaseNow - (performance.now() - observedAt) / 1000),
      maxMisses: this.options.maxMisses,
      intervalSeconds: this.options.intervalSeconds,
    });
    const decide: LivenessDecide = (stored, databaseNow) => decideLiveness(stored, check(databaseNow), observation);
    // What it decided is logged only: judged on this process's clock.
    await this.store(record.agentId, { enrolment: record.enrolment, decide, decided: decide(record.state, Date.now() / 1000) });
  }

  private async storeUnsaved(): Promise<void> {
    await Promise.allSettled([...this.unsaved].map(([agentId, verdict]) => this.store(agentId, verdict)));
  }

  /**
   * Stores a verdict, or keeps it (logged at error with what it decided, once) to be stored again; one
   * the database refuses for its values twice is given up (`giveUp`).
   */
  private async store(agentId: string, verdict: UnsavedVerdict): Promise<void> {
    let change: LivenessChange | undefined;
    try {
      change = await this.saveState(agentId, verdict);
    } catch (error) {
      if (isValueRefusal(error)) {
        await this.giveUp(agentId, verdict, error);
        return;
      }
      // Logged when first kept, not at every retry: a long outage would log every node at every sweep.
      if (!this.unsaved.has(agentId)) {
        this.options.log.error({ err: error, agentId, status: verdict.decided.status, reason: verdict.decided.lastFailure }, 'liveness verdict not stored; kept to be stored again');
      }
      this.unsaved.set(agentId, verdict);
      this.keepFailures();
      this.options.health.livenessWriteFailed(agentId, error);
      return;
    }
    this.unsaved.delete(agentId);
    this.keepFailures();
    this.options.health.livenessWriteSettled(agentId);
    // Logged from what the locked update changed, not from the state read: another process may have stored a state since.
    if (change !== undefined) {
      this.options.log.info({ agentId, from: change.from, status: change.to, reason: change.reason }, 'liveness status changed');
    }
  }

  /** `saveState`, tried once more at once when the database refuses the verdict's values (a unique row raced, say): refused twice, it throws that refusal. */
  private async saveState(agentId: string, verdict: UnsavedVerdict): Promise<LivenessChange | undefined> {
    try {
      return await this.options.repository.saveState(agentId, verdict.enrolment, verdict.decide);
    } catch (error) {
      if (!isValueRefusal(error)) throw error;
      this.options.health.livenessWriteFailed(agentId, error);
      return await this.options.repository.saveState(agentId, verdict.enrolment, verdict.decide);
    }
  }

  /**
   * A verdict the database refused for its values twice: the same values would be refused at every
   * sweep, which held `/health` not ready (and, for a `failed` one, the unstored failures file) for
   * good. It is no longer kept; the node fails closed: `failed` with `internal.verifier.exception` is
   * stored in its place (kept and retried as any verdict while the database cannot be reached). When
   * that is refused too, nothing is stored: the node is not checked again by this process until it is
   * re-enrolled (a later good answer must not make alive a node whose failure was lost), its stored
   * state shows (an `alive` whose last answer is older than the freshness bound reads `pending`,
   * stale), and the log says to fail it by hand.
   */
  private async giveUp(agentId: string, verdict: UnsavedVerdict, error: unknown): Promise<void> {
    const { log, health } = this.options;
    const sqlState = String((error as { code?: unknown }).code);
    this.unsaved.delete(agentId);
    this.keepFailures();
    health.livenessWriteSettled(agentId);
    if (verdict.inPlace === true) {
      this.givenUp.set(agentId, { enrolment: verdict.enrolment, reason: verdict.decided.lastFailure ?? 'failed liveness check' });
      this.keepFailures();
      log.error(
        { err: error, agentId, status: verdict.decided.status, reason: verdict.decided.lastFailure },
        'the database refused the liveness failure stored in place of a refused verdict too: nothing stored, the node is not checked again by this process until re-enrolled; delete it or fix the database',
      );
      return;
    }
    log.error({ err: error, agentId, status: verdict.decided.status, reason: verdict.decided.lastFailure }, 'the database refused the liveness verdict for its values twice: not tried again, the node failed in its place');
    const reason = `internal.verifier.exception: the check's verdict could not be stored: the database refused its values (SQLSTATE ${sqlState})`;
    await this.store(agentId, { enrolment: verdict.enrolment, decide: failedAs(reason), decided: { ...verdict.decided, status: 'failed', misses: 0, lastFailure: reason }, inPlace: true });
  }

  /** One request; any transport or format problem is `no_answer` (the engine decides what it means). */
  private ask(record: LivenessRecord, nonce: string): Promise<LivenessObservation> {
    let url: URL;
    let agent: HttpsAgent;
    try {
      url = new URL(`${httpsServiceUrl(record.ip, record.port)}/v${this.options.apiVersion ?? '2.6'}/liveness?nonce=${nonce}`);
      agent = createHttpsAgent({ pinnedServerCert: record.mtlsCert, cert: this.options.clientTls.cert, key: this.options.clientTls.key });
    } catch (error) {
      // An address or certificate stored before the route checked them: a miss, not a check that throws and stores nothing.
      return Promise.resolve({ kind: 'no_answer', message: `cannot ask ${record.ip}: ${error instanceof Error ? error.message : String(error)}` });
    }
    return new Promise((resolve) => {
      // The request's idle timeout never fires for a node that drips its answer a byte at a time, and one
      // check that never ends would hold every later sweep (they wait for each other): a whole-exchange deadline too.
      const deadline = setTimeout(() => {
        done({ kind: 'no_answer', message: `no complete answer within ${this.options.timeoutMs} ms` });
        request.destroy();
      }, this.options.timeoutMs);
      const done = (observation: LivenessObservation): void => {
        clearTimeout(deadline);
        agent.destroy();
        resolve(observation);
      };
      // One request per check: `Connection: close`, so no idle socket keeps the agent's server from closing.
      const request = httpsRequest(url, { agent, method: 'GET', timeout: this.options.timeoutMs, headers: { connection: 'close' } }, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            request.destroy(new Error(`liveness answer larger than ${MAX_ANSWER_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          if (response.statusCode !== 200) {
            done({ kind: 'no_answer', message: `HTTP ${String(response.statusCode)}` });
            return;
          }
          try {
            const envelope = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { results?: unknown };
            done({ kind: 'answer', results: envelope.results });
          } catch {
            done({ kind: 'no_answer', message: 'the answer is not JSON' });
          }
        });
        response.on('error', (error) => done({ kind: 'no_answer', message: error.message }));
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
      request.on('error', (error) => done({ kind: 'no_answer', message: error.message }));
      request.end();
    });
  }
}
