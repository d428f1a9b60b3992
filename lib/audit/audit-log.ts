import type { Knex } from 'knex';
import { statementsOn, type Statements } from '../db/fixed-statement.js';
import type { AuditEvent, AuditRecord } from './audit-record.js';
import { appendAuditEvents, lockAuditStreams, type LockedAuditStreams } from './audit-batch.js';
import type { AuditSigningKey } from './audit-signing-key.js';
import { VERIFIER_AUDIT_TABLES, type AuditTables } from './audit-tables.js';

/**
 * The append-only, hash-chained, signed audit history in the database. `append` locks the stream's
 * head row for the length of one transaction, so concurrent writers (several verifier processes)
 * chain one after another and a failed transaction leaves no half-written link. It is read back by
 * `exportAuditLog` (a batch at a time).
 */
export class AuditLog {
  constructor(
    private readonly knex: Knex,
    private readonly key: AuditSigningKey,
    /** The log's tables: the verifier's unless given (the broker keeps its own, `BROKER_AUDIT_TABLES`). */
    private readonly tables: AuditTables = VERIFIER_AUDIT_TABLES,
  ) {}

  async append(event: AuditEvent): Promise<AuditRecord> {
    return this.knex.transaction((trx) => this.appendIn(trx, event));
  }

  /**
   * Appends `event` inside the caller's transaction, so that it commits with the change it records or
   * not at all; the stream's head stays locked until that transaction ends (chain order is commit order).
   */
  async appendIn(trx: Knex.Transaction, event: AuditEvent): Promise<AuditRecord> {
    return this.appendThrough(statementsOn(trx, false), event);
  }

  /**
   * Appends `event` through `run`, the statements of the caller's transaction: `inPgTransaction`'s on
   * PostgreSQL, so a hot path's record is two prepared statements without knex's transaction.
   */
  async appendThrough(run: Statements, event: AuditEvent): Promise<AuditRecord> {
    return (await appendAuditEvents(run, [event], this.key, this.tables))[0] as AuditRecord;
  }

  /**
   * Locks, through `run`, the heads of `events`' streams for a batch of checked acts and their records
   * (`lockAuditStreams`): what they depend on is then read, and their records inserted, by one
   * statement (`LockedAuditStreams.insertWith`).
   */
  lockThrough(run: Statements, events: readonly AuditEvent[]): Promise<LockedAuditStreams> {
    return lockAuditStreams(run, events, this.key, this.tables);
  }
}
