import type pg from 'pg';
import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import { backoffDelayMs, withJitter, type ExponentialBackoff } from '../timing/backoff.js';
import { BEAT_GRACE_MS, PROCESS_LOCK_CLASS, randomLockKey } from './process-lock-sql.js';

/**
 * Waits between attempts to take the lock again after the first one, immediate, failed (jittered:
 * after a database restart every process tries at once). Capped low: until its lock is back a process
 * judges nobody dead by lock.
 */
const RETAKE_BACKOFF: ExponentialBackoff = { initialDelayMs: 250, maxDelayMs: 3000 };

/**
 * How long the lock must have been held before this process judges others by theirs (`settledKey`):
 * after an outage that ended every session (a crash restart of the server keeps its instance), every
 * live process has had a beat's grace to beat again before anybody judges it.
 */
const SETTLE_MS = BEAT_GRACE_MS;

/** Random keys tried before an attempt gives up (a collision with a held key is one in 2³¹ per try). */
const KEY_TRIES = 8;

/** How long `close` waits for the lock connection to end (a black-holed socket would never say so). */
const CLOSE_WAIT_MS = 2000;

/** PostgreSQL `undefined_object`: a setting this server version does not know. */
const UNDEFINED_OBJECT = '42704';

export interface ProcessLockOptions {
  /** A new connection outside the pool, not yet connected (`Database.newSessionClient`). */
  readonly newClient: () => pg.Client;
  readonly log: Logger;
}

/** What the lock tells its process. */
export interface ProcessLockEvents {
  /** The lock was taken again after it was lost or could not be taken at first: beat its key. */
  readonly retaken: () => void;
  /** The lock was lost while the process lives: beat without a key at once. */
  readonly lost: () => void;
}

/**
 * A verifier process's liveness signal on PostgreSQL: a session advisory lock
 * `pg_try_advisory_lock(PROCESS_LOCK_CLASS, key)` held, for the whole life of the process, on a
 * connection of its own outside the pool. When the process dies (SIGKILL, crash) the OS closes that
 * socket and PostgreSQL releases the lock at once; a live process keeps it however slow its event
 * loop is, since nothing has to be sent to keep it. The key goes into the process's beat
 * (`VerifierProcessRepository.beat`), where the other processes look it up.
 *
 * When the connection drops while the process lives (database restart, network cut, the session
 * terminated), `key` turns null, `lost` is called so the caller beats without a key, and the lock is
 * taken again at once, then with jittered back-off (the same key first); then `retaken` is called so
 * the caller beats the key again. The process keeps beating meanwhile, so the others do not judge it
 * dead (`deadByLockSql`). A lock connection that cannot be opened at all leaves the process judged by
 * its heartbeat and leases, as before.
 */
export class ProcessLock {
  private client: pg.Client | undefined;
  private heldKey: number | null = null;
  /** The key last held, tried first when the lock is taken again. */
  private lastKey: number | undefined;
  /** Counts the times the lock was taken (`lost` ends only the session of the generation it names). */
  private taken = 0;
  /** When the lock was last taken (monotonic ms). */
  private takenAt = 0;
  /** Attempts that failed, and losses soon after a take, since the lock was last held for a while. */
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private throughPooler = false;
  private events: ProcessLockEvents = { retaken: () => undefined, lost: () => undefined };

  constructor(private readonly options: ProcessLockOptions) {}

  /** The key of the lock this process holds now; null while it holds none. */
  get key(): number | null {
    return this.heldKey;
  }

  /** Which taking of the lock `key` belongs to: compare before ending a session judged lost. */
  get generation(): number {
    return this.taken;
  }

  /** The key, once the lock has been held for `SETTLE_MS`: the key this process judges others by. */
  get settledKey(): number | null {
    return this.heldKey !== null && performance.now() - this.takenAt >= SETTLE_MS ? this.heldKey : null;
  }

  /** The database is reached through a pooler: no lock is taken, ever. */
  get pooled(): boolean {
    return this.throughPooler;
  }

  /**
   * Takes the lock; on failure keeps trying in the background (not behind a pooler: see `attempt`).
   * Resolves whether the lock is held now.
   */
  async take(events: ProcessLockEvents): Promise<boolean> {
    this.events = events;
    const outcome = await this.attempt();
    if (outcome === 'failed') {
      this.failures = 1;
      this.scheduleRetake();
    }
    return outcome === 'taken';
  }

  /**
   * The lock's session of `generation` is gone though its connection said nothing (seen in pg_locks by
   * the dead-process watch): end it and take the lock again. A generation that is no longer the current
   * one was already lost and taken again: the session holding the lock now stays.
   */
  lost(generation: number): void {
    if (this.client !== undefined && generation === this.taken) {
      this.dropped(this.client, new Error('the process lock is no longer held by its session'));
    }
  }

