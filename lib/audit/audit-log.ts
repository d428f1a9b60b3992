import type { Knex } from 'knex';
import { statementsOn } from '../db/fixed-statement.js';
import type { AuditEvent, AuditRecord } from './audit-record.js';
import { appendAuditEvents } from './audit-batch.js';
import type { AuditSigningKey } from './audit-signing-key.js';

interface AuditRecordRow {
  stream: string;
  seq: string | number;
  at: string;
  actor: string;
  action: string;
  agent_id: string | null;
  details: string;
  prev_hash: string;
  hash: string;
  signature: string;
  batch_path: string;
}

export interface AuditQuery {
  /** One stream (an agent id, or `fleet`); absent means every stream. */
  readonly stream?: string;
  /**
   * Per stream, the records from the first one at or after this ISO 8601 UTC time, and every later
   * seq whatever its time: seq order is commit order, and a writer that waited for the head lock (or
   * whose clock is behind) can have an earlier `at` than the record before it. A stream with no record
   * since the time still gives its last record: so every stream's end is checked against the manifest
   * (a newest record whose `at` was edited to before the time cannot drop out unseen). The record
   * before that first one comes first, when the stream has one: it anchors the range, so a record
   * deleted at its start breaks the chain as one deleted in the middle does.
   */
  readonly since?: string;
}

/**
 * The append-only, hash-chained, signed audit history in the database. `append` locks the stream's
 * head row for the length of one transaction, so concurrent writers (several verifier processes)
 * chain one after another and a failed transaction leaves no half-written link.
 */
export class AuditLog {
  constructor(
    private readonly knex: Knex,
    private readonly key: AuditSigningKey,
  ) {}

  async append(event: AuditEvent): Promise<AuditRecord> {
    return this.knex.transaction((trx) => this.appendIn(trx, event));
  }

  /**
   * Appends `event` inside the caller's transaction, so that it commits with the change it records or
   * not at all; the stream's head stays locked until that transaction ends (chain order is commit order).
   */
  async appendIn(trx: Knex.Transaction, event: AuditEvent): Promise<AuditRecord> {
    return (await appendAuditEvents(statementsOn(trx, false), [event], this.key))[0] as AuditRecord;
  }

  /** Records in chain order: by stream, then seq. */
  async list(query: AuditQuery = {}): Promise<AuditRecord[]> {
    const builder = this.knex<AuditRecordRow>('audit_records').select('audit_records.*').orderBy([{ column: 'audit_records.stream' }, { column: 'audit_records.seq' }]);
    if (query.stream !== undefined) builder.where('audit_records.stream', query.stream);
    if (query.since !== undefined) {
      // The first record at or after the time, or the stream's last when none is: every stream's end is exported.
      const firstSince = this.knex('audit_records')
        .select('stream', this.knex.raw('coalesce(min(seq) filter (where at >= ?), max(seq)) as first_seq', [query.since]))
        .groupBy('stream');
      if (query.stream !== undefined) void firstSince.where('stream', query.stream);
      // From the record before that first one: deleting the first one then shows as a gap.
      const before = 'select max(earlier.seq) from audit_records earlier where earlier.stream = first.stream and earlier.seq < first.first_seq';
      const from = this.knex.select('first.stream', this.knex.raw(`coalesce((${before}), first.first_seq) as from_seq`)).from(firstSince.as('first')).as('first_since');
      builder.join(from, (on) => on.on('first_since.stream', '=', 'audit_records.stream').andOn('audit_records.seq', '>=', 'first_since.from_seq'));
    }
    return ((await builder) as AuditRecordRow[]).map(fromRow);
  }
}

function fromRow(row: AuditRecordRow): AuditRecord {
  return {
    stream: row.stream,
    seq: Number(row.seq),
    at: row.at,
    actor: row.actor,
    action: row.action,
    agentId: row.agent_id,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
    signature: row.signature,
    batchPath: JSON.parse(row.batch_path) as string[],
  };
}
