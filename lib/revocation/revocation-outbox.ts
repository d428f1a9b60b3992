import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { fixedStatement, statementsOn, type Statements } from '../db/fixed-statement.js';
import { backoffDelayMs, type ExponentialBackoff } from '../timing/backoff.js';
import { beforeDeadline } from '../timing/before-deadline.js';

/** One undelivered notice to one receiver, as stored. */
export interface OutboxNotice {
  /** `webhook <url>` or `target <name>` (`RevocationNotifier.outboxRows`). */
  readonly receiver: string;
  readonly agentId: string;
  /** The signed envelope's JSON. */
  readonly envelope: string;
}

/** What one delivery came to: taken, refused for good (4xx: not retried), or no such receiver here. */
export type OutboxDelivery = 'delivered' | 'refused' | 'unknown_receiver';

export interface RevocationOutboxOptions {
  readonly knex: Knex;
  /**
   * Delivers one notice; throws when it is worth trying again (a 5xx, no answer, the receiver's database
   * down). `deadline` aborts when the delivery's time is up: a delivery still running then is retried.
   */
  readonly deliver: (notice: OutboxNotice, deadline: AbortSignal) => Promise<OutboxDelivery>;
  /** The longest one delivery may take, its answer included (default 30 s, under the lease). */
  readonly deliveryTimeoutMs?: number;
  /** Waits between the attempts of one row (default 1 s doubling to 5 min). */
  readonly backoff?: Partial<ExponentialBackoff>;
  /** How often the table is read for rows due (default 5 s): rows another process left, retries due. */
  readonly pollMs?: number;
  /** How long a claimed row is hidden from other processes while it is delivered (default 60 s, over the delivery timeout). */
  readonly leaseSeconds?: number;
  readonly log: Logger;
}

export const OUTBOX_BACKOFF: ExponentialBackoff = { initialDelayMs: 1000, maxDelayMs: 5 * 60_000 };

/**
 * Deliveries in flight at once: each is independent (a row claimed is delivered without waiting for
 * the others of its read), so a receiver that never answers holds only its own rows, each until its
 * deadline, never the rows behind them.
 */
const MAX_IN_FLIGHT = 16;

/** Inserts the notices of a batch: runs in the verdicts' own transaction. */
const RECORD_NOTICES = fixedStatement(
  'verifier_record_revocations',
  `insert into verifier_revocation_outbox (receiver, agent_id, envelope)
select t.receiver, t.agent_id, t.envelope from jsonb_to_recordset(?::jsonb) as t(receiver text, agent_id text, envelope text)`,
);

/**
 * Rows due, claimed: their `next_attempt_at` moves a lease into the future, so another process (or a
 * second sweep here) skips them while they are delivered; `skip locked` lets two processes claim at
 * once without waiting on each other. A process that dies while delivering leaves its rows to be
 * claimed again when the lease ends: a receiver may get a notice twice, never none.
 */
const CLAIM_DUE = `update verifier_revocation_outbox o set next_attempt_at = now() + make_interval(secs => ?)
where o.id in (select id from verifier_revocation_outbox where next_attempt_at <= now() order by id limit ? for update skip locked)
returning o.id, o.receiver, o.agent_id, o.envelope, o.attempts`;

/**
 * The durable part of revocation delivery: a notice to a configured receiver is a row here from the
 * transaction that stores the failing verdict until the receiver takes it (or refuses it for good, a
 * 4xx), retried with capped exponential back-off for as long as that takes — across a receiver's
 * outage and a verifier's restart (any process on the database picks the rows up). Works on PGlite
 * (one process) as on PostgreSQL.
 */
export class RevocationOutbox {
  private readonly backoff: ExponentialBackoff;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** A wake-up came while a sweep ran: another follows it. */
  private again = false;
  private running = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** The last sweep stopped with every slot taken: the next delivery to end wakes another. */
  private full = false;
  /** Receivers this process has warned it does not have (once each: their rows stay and come round every 5 min). */
  private readonly unknownWarned = new Set<string>();
  /**
   * Rows whose try has not ended, one that outlived its deadline included (an in-process target ignoring
   * the signal): such a row is not tried again until it ends, so one process never hands a receiver the
   * same notice twice at once, nor piles up calls to a receiver that hangs.
   */
  private readonly unsettled = new Set<string>();

  constructor(private readonly options: RevocationOutboxOptions) {
    this.backoff = { ...OUTBOX_BACKOFF, ...options.backoff };
  }

  /** Inserts `notices` through `run` (the caller's transaction); nothing is run for none. */
  static async record(run: Statements, notices: readonly OutboxNotice[]): Promise<void> {
    if (notices.length === 0) return;
    await run(RECORD_NOTICES, [JSON.stringify(notices.map((n) => ({ receiver: n.receiver, agent_id: n.agentId, envelope: n.envelope })))]);
  }

  /** `record` in a transaction of its own. */
  recordNow(notices: readonly OutboxNotice[]): Promise<void> {
    return RevocationOutbox.record(statementsOn(this.options.knex, false), notices);
  }

  /** Sweeps now (rows a previous process left), then every `pollMs` and on each `wake`. */
  start(): void {
    this.running = true;
    this.wake();
  }

