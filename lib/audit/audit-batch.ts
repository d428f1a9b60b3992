import { fixedStatement, type Binding, type FixedStatement, type Statements } from '../db/fixed-statement.js';
import { storableNullableText, storableText } from '../db/storable-text.js';
import { AUDIT_GENESIS_HASH, chainAuditEvent, sealAuditRecords, type AuditEvent, type AuditRecord, type ChainedAuditEvent } from './audit-record.js';
import type { AuditSigningKey } from './audit-signing-key.js';
import { VERIFIER_AUDIT_TABLES, type AuditTables } from './audit-tables.js';

/**
 * The two statements of an append to `tables`, made once per log. `lock`: creates the heads of new
 * streams and locks every head of the batch, in one statement: the no-op update of `on conflict` takes
 * the row lock and returns the head as it is. The rows are locked in the order of `order by`, the same
 * in every process, so two batches never wait on each other crosswise. `insert`: inserts the records
 * and moves each stream's head to its last record, in one statement.
 */
function appendStatements(tables: AuditTables): { readonly lock: FixedStatement; readonly insert: FixedStatement } {
  let statements = APPEND_STATEMENTS.get(tables);
  if (statements === undefined) {
    // Named after the heads table: `audit_lock_heads` for the verifier's log, as before.
    const name = tables.heads.replace(/_heads$/, '');
    statements = {
      lock: fixedStatement(`${name}_lock_heads`, `\n${lockAuditHeadsSql(tables, 'jsonb_array_elements_text(?::jsonb) as s(stream)')}`),
      insert: fixedStatement(`${name}_insert_records`, `\n${insertRecords(tables)}\n${advanceHeads(tables)}`),
    };
    APPEND_STATEMENTS.set(tables, statements);
  }
  return statements;
}

/**
 * Creates the heads of new streams and locks every head of the streams `streams` selects (a `from`
 * item naming its one text column `s.stream`), answering each head as locked (`stream, seq, hash`).
 * Its first binding is the genesis hash (`AUDIT_GENESIS_HASH`), then `streams`' own. A statement that
 * stores something with its audit records may lock their heads as one of its CTEs (the push verdicts'
 * statement), sparing the lock's own round trip; the heads it answers are handed to `LockedAuditStreams`.
 */
export function lockAuditHeadsSql(tables: AuditTables, streams: string): string {
  return `insert into ${tables.heads} (stream, seq, hash)
select s.stream, 0, ? from ${streams} order by s.stream
on conflict (stream) do update set seq = ${tables.heads}.seq
returning stream, seq, hash`;
}

const APPEND_STATEMENTS = new Map<AuditTables, { readonly lock: FixedStatement; readonly insert: FixedStatement }>();

/**
 * The records' insert, as the first CTEs of a statement: its first binding, the records as a JSON
 * array; `ctes` (with their own bindings) follow the records' input; `guard` (a condition over them)
 * decides whether the records are inserted.
 */
function insertRecords(tables: AuditTables, ctes?: string, guard?: string): string {
  return `with input as (
  select * from jsonb_to_recordset(?::jsonb) as t(
    stream text, seq bigint, at text, actor text, action text, agent_id text, details text,
    prev_hash text, hash text, signature text, batch_path text)
)${ctes === undefined ? '' : `, ${ctes}`}, inserted as (
  insert into ${tables.records} (stream, seq, at, actor, action, agent_id, details, prev_hash, hash, signature, batch_path)
  select stream, seq, at, actor, action, agent_id, details, prev_hash, hash, signature, batch_path from input${guard === undefined ? '' : `\n  where ${guard}`}
)`;
}

/** Moves each stream's head to its last inserted record (when `guard` holds). */
function advanceHeads(tables: AuditTables, guard?: string): string {
  return `update ${tables.heads} h set seq = last.seq, hash = last.hash
from (select distinct on (stream) stream, seq, hash from input order by stream, seq desc) last
where h.stream = last.stream${guard === undefined ? '' : ` and (${guard})`}`;
}

/**
 * What else runs in the statement that inserts a batch's records (`LockedAuditStreams.insertWith`):
 * `ctes` (`name as (...)`, comma-separated; they may change rows), placed after the records' input;
 * `guard`, a condition over them: the records are inserted and the heads moved only when it holds;
 * `sql`, the statement's query. Their `?` bindings follow the records', in that order. Everything in
 * it sees the database as it is once the heads are locked: its snapshot is taken after the statement
 * that locked them returned. `name` (a few lowercase words) names the statement.
 */
export interface AuditInsertWith {
  readonly name: string;
  readonly ctes?: string;
  readonly guard?: string;
  readonly sql: string;
}

/** The insert statement with `also`, made once per log and name. */
function insertWith(tables: AuditTables, also: AuditInsertWith): FixedStatement {
  const made = INSERT_WITH.get(tables) ?? new Map<string, FixedStatement>();
  INSERT_WITH.set(tables, made);
  let statement = made.get(also.name);
  if (statement === undefined) {
    const name = tables.heads.replace(/_heads$/, '');
    // Data-modifying CTEs run to completion whatever the query reads of them.
    statement = fixedStatement(
      `${name}_insert_with_${also.name}`,
      `\n${insertRecords(tables, also.ctes, also.guard)}, advanced as (\n${advanceHeads(tables, also.guard)}\n)\n${also.sql}`,
    );
    made.set(also.name, statement);
  }
  return statement;
}

