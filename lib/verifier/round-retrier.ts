import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HistoryRow } from '../attestation/history-row.js';
import { isValueRefusal } from '../db/database-errors.js';
import { backoffDelayMs, type ExponentialBackoff } from '../timing/backoff.js';
import type { VerifierAgentRepository } from './verifier-agent-repository.js';
import type { VerifierHealth } from './verifier-health.js';

/** `RoundRetrier.store`'s answer for a round an earlier attempt stored with its COMMIT's answer lost: the row version it left is not known. */
export const STORED_UNSEEN: unique symbol = Symbol('stored unseen');

export interface RoundRetrierOptions {
  /** Where a round id is looked for (`VerifierAgentRepository.holdsRound`). */
  readonly rounds: Pick<VerifierAgentRepository, 'holdsRound'>;
  /** The wait before each retry. */
  readonly backoff: ExponentialBackoff;
  /** Told of each failed write and of each round settled (the round object is its mark): a round waiting to be stored makes the verifier not ready. */
  readonly health: Pick<VerifierHealth, 'writeFailed' | 'writeSettled'>;
  readonly log: Logger;
  /** Counts each failed write (`/metrics`). */
  readonly onWriteFailed?: () => void;
}

/**
 * `RoundRetrier.store`'s rejection for a round the database refused for its values (`isValueRefusal`:
 * a constraint, a value out of range) when written alone: the same round would be refused again, so
 * it is not retried. The message names only the SQLSTATE (the database's text may quote the values),
 * so that a failure recorded in the round's place can carry it; the database's error is the cause.
 */
export class RoundRefused extends Error {
  constructor(readonly sqlState: string, options: { readonly cause: unknown }) {
    super(`the database refused the verdict's values (SQLSTATE ${sqlState})`, options);
    this.name = 'RoundRefused';
  }
}

/** One round to store, as the retrier sees it. */
export interface RetriedRound<Result> {
  readonly agentId: string;
  /** The round's history row: a round without one leaves nothing to look for, and is written again. */
  readonly history: HistoryRow | undefined;
  /**
   * One write of the round with `roundId` as its `RoundWrite.roundId` (`retry`: after a failed one,
   * in a statement of its own). Resolves to what the write did; rejects when it failed.
   */
  send(roundId: string, retry: boolean): Promise<Result>;
  /** Whether `result` says the round is stored. */
  stored(result: Result): boolean;
}

/**
 * A round's verdict written until it is stored or refused — the one check, for the pull loop
 * (`VerdictStore`) and the push model (`PushVerdictWriter`), that a retried write is never applied
 * twice. The round gets its id before its first write and keeps it on every retry. A write that fails
 * is never taken as done: the verdict is kept, the verifier reads not ready (`VerifierHealth`), and it
 * is written again after a back-off. Its COMMIT may have landed with only the answer lost, so a retry
 * first asks the history for the round id: found, the round is stored (`STORED_UNSEEN`), not written a
 * second time nor refused by its own earlier write.
 *
 * A write the database refuses for its values (`isValueRefusal`, SQLSTATE class 22 or 23) is tried
 * again once, alone — its first write may have shared a batch with another round's refused values —
 * and when that one is refused too, the round is not tried again: `store` rejects with `RoundRefused`
 * and the verifier reads ready again. Tried for ever, one such round held `/health` not ready and its
 * agent unjudged for good. The caller fails closed (a failure recorded in its place, or nothing
 * stored and the agent judged again later). Any other error is retried with back-off until stored.
 */
export class RoundRetrier {
  private closed = false;
  /** Ends each running back-off (`close`). */
  private readonly wakes = new Set<() => void>();

  constructor(private readonly options: RoundRetrierOptions) {}

  /**
   * Writes `round` until a write answers: resolves to that answer, or `STORED_UNSEEN`. Once closed, a
   * failed write is not tried again: it resolves `STORED_UNSEEN` when the history holds the round (a
   * stored FAIL must still be announced) and otherwise rejects with the write's error — not stored.
   * A retry the database refuses for its values rejects with `RoundRefused` — not stored.
   */
  async store<Result>(round: RetriedRound<Result>): Promise<Result | typeof STORED_UNSEEN> {
    const { health, log } = this.options;
    // 122 random bits, in the 32 characters `round_id` holds: randomUUID draws from a cached entropy
    // pool (0.6 µs against randomBytes(16)'s 2 µs per round).
    const roundId = randomUUID().replace(/-/g, '');
    for (let failures = 0; ; failures += 1) {
      try {
        // The first write goes straight out: only a retry has an earlier attempt to look for.
        const result = failures === 0 ? await round.send(roundId, false) : await this.attempt(round, roundId);
        health.writeSettled(round);
        return result;
      } catch (error) {
        health.writeFailed(round, error);
        this.options.onWriteFailed?.();
        if (failures > 0 && isValueRefusal(error)) {
          // A unique violation may be this round's own earlier COMMIT, landed after the retry first looked.
          const storedUnseen = await this.storedBefore(round, roundId).catch(() => undefined);
          if (storedUnseen !== undefined) {
            health.writeSettled(round);
            if (storedUnseen) return STORED_UNSEEN;
            log.error({ err: error, agentId: round.agentId, attempt: failures + 1 }, 'the database refused the verdict for its values: not tried again');
            throw new RoundRefused(String((error as { code?: unknown }).code), { cause: error });
          }
        }
        if (this.closed) {
          if (await this.storedBefore(round, roundId).catch(() => false)) {
            health.writeSettled(round);
            return STORED_UNSEEN;
          }
          throw error;
        }
        const waitMs = backoffDelayMs(failures + 1, this.options.backoff);
        log.error({ err: error, agentId: round.agentId, attempt: failures + 1, waitMs }, 'could not store the verdict; keeping it and trying again');
        await this.backOff(waitMs);
      }
    }
  }

  /**
   * Ends every back-off and retries no more: each waiting round is sent once more (refused if its writer
   * is closed too, as the push writer's is) and then only looked for in the history.
   */
  close(): void {
    this.closed = true;
    for (const wake of [...this.wakes]) wake();
  }

  /**
   * One retried write of the round. It first asks whether an earlier attempt committed with its answer
   * lost, and asks again when it is refused (its row moved, its evidence taken): that earlier COMMIT,
   * its connection already lost, may have been held at the server past the first question and landed
   * while this write waited on the agent's row.
   */
  private async attempt<Result>(round: RetriedRound<Result>, roundId: string): Promise<Result | typeof STORED_UNSEEN> {
    if (await this.storedBefore(round, roundId)) return STORED_UNSEEN;
    const result = await round.send(roundId, true);
    if (!round.stored(result) && (await this.storedBefore(round, roundId))) return STORED_UNSEEN;
    return result;
  }

  private async storedBefore(round: RetriedRound<unknown>, roundId: string): Promise<boolean> {
    return round.history !== undefined && (await this.options.rounds.holdsRound(round.agentId, roundId));
  }

  private backOff(waitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakes.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, waitMs);
      this.wakes.add(wake);
    });
  }
}