  /** Sweeps at once (a notice was just recorded). */
  wake(): void {
    if (!this.running) return;
    if (this.sweeping !== undefined) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.sweeping = this.sweepUntilDone().finally(() => {
      this.sweeping = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      } else if (this.running) {
        this.timer = setTimeout(() => this.wake(), this.options.pollMs ?? 5000).unref();
      }
    });
  }

  /**
   * Stops sweeping and waits for the sweep and the deliveries in progress, each within its deadline;
   * undelivered rows stay for the next process.
   */
  async close(): Promise<void> {
    this.running = false;
    this.again = false;
    clearTimeout(this.timer);
    await this.sweeping;
    await Promise.allSettled([...this.inFlight]);
  }

  /** How many notices wait for delivery (the metric `ironlime_verifier_undelivered_revocations`). */
  async undelivered(): Promise<number> {
    const row = (await this.options.knex('verifier_revocation_outbox').count({ n: '*' }).first()) as { n: string | number } | undefined;
    return Number(row?.n ?? 0);
  }

  /** Claims rows due while a slot is free and starts their deliveries; does not wait for them. */
  private async sweepUntilDone(): Promise<void> {
    try {
      while (this.running) {
        const room = MAX_IN_FLIGHT - this.inFlight.size;
        this.full = room <= 0;
        if (this.full) return;
        const claimed = await this.claim(room);
        for (const row of claimed) this.startDelivery(row);
        if (claimed.length < room) return;
      }
    } catch (error) {
      this.options.log.error({ err: error }, 'revocation outbox: could not read the notices due; trying again later');
    }
  }

  private async claim(limit: number): Promise<ClaimedRow[]> {
    const result = (await this.options.knex.raw(CLAIM_DUE, [this.options.leaseSeconds ?? 60, limit])) as { rows: ClaimedRow[] } | ClaimedRow[];
    return Array.isArray(result) ? result : result.rows;
  }

  private startDelivery(row: ClaimedRow): void {
    const delivery = this.deliver(row).finally(() => {
      this.inFlight.delete(delivery);
      if (this.full) {
        this.full = false;
        this.wake();
      }
    });
    this.inFlight.add(delivery);
  }

  private async deliver(row: ClaimedRow): Promise<void> {
    const notice: OutboxNotice = { receiver: row.receiver, agentId: row.agent_id, envelope: row.envelope };
    const attempts = row.attempts + 1;
    const table = (): Knex.QueryBuilder => this.options.knex('verifier_revocation_outbox').where({ id: row.id });
    try {
      let outcome: OutboxDelivery;
      try {
        if (this.unsettled.has(row.id)) throw new Error('its previous try outlived its deadline and is still running');
        const deadline = AbortSignal.timeout(this.options.deliveryTimeoutMs ?? 30_000);
        const work = this.options.deliver(notice, deadline);
        this.unsettled.add(row.id);
        const settled = (): boolean => this.unsettled.delete(row.id);
        void work.then(settled, settled);
        outcome = await beforeDeadline(work, deadline);
      } catch (error) {
        const delayMs = backoffDelayMs(attempts, this.backoff);
        this.options.log.warn({ err: error, to: row.receiver, agentId: row.agent_id, attempts, retryInMs: delayMs }, 'revocation notice not delivered: kept, retrying');
        await table().update({ attempts, next_attempt_at: this.fromNow(delayMs), last_error: String(error).slice(0, 1000) });
        this.retryIn(delayMs);
        return;
      }
      if (outcome === 'unknown_receiver') {
        // Configured in another process, or removed from this one's configuration: left to whoever has it
        // (an operator deletes the rows of a receiver gone for good, docs/verifier.md). Warned once per receiver.
        const first = !this.unknownWarned.has(row.receiver);
        this.unknownWarned.add(row.receiver);
        this.options.log[first ? 'warn' : 'debug']({ to: row.receiver, agentId: row.agent_id }, 'revocation notice for a receiver this process does not have: left in the outbox');
        await table().update({ next_attempt_at: this.fromNow(this.backoff.maxDelayMs) });
        return;
      }
      if (outcome === 'refused') this.options.log.warn({ to: row.receiver, agentId: row.agent_id }, 'revocation notice refused: not retried');
      else this.options.log.info({ to: row.receiver, agentId: row.agent_id, attempts }, 'revocation notice delivered');
      await table().delete();
    } catch (error) {
      // The row could not be updated: its lease ends and it is claimed again.
      this.options.log.error({ err: error, to: row.receiver, agentId: row.agent_id }, 'revocation outbox: could not update a notice after its delivery');
    }
  }

  /** A sweep when the retry is due, if sooner than the next poll. */
  /**
   * `delayMs` after now on the database's clock, which the claims compare `next_attempt_at` with: a
   * process whose clock ran behind the database's set a retry that was already due, one ahead delayed it.
   */
  private fromNow(delayMs: number): Knex.Raw {
    return this.options.knex.raw('now() + make_interval(secs => ?)', [delayMs / 1000]);
  }

  private retryIn(delayMs: number): void {
    if (delayMs >= (this.options.pollMs ?? 5000)) return;
    setTimeout(() => this.wake(), delayMs).unref();
  }
}

interface ClaimedRow {
  readonly id: string;
  readonly receiver: string;
  readonly agent_id: string;
  readonly envelope: string;
  readonly attempts: number;
}
