import type { Knex } from 'knex';
import { AUDIT_GENESIS_HASH, sealAuditRecord, type AuditEvent, type AuditRecord } from './audit-record.js';
import type { AuditSigningKey } from './audit-signing-key.js';

const ADVANCE_HEADS = `
update audit_heads h set seq = i.seq, hash = i.hash
from jsonb_to_recordset(?::jsonb) as i(stream text, seq bigint, hash text)
where h.stream = i.stream`;

/**
 * Appends `events` inside the caller's transaction `trx` (the round writer's, so a verdict and its
 * record commit together or not at all): four statements whatever the batch size. The heads of the
 * streams involved are locked in stream order (two batches never wait on each other crosswise),
 * each event is chained after its stream's head (several events of one stream follow each other in
 * the order given), then the records are inserted and the heads advanced.
 */
export async function appendAuditEvents(trx: Knex.Transaction, events: readonly AuditEvent[], key: AuditSigningKey): Promise<AuditRecord[]> {
  if (events.length === 0) return [];
  const streams = [...new Set(events.map((event) => event.stream))].sort();
  await trx('audit_heads')
    .insert(streams.map((stream) => ({ stream, seq: 0, hash: AUDIT_GENESIS_HASH })))
    .onConflict('stream')
    .ignore();
  const rows = (await trx('audit_heads').select('stream', 'seq', 'hash').whereIn('stream', streams).orderBy('stream').forUpdate()) as {
    stream: string;
    seq: string | number;
    hash: string;
  }[];
  const heads = new Map(rows.map((row) => [row.stream, { seq: Number(row.seq), hash: row.hash }]));
  const records = events.map((event) => {
    const head = heads.get(event.stream) as { seq: number; hash: string };
    const record = sealAuditRecord(event, head.seq + 1, head.hash, key.privateKey);
    heads.set(event.stream, { seq: record.seq, hash: record.hash });
    return record;
  });
  await trx('audit_records').insert(records.map(auditRecordRow));
  await trx.raw(ADVANCE_HEADS, [JSON.stringify([...heads].map(([stream, head]) => ({ stream, ...head })))]);
  return records;
}

/** The `audit_records` row of a record; `details` as JSON text, so it reads back to the hashed value. */
function auditRecordRow(record: AuditRecord): Record<string, unknown> {
  return {
    stream: record.stream,
    seq: record.seq,
    at: record.at,
    actor: record.actor,
    action: record.action,
    agent_id: record.agentId,
    details: JSON.stringify(record.details),
    prev_hash: record.prevHash,
    hash: record.hash,
    signature: record.signature,
  };
}
