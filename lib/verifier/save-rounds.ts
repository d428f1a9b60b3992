import type { Knex } from 'knex';
import { performance } from 'node:perf_hooks';
import { fixedStatement, statementsOn, type Statements } from '../db/fixed-statement.js';
import { OPERATOR_STOPPED_STATES } from '../attestation/operational-state.js';
import { recordedOverOperatorStop } from '../attestation/failure-over-operator-stop.js';
import { agentVersionSql, stoppedFromSql, stoppedFromVersionSql } from './agent-row-version.js';
import { storableJson } from '../db/storable-text.js';
import type { RoundWrite } from './round-writer.js';

/**
 * What `SAVE_ROUNDS` did with a write it took: stored over the agent's row (`version`: the row's new
 * version), or, the row stopped or deleted by an operator meanwhile (`OPERATOR_STOPPED_STATES`) from the
 * version the verdict was decided from, only the verdict's failure recorded — its history row and
 * audit record — while the row keeps the operator's state (`keptState`) and is not changed but for
 * the stop's token, consumed.
 */
export type StoredRound = { readonly kind: 'stored'; readonly version: string } | { readonly kind: 'failure_recorded'; readonly keptState: number };

/**
 * A decision time on the database's clock: its age when the row was built, back from the statement's own clock (`now()`, the
 * transaction's start, would date it early by what ran before the row was built). Without an age: the store's time. Worked out
 * once per row in `input` (a CTE read twice is materialized), so the agent's `last_attempt_at` and its history row's
 * `attempted_at` are the same instant, not two readings of `clock_timestamp()` microseconds apart.
 */
export const DECIDED_AT = 'case when t.decided_ago is null then now() else clock_timestamp() - make_interval(secs => t.decided_ago) end';

/** The columns of `SAVE_ROUNDS`' JSON rows (`rowOf`). */
export const ROUND_COLUMNS = `
    agent_id text, owner text, lease_seconds double precision,
    operational_state int, attestation_count int, severity_level int, last_event_id text,
    last_received_quote double precision, last_successful_attestation double precision,
    tpm_clockinfo jsonb, boottime double precision, next_ima_ml_entry int, ima_pcr10 jsonb,
    learned_ima_keyrings jsonb, ima_lag_entries int, agent_pubkey text, hash_alg text, enc_alg text, sign_alg text,
    verifier_id text, outcome text, nonce text, round_id text, ima_ml_entry int, ima_entries_received int, failures jsonb,
    failures_omitted int, omitted_event_ids jsonb,
    expected_version text, decided_ago double precision, record_over_stop boolean`;

/**
 * `SAVE_ROUNDS` but for its input and its answer: the CTEs that store the rows of a CTE named `input`
 * (`ROUND_COLUMNS` and `decided_at`); `STORED_ROUNDS` answers what they stored.
 */
export const STORE_ROUNDS = `updated as (
  update verifier_agents a set
    operational_state = i.operational_state,
    attestation_count = i.attestation_count,
    severity_level = i.severity_level,
    last_event_id = i.last_event_id,
    last_received_quote = case when i.last_received_quote = 0 then null else to_timestamp(i.last_received_quote) end,
    last_successful_attestation = case when i.last_successful_attestation = 0 then null else to_timestamp(i.last_successful_attestation) end,
    tpm_clockinfo = i.tpm_clockinfo,
    boottime = i.boottime,
    next_ima_ml_entry = i.next_ima_ml_entry,
    ima_pcr10 = i.ima_pcr10,
    learned_ima_keyrings = i.learned_ima_keyrings,
    ima_lag_entries = i.ima_lag_entries,
    agent_pubkey = i.agent_pubkey,
    hash_alg = i.hash_alg,
    enc_alg = i.enc_alg,
    sign_alg = i.sign_alg,
    last_attempt_at = i.decided_at,
    lease_expires_at = now() + make_interval(secs => i.lease_seconds),
    updated_at = now()
  from input i
  where a.agent_id = i.agent_id and a.owner = i.owner and a.operational_state not in (${OPERATOR_STOPPED_STATES.join(', ')})
    and (i.expected_version is null or ${agentVersionSql('a')} = i.expected_version)
  returning a.agent_id, a.tenant, ${agentVersionSql('a')} as row_version
), kept as (
  select a.agent_id, a.operational_state, ${stoppedFromVersionSql('a')} as stopped_from_version
  from verifier_agents a join input i on a.agent_id = i.agent_id
  where i.record_over_stop
  for update of a
), recorded as (
  update verifier_agents a set stopped_from_version = null
  from kept k join input i on i.agent_id = k.agent_id
  where a.agent_id = k.agent_id and i.expected_version is not null and ${stoppedFromSql('k', 'i.expected_version')}
  returning a.agent_id, a.tenant, k.operational_state as kept_state
), inserted as (
  insert into verifier_attestation_history
    (agent_id, tenant, verifier_id, owner, outcome, nonce, round_id, ima_ml_entry, ima_entries_received, operational_state, attestation_count, failures, failures_omitted, omitted_event_ids, attempted_at)
  select i.agent_id, a.tenant, i.verifier_id, i.owner, i.outcome, i.nonce, i.round_id, i.ima_ml_entry, i.ima_entries_received,
    i.operational_state, i.attestation_count, i.failures, i.failures_omitted, i.omitted_event_ids, i.decided_at
  from input i join (select agent_id, tenant from updated union select agent_id, tenant from recorded) a on a.agent_id = i.agent_id
  where i.outcome is not null
  returning 1
)`;

/** What `STORE_ROUNDS` stored, one row per write (`storedRoundOf`). */
export const STORED_ROUNDS = `select agent_id, row_version, null::int as kept_state from updated
union all
select agent_id, null, kept_state from recorded`;

