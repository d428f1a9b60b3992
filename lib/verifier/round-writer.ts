import type { Knex } from 'knex';
import type { AuditHeads } from '../audit/audit-batch.js';
import { statementsOn, type Statements } from '../db/fixed-statement.js';
import { inPgTransaction } from '../db/pg-transaction.js';
import type { AgentAttestationState } from '../attestation/agent-state.js';
import type { HistoryRow } from '../attestation/history-row.js';
import type { OperationalState } from '../attestation/operational-state.js';
import type { PreparedRevocation } from '../revocation/revocation-notifier.js';
import { saveAuditedRounds } from './save-audited-rounds.js';
import { saveRounds, type StoredRound } from './save-rounds.js';
import { StatementBatch } from './statement-batch.js';
import { insertVerdictRecords, type VerdictAudit } from './verdict-audit.js';

/** One round to store: the agent's next state and (unless the round judged nothing) its history row. */
export interface RoundWrite {
  readonly agentId: string;
  readonly verifierId: string;
  readonly owner: string;
  readonly leaseSeconds: number;
  readonly state: AgentAttestationState;
  readonly history: HistoryRow | undefined;
  /**
   * The verdict's id, stored with its history row: a write retried after its COMMIT got no answer asks
   * the history for it (`RoundRetrier`), nonce or none. Absent: null.
   */
  readonly roundId?: string;
  /**
   * Store only while the agent's row still has this version (`agentVersionSql`), the row the decision
   * was made from: of two processes deciding from the same read (the push silence sweep) one stores,
   * and announces, the transition; nor is a decision stored over one that landed meanwhile (a push
   * verdict over another process's silence failure, or the other way round).
   */
  readonly expectedVersion?: string;
  /**
   * When the round was decided (`performance.now()`), stored as the history row's `attempted_at` and the
   * agent's `last_attempt_at`: the next round is timed from it, not from the store, which may come a
   * batch window (or a retry) later. Only its age is used, on the monotonic clock, so a wall-clock step
   * meanwhile does not date the round by the step. Absent: the time of the store.
   */
  readonly decidedAt?: number;
  /**
   * The state the verdict was decided from, when that may be one an operator stopped (push evidence
   * judged from the row as read): a FAIL decided from a stopped row is not recorded over the stop
   * (`recordedOverOperatorStop`). The pull loop polls no stopped agent and leaves it out.
   */
  readonly decidedFrom?: OperationalState;
  /**
   * The revocation notice of a verdict that fails the agent (`FailureAnnouncer.prepare`): the writer's
   * `alsoStore` records it in the verdict's transaction (`RevocationNotifier.recordIn`).
   */
  readonly revocation?: PreparedRevocation;
}

export interface RoundWriterOptions {
  /**
   * Longest a write waits for others to share its statement (default 50 ms; the verifier passes
   * `verdictBatchDelayMs`, a tenth of `quote_interval`). Each batch is one transaction of four
   * statements (begin, the rounds with their audit heads' lock, the audit's records, commit) and one
   * audit signature, so the window sets the database cost per verdict. A round's verdict is stored that
   * much later; the next round is timed from the decision, so the cadence does not move.
   */
  readonly batchDelayMs?: number;
  /** Most rounds in one statement (default 250). */
  readonly maxBatch?: number;
  /**
   * The stored verdicts' audit records (lib/verifier/verdict-audit.ts), which commit with the verdicts
   * or not at all: the rounds' statement locks their heads (`saveAuditedRounds`, no statement of its
   * own) and the records are inserted after it, before `alsoStore`. Not with `save`, which would have to
   * lock them itself (the push verdicts' does).
   */
  readonly audit?: VerdictAudit;
  /**
   * Runs in the batch's transaction (its statements go through `statements`) after its statement and
   * the audit's records, with the rounds it stored: the revocation notices of those failing their agent,
   * the push verdicts' own records and completions. It commits with the verdicts or not at all.
   */
  readonly alsoStore?: (statements: Statements, stored: readonly RoundWrite[]) => Promise<void>;
  /**
   * The statement that stores one group of a batch's writes (of distinct agents), in the batch's
   * transaction: resolves to the agents stored, each with what was stored (default `saveRounds`). The
   * push verdicts take their evidence and lock their audit heads in it too (`PushVerdictWriter`).
   */
  readonly save?: (run: Statements, writes: readonly RoundWrite[]) => Promise<ReadonlyMap<string, StoredRound>>;
  /**
   * PostgreSQL: the batch's statements are named prepared statements, and its transaction runs on a
   * node-postgres connection (`inPgTransaction`) rather than through knex.
   */
  readonly prepared?: boolean;
}

/**
 * The pull loop's only hot-path database write. Rounds that end within `batchDelayMs` of each other
 * share one statement (`SAVE_ROUNDS`). `write` resolves true when the round is stored (or, failing the
 * agent, its failure recorded over an operator's stop: `StoredRound`), false when the
 * agent is no longer this owner's to write (taken over, stopped, deleted: re-read it), and REJECTS
 * when the statement failed — the caller keeps the round and tries again. A write that failed once is
 * retried alone, so one unstorable row cannot hold other agents' verdicts back.
 */