const INSERT_WITH = new Map<AuditTables, Map<string, FixedStatement>>();

/**
 * Appends `events` to the log in `tables` (the verifier's unless given) inside the caller's transaction, whose statements `run` runs (the round writer's, so a verdict and its
 * record commit together or not at all): two statements and ONE Ed25519 signature whatever the batch
 * size (`signAuditBatch`: each record keeps its path to the signed root, so it still verifies alone).
 * The heads of the streams involved are locked, each event is chained after its stream's head
 * (several events of one stream follow each other in the order given), then the records are
 * inserted and the heads advanced.
 */
export async function appendAuditEvents(
  run: Statements,
  events: readonly AuditEvent[],
  key: AuditSigningKey,
  tables: AuditTables = VERIFIER_AUDIT_TABLES,
): Promise<AuditRecord[]> {
  if (events.length === 0) return [];
  return (await lockAuditStreams(run, events, key, tables)).insert(events);
}

/**
 * The heads of a batch's streams, locked in the caller's transaction until it ends (`lockAuditStreams`,
 * or a statement of the caller's with `lockAuditHeadsSql`, its answer in `heads`).
 * Its inserts chain their events after the heads as locked, so after a statement that did insert
 * (its guard held) it is done with: the heads have moved.
 */
export class LockedAuditStreams {
  constructor(
    private readonly run: Statements,
    private readonly heads: AuditHeads,
    private readonly key: AuditSigningKey,
    private readonly tables: AuditTables,
  ) {}

  /** Inserts `events`' records, chained and signed once, and moves the heads; resolves to the records. */
  async insert(events: readonly AuditEvent[]): Promise<AuditRecord[]> {
    const records = this.sealed(events);
    if (records.length > 0) await this.run(appendStatements(this.tables).insert, [recordsJson(records)]);
    return records;
  }

  /**
   * Inserts `events`' records (chained and signed once, whether or not `also`'s guard lets them in) in
   * a statement that also runs `also` (`bindings` its own); resolves to `also.sql`'s rows.
   */
  async insertWith(events: readonly AuditEvent[], also: AuditInsertWith, bindings: readonly Binding[]): Promise<unknown[]> {
    return this.run(insertWith(this.tables, also), [recordsJson(this.sealed(events)), ...bindings]);
  }

  private sealed(events: readonly AuditEvent[]): AuditRecord[] {
    return chainAndSeal(new Map(this.heads), events, this.key);
  }
}

/**
 * Creates the heads of `events`' streams that are new and locks them all, in the caller's transaction
 * (`run`): what to check with them locked is read by a later statement (`insertWith`), whose snapshot
 * is taken after this one returned, so a transaction that held a head (a revocation and its record)
 * and committed meanwhile is seen; this statement's own snapshot, taken before it waited, would miss it.
 */
export async function lockAuditStreams(run: Statements, events: readonly AuditEvent[], key: AuditSigningKey, tables: AuditTables): Promise<LockedAuditStreams> {
  return new LockedAuditStreams(run, await lockHeads(run, events, tables), key, tables);
}

/** Each stream's last seq and hash, as locked. */
export type AuditHeads = Map<string, { seq: number; hash: string }>;

/** Creates the heads of new streams and locks every head of `events`' streams: each stream's last seq and hash. */
async function lockHeads(run: Statements, events: readonly AuditEvent[], tables: AuditTables): Promise<AuditHeads> {
  const streams = [...new Set(events.map((event) => event.stream))];
  const locked = (await run(appendStatements(tables).lock, [AUDIT_GENESIS_HASH, JSON.stringify(streams)])) as { stream: string; seq: string | number; hash: string }[];
  return new Map(locked.map((row) => [row.stream, { seq: Number(row.seq), hash: row.hash }]));
}

function recordsJson(records: readonly AuditRecord[]): string {
  return JSON.stringify(records.map(auditRecordRow));
}

/** `events` chained after `heads` (moved on as they are) and sealed with one signature; none: none. */
function chainAndSeal(heads: AuditHeads, events: readonly AuditEvent[], key: AuditSigningKey): AuditRecord[] {
  if (events.length === 0) return [];
  const chained = events.map((event): ChainedAuditEvent => {
    const head = heads.get(event.stream) as { seq: number; hash: string };
    const link = chainAuditEvent(storableEvent(event), head.seq + 1, head.hash);
    heads.set(event.stream, { seq: link.seq, hash: link.hash });
    return link;
  });
  return sealAuditRecords(chained, key.privateKey);
}

/**
 * `event` with its texts storable (`storableText`: a NUL or a lone surrogate escaped, never dropped),
 * before it is hashed, so that the stored record is the one its hash and signature cover. An actor is
 * a token's or certificate's subject, which whoever issued it chose: one holding a NUL made every change
 * of its holder fail (500) with its record. `details` is stored as JSON text, which escapes them itself.
 */
function storableEvent(event: AuditEvent): AuditEvent {
  // The stream (an agent id or `fleet`, checked before) keys the heads as locked: kept as it is.
  return { ...event, at: storableText(event.at), actor: storableText(event.actor), action: storableText(event.action), agentId: storableNullableText(event.agentId) };
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
    batch_path: JSON.stringify(record.batchPath),
  };
}