/**
 * The whole batch as ONE statement with ONE parameter: a JSON array of rows, opened with
 * `jsonb_to_recordset`. Per row, the agent is updated only while `owner` still holds it and no
 * operator stopped or deleted it meanwhile (`OPERATOR_STOPPED_STATES`), and the history row is inserted only for an
 * agent that was updated, with the tenant its update returns (no second read of the agent's row) —
 * so `attestation_count` and the agent's `pass` rows move together, in the
 * same transaction (a statement is atomic), or not at all. A row flagged `record_over_stop` (a verdict
 * that fails the agent, `recordedOverOperatorStop`) whose agent an operator stopped or deleted
 * meanwhile is `recorded` only when the verdict was decided from the very version the operator stopped
 * the row from (`expected_version` = `stopped_from_version`, set by the stop), and `recorded` consumes
 * that token (sets it null) under the row lock: a retry whose first attempt committed (or is
 * committing: it waits for that lock, then finds the token gone, and the retrier finds its round in
 * the history), a second process's FAIL from the same row, or a FAIL decided from an older row (a
 * pass stored between) is not recorded. Its history row is inserted and the agent's row is left as the
 * operator left it but for the token, which is not part of the row's version (whoever holds the lease
 * does not matter: nobody polls a stopped row). `kept` locks the row (`for update`) so that a stop
 * committing while the statement waits for its row lock is seen, as the update sees it, and
 * `recorded` updates the version `kept` locked; both take only flagged rows, which are rare (a pass is
 * never flagged), so a batch of passes pays nothing for them. A lock `kept` waits for may be held by a
 * statement waiting on one of this batch's rows (`releaseAgents`, another batch in another order):
 * PostgreSQL then aborts one of them as a deadlock, the batch fails as a whole and every write in it is
 * tried again (`RoundRetrier`). A row with an `expected_version` is stored only while the agent's
 * row still has that version: under READ COMMITTED, a second writer waits for the first one's row lock
 * and then checks the condition against the row the first one stored. One row per agent
 * (`RoundWriter.run`). The text is fixed, so nothing is built per round; `?` is knex's only
 * placeholder.
 */
const SAVE_ROUNDS = fixedStatement(
  'verifier_save_rounds',
  `
with input as (
  select t.*, ${DECIDED_AT} as decided_at from jsonb_to_recordset(?::jsonb) as t(${ROUND_COLUMNS})
), ${STORE_ROUNDS}
${STORED_ROUNDS}`,
);

/**
 * Stores `writes` (of distinct agents) in one statement; resolves to the agents it updated, each with
 * its row's new version, and those whose failure it recorded over an operator's stop or delete (the
 * others are not this owner's, or not in the version expected).
 */
export function storeRounds(knex: Knex | Knex.Transaction, writes: readonly RoundWrite[]): Promise<Map<string, StoredRound>> {
  return saveRounds(statementsOn(knex, false), writes);
}

/** `storeRounds` through `run`. */
export async function saveRounds(run: Statements, writes: readonly RoundWrite[]): Promise<Map<string, StoredRound>> {
  const rows = (await run(SAVE_ROUNDS, [storableJson(writes.map(rowOf))])) as { agent_id: string; row_version: string | null; kept_state: number | null }[];
  return new Map(rows.map((row): [string, StoredRound] => [row.agent_id, storedRoundOf(row)]));
}

/** A row of `STORED_ROUNDS` as `StoredRound`. */
export function storedRoundOf(row: { row_version: string | null; kept_state: number | null }): StoredRound {
  return row.kept_state === null ? { kind: 'stored', version: row.row_version as string } : { kind: 'failure_recorded', keptState: row.kept_state };
}

/** The JSON row `SAVE_ROUNDS` reads (`ROUND_COLUMNS`); every string is made storable by `storableJson`. */
export function rowOf(write: RoundWrite): Record<string, unknown> {
  const { state, history } = write;
  return {
    agent_id: write.agentId,
    owner: write.owner,
    lease_seconds: write.leaseSeconds,
    operational_state: state.operationalState,
    attestation_count: state.attestationCount,
    severity_level: state.severityLevel,
    last_event_id: state.lastEventId,
    last_received_quote: state.lastReceivedQuote,
    last_successful_attestation: state.lastSuccessfulAttestation,
    tpm_clockinfo: state.tpmClockInfo,
    boottime: state.boottime,
    next_ima_ml_entry: state.ima.nextEntry,
    ima_pcr10: state.ima.pcr10,
    learned_ima_keyrings: state.ima.learnedKeyrings,
    ima_lag_entries: state.ima.lagEntries,
    agent_pubkey: state.publicKey,
    hash_alg: state.hashAlg,
    enc_alg: state.encAlg,
    sign_alg: state.signAlg,
    verifier_id: write.verifierId,
    outcome: history?.outcome ?? null,
    nonce: history?.nonce ?? null,
    round_id: write.roundId ?? null,
    ima_ml_entry: history?.imaMlEntry ?? null,
    ima_entries_received: history?.imaEntriesReceived ?? null,
    failures: history?.failures ?? [],
    failures_omitted: history?.failuresOmitted ?? 0,
    omitted_event_ids: history?.omittedEventIds ?? [],
    expected_version: write.expectedVersion ?? null,
    // How long ago, not when: the stored times stay on the database's clock, as its other columns.
    decided_ago: write.decidedAt === undefined ? null : Math.max(0, performance.now() - write.decidedAt) / 1000,
    record_over_stop: recordedOverOperatorStop(state, history, write.decidedFrom),
  };
}