export class RoundWriter {
  private readonly batch: StatementBatch<RoundWrite, ReadonlyMap<RoundWrite, StoredRound>>;
  private readonly alsoStore: RoundWriterOptions['alsoStore'];
  private readonly audit: VerdictAudit | undefined;
  private readonly save: NonNullable<RoundWriterOptions['save']>;
  private readonly prepared: boolean;
  /** The longest a write waits for others (`RoundWriterOptions.batchDelayMs`). */
  readonly batchDelayMs: number;

  constructor(
    private readonly knex: Knex,
    options: RoundWriterOptions = {},
  ) {
    if (options.audit !== undefined && options.save !== undefined) throw new Error('RoundWriter: `audit` locks its heads in the default rounds statement; a `save` of its own must lock them itself');
    this.alsoStore = options.alsoStore;
    this.audit = options.audit;
    this.save = options.save ?? saveRounds;
    this.prepared = options.prepared ?? false;
    this.batchDelayMs = options.batchDelayMs ?? 50;
    this.batch = new StatementBatch((writes) => this.run(writes), this.batchDelayMs, options.maxBatch ?? 250, 'the round writer is closed: the round was not stored');
  }

  /** Stores `write` with the next batch (`alone`: in a statement of its own, at once: a retry, a failure, a write after the store closed). Rejects once closed. */
  async write(write: RoundWrite, alone = false): Promise<boolean> {
    return (await this.batch.submit(write, alone)).has(write);
  }

  /** `write`, resolving to what was stored (`StoredRound`: the agent row's new version, or the failure recorded only), undefined when nothing was. */
  async writeReturningOutcome(write: RoundWrite, alone = false): Promise<StoredRound | undefined> {
    return (await this.batch.submit(write, alone)).get(write);
  }

  /** Sends the writes waiting for their batch window now; later writes are taken as before. */
  flush(): void {
    this.batch.flush();
  }

  /**
   * Sends what is queued at once and resolves when every batch sent so far is stored or failed — each
   * waiting `write` has its answer — so the database can be closed after it. Later writes are refused.
   */
  close(): Promise<void> {
    return this.batch.close();
  }

  /**
   * The batch's writes, in statements of one write per agent: `SAVE_ROUNDS` updates an agent's row
   * once per statement, so a second write for it there (two verdicts of one agent within one batch,
   * which the callers avoid but do not rule out) would have its history row inserted and be told "stored" without its own
   * conditions checked. A later statement of the same transaction sees the row the earlier one left,
   * so its take and its expected version are judged against it, as across batches.
   */
  private run(writes: readonly RoundWrite[]): Promise<ReadonlyMap<RoundWrite, StoredRound>> {
    const { alsoStore, save, prepared, audit } = this;
    const groups = oneWritePerAgent(writes);
    if (alsoStore === undefined && audit === undefined && groups.length === 1) {
      return storeWrites(save, statementsOn(this.knex, prepared), writes);
    }
    if (prepared) {
      return inPgTransaction(this.knex, (run) => storeBatch(run, save, writes, groups, alsoStore, audit));
    }
    return this.knex.transaction((trx) => storeBatch(statementsOn(trx, false), save, writes, groups, alsoStore, audit));
  }
}

/**
 * The batch's statements (`save` for each of `groups`, or with `audit` the rounds locking their audit
 * heads), then the audit's records and `alsoStore`, in the caller's transaction.
 */
async function storeBatch(
  run: Statements,
  save: NonNullable<RoundWriterOptions['save']>,
  writes: readonly RoundWrite[],
  groups: readonly RoundWrite[][],
  alsoStore: RoundWriterOptions['alsoStore'],
  audit: VerdictAudit | undefined,
): Promise<ReadonlyMap<RoundWrite, StoredRound>> {
  const heads: AuditHeads = new Map();
  const saveGroup: NonNullable<RoundWriterOptions['save']> = audit === undefined ? save : (statements, group) => saveAuditedRounds(statements, group, heads);
  const stored = new Map<RoundWrite, StoredRound>();
  for (const group of groups) {
    for (const [write, version] of await storeWrites(saveGroup, run, group)) stored.set(write, version);
  }
  const kept = writes.filter((write) => stored.has(write));
  if (audit !== undefined) await insertVerdictRecords(run, kept, heads, audit);
  await alsoStore?.(run, kept);
  return stored;
}

/** `writes` split into groups in which no agent appears twice, each write in the first group free of its agent. */
function oneWritePerAgent(writes: readonly RoundWrite[]): RoundWrite[][] {
  const groups: { agents: Set<string>; writes: RoundWrite[] }[] = [];
  for (const write of writes) {
    let group = groups.find((g) => !g.agents.has(write.agentId));
    if (group === undefined) {
      group = { agents: new Set(), writes: [] };
      groups.push(group);
    }
    group.agents.add(write.agentId);
    group.writes.push(write);
  }
  return groups.map((g) => g.writes);
}

/** `save` of writes of distinct agents; resolves to the writes stored, each with what was stored. */
async function storeWrites(save: NonNullable<RoundWriterOptions['save']>, run: Statements, writes: readonly RoundWrite[]): Promise<Map<RoundWrite, StoredRound>> {
  const stored = new Map<RoundWrite, StoredRound>();
  if (writes.length === 0) return stored;
  const versions = await save(run, writes);
  for (const write of writes) {
    const version = versions.get(write.agentId);
    if (version !== undefined) stored.set(write, version);
  }
  return stored;
}
