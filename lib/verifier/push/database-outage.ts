import type { Knex } from 'knex';
import type { VerifierOutage } from '../../attestation/push-failure-decision.js';
import { isConnectionFailure } from '../../db/database-errors.js';
import { OutagePeriods } from './outage-periods.js';

/** The events of knex's connection pool (tarn) this watch listens to. */
interface PoolEvents {
  on(event: 'createFail', listener: () => void): void;
  removeListener(event: 'createFail', listener: () => void): void;
}

/**
 * When this process could not use its database: the latest outage, from its first failure to the
 * first statement answered after it (now while none is). A push agent's requests meanwhile are
 * answered 500 and nothing of them is stored, so the silence sweep must not take that silence for
 * the agent's (`decidePushSilence`). Fed by the pool's failed connections and by statements whose
 * connection was lost; ended by any statement answered. A failure within `mergeMs` of the previous
 * outage's end continues it (a flapping database is one outage). Each process sees its own statements
 * only: one that ran none during an outage does not see it.
 */
export class DatabaseOutage {
  private readonly periods: OutagePeriods;
  private readonly pool: Partial<PoolEvents> | undefined;
  private readonly onError = (error: unknown): void => {
    if (isConnectionFailure(error)) this.failed();
  };
  private readonly onResponse = (): void => this.answered();
  private readonly onCreateFail = (): void => this.failed();

  /** Listens to `knex`'s statements and, on PostgreSQL, to its pool's failed connections, until `close()`. */
  constructor(
    private readonly knex: Knex,
    mergeMs: number,
    /** The clock outages are dated on (unix ms): the one the silences they excuse are measured on. */
    clock: () => number,
  ) {
    this.periods = new OutagePeriods(mergeMs, clock);
    knex.on('query-error', this.onError);
    knex.on('query-response', this.onResponse);
    // knex does not type its client; the pool is tarn's, whose `createFail` is a connection not opened.
    this.pool = (knex.client as { pool?: Partial<PoolEvents> }).pool;
    this.pool?.on?.('createFail', this.onCreateFail);
  }

  close(): void {
    this.knex.removeListener('query-error', this.onError);
    this.knex.removeListener('query-response', this.onResponse);
    this.pool?.removeListener?.('createFail', this.onCreateFail);
  }

  failed(at?: number): void {
    this.periods.failed(at);
  }

  answered(at?: number): void {
    this.periods.succeeded(at);
  }

  /** The latest outage in seconds since the epoch, or undefined when there was none. */
  latest(now?: number): VerifierOutage | undefined {
    return this.periods.latest(now);
  }
}
