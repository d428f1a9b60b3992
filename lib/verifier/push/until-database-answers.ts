import type { Logger } from 'pino';
import { isTransientDatabaseError } from '../../db/database-errors.js';
import { abortableDelay } from '../../timing/abortable-delay.js';
import { backoffDelayMs } from '../../timing/backoff.js';
import type { VerifierHealth } from '../verifier-health.js';
import type { VerifierMetrics } from '../verifier-metrics.js';
import { VERDICT_RETRY_BACKOFF } from './push-verdict-writer.js';

/** Whose verdict waits, and what ends the wait. */
export interface VerdictWait {
  readonly agentId: string;
  /** The verdict writer's close (`PushVerdictWriter.closed`): once aborted, tried once more, then its error thrown. */
  readonly closed: AbortSignal;
  /** Told while the statement fails, as the writer tells it of a failed write: the verifier reads not ready. */
  readonly health: Pick<VerifierHealth, 'writeFailed' | 'writeSettled'>;
  readonly log: Logger;
  /** The statement, as the log names it. */
  readonly what: string;
  /** An error that is the statement's answer (a refusal), thrown at once. */
  readonly isAnswer?: (error: unknown) => boolean;
  /** Counts a wait ended by an error that is not the database's absence (`/metrics`). */
  readonly metrics?: Pick<VerifierMetrics, 'verdictWaitGivenUp'> | undefined;
}

/**
 * A statement a push verdict needs before the verdict writer stores it (the agent's row read again,
 * the row taken over), run again while it throws for want of the database — a restart, a failover, a
 * blip (`isTransientDatabaseError`) — after the back-off the writer retries a verdict's write with,
 * until it answers or the writer is closed. Such an error never stands for an answer: taken for one,
 * it failed the agent for the verifier's outage (`internal.verifier.exception`), a healthy agent too.
 * Any other error (a constraint, a row that cannot be read, a bug) fails the same way however often
 * the statement runs: it is logged, counted and thrown at once, to the caller's fail-closed path. Before, it was
 * tried for ever, the PATCH held and `GET /health` not ready all along.
 */
export async function untilDatabaseAnswers<T>(run: () => Promise<T>, wait: VerdictWait): Promise<T> {
  const { agentId, closed, health, log } = wait;
  let failures = 0;
  try {
    for (;;) {
      try {
        return await run();
      } catch (error) {
        if (wait.isAnswer?.(error) === true || closed.aborted) throw error;
        if (!isTransientDatabaseError(error)) {
          log.error({ err: error, agentId, attempt: failures + 1 }, `${wait.what} failed, and not for want of the database: not tried again`);
          wait.metrics?.verdictWaitGivenUp();
          throw error;
        }
        failures += 1;
        health.writeFailed(wait, error);
        const waitMs = backoffDelayMs(failures, VERDICT_RETRY_BACKOFF);
        log.error({ err: error, agentId, attempt: failures, waitMs }, `${wait.what} failed; the verdict is kept and it is tried again`);
        // Closed meanwhile: tried once more, then thrown.
        await abortableDelay(waitMs, closed).catch(() => undefined);
      }
    }
  } finally {
    if (failures > 0) health.writeSettled(wait);
  }
}