  /** Ends the lock's connection, which releases the lock (clean shutdown, after the leases are released). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    this.heldKey = null;
    if (client !== undefined) {
      let waited: NodeJS.Timeout | undefined;
      await Promise.race([
        client.end().catch(() => undefined),
        new Promise<void>((resolve) => {
          waited = setTimeout(resolve, CLOSE_WAIT_MS);
        }),
      ]);
      clearTimeout(waited);
    }
  }

  /**
   * Opens a connection and takes the lock on it (the last key first, then random ones). Not through a
   * pooler (`pooled`): a session lock taken through pgbouncer belongs to a server session the pooler
   * shares and closes when it likes, so a live process would look dead whenever that session closes, and
   * a dead one alive while it stays open. The process then runs without a lock, as on PGlite.
   */
  private async attempt(): Promise<'taken' | 'failed' | 'pooled'> {
    const client = this.options.newClient();
    // Without a listener, an `error` event (the session terminated, the server restarted) would end the process.
    client.on('error', (error: Error) => this.dropped(client, error));
    client.on('end', () => this.dropped(client, new Error('the process lock connection ended')));
    try {
      await client.connect();
      if (await throughPooler(client)) {
        this.options.log.warn(
          'the database connection goes through a pooler: no process lock, so a SIGKILLed verifier process\'s agents move when their leases lapse',
        );
        void client.end().catch(() => undefined);
        this.throughPooler = true;
        return 'pooled';
      }
      await keepIdleSession(client);
      for (let tried = 0; tried < KEY_TRIES && !this.closed; tried += 1) {
        const key = tried === 0 && this.lastKey !== undefined ? this.lastKey : randomLockKey();
        const result = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1, $2) as locked', [PROCESS_LOCK_CLASS, key]);
        if (result.rows[0]?.locked === true) {
          if (this.closed) break;
          this.client = client;
          this.heldKey = key;
          this.lastKey = key;
          this.taken += 1;
          this.takenAt = performance.now();
          this.options.log.info({ key }, 'process lock taken');
          return 'taken';
        }
      }
      if (!this.closed) throw new Error(`every one of ${KEY_TRIES} lock keys tried is held by another session`);
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not take the process lock; judged by heartbeat and leases until it is taken');
    }
    void client.end().catch(() => undefined);
    return 'failed';
  }

  /**
   * `client`'s session ended or failed: if it held the lock, the lock is gone; say so and take it
   * again, at once unless it was lost soon after it was taken (then the back-off goes on growing).
   */
  private dropped(client: pg.Client, error: Error): void {
    if (client !== this.client) {
      return;
    }
    this.client = undefined;
    this.heldKey = null;
    void client.end().catch(() => undefined);
    if (this.closed) {
      return;
    }
    this.options.log.warn({ err: error }, 'process lock lost; taking it again');
    this.failures = performance.now() - this.takenAt >= SETTLE_MS ? 0 : this.failures + 1;
    this.events.lost();
    this.scheduleRetake();
  }

  /** The next attempt: at once after the lock was lost, then with jittered back-off. */
  private scheduleRetake(): void {
    if (this.closed) {
      return;
    }
    clearTimeout(this.retry);
    const delayMs = this.failures === 0 ? 0 : withJitter(backoffDelayMs(this.failures, RETAKE_BACKOFF));
    this.retry = setTimeout(() => {
      void this.attempt().then((outcome) => {
        if (outcome === 'taken') {
          this.events.retaken();
        } else if (outcome === 'failed') {
          this.failures += 1;
          this.scheduleRetake();
        }
      });
    }, delayMs);
  }
}

/**
 * Whether a pooler stands between `client` and PostgreSQL: the cancel key a server sends at start
 * (BackendKeyData) carries its backend's pid; a pooler (pgbouncer in any mode) sends a key of its own.
 * node-postgres keeps that pid as `processID`, which its types do not declare.
 */
async function throughPooler(client: pg.Client): Promise<boolean> {
  const announced = (client as unknown as { processID?: number | null }).processID;
  const result = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  return result.rows[0]?.pid !== announced;
}

/**
 * The lock's session sends nothing for hours: a server's `idle_session_timeout` would end it and make
 * a live process look dead. Switched off for this session; older servers (before 14) lack the setting.
 */
async function keepIdleSession(client: pg.Client): Promise<void> {
  try {
    await client.query(`select set_config('idle_session_timeout', '0', false)`);
  } catch (error) {
    if ((error as { code?: unknown }).code !== UNDEFINED_OBJECT) throw error;
  }
}
