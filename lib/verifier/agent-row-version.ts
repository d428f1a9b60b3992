import { OPERATOR_STOPPED_STATES } from '../attestation/operational-state.js';

/**
 * SQL for the version of an agent's row as a verdict sees it: its `content_version`, a number a
 * trigger takes from a sequence whenever an update sets any column but the lease's (`owner`,
 * `lease_expires_at`, which move whenever a process takes the row over, without changing what a
 * verdict is judged against; migrations/20261204180000-verifier-agent-content-version.ts) and the
 * stop's token (`stoppedFromVersionSql`). A stored
 * verdict, a silence failure, a stop, a re-enrolment or a policy edit changes it. A pull verdict is
 * stored only over the version its round was decided from (`VerdictStore`, every write of it). The
 * push model remembers the version its choice and its judgement were made from and stores them only
 * while the row still has it (`push-repository.ts`'s insert after a verdict, `push-verdict-writer.ts`'s
 * evidence take, every push verdict and the silence sweep's failure through
 * `RoundWrite.expectedVersion`): anything else is read again. It used to be an md5 of the row's JSON,
 * which cost PostgreSQL about 55 µs per row on every write (docs/verifier.md).
 */
export function agentVersionSql(alias: string): string {
  return `${alias}.content_version::text`;
}

/**
 * SQL for the one-shot token an operator's stop or delete leaves (`stopped_from_version`, the version
 * it stopped the row from, as `agentVersionSql` gives it), null once a FAIL decided from that version
 * is recorded over the stop (`SAVE_ROUNDS`) or the agent is reactivated.
 */
export function stoppedFromVersionSql(alias: string): string {
  return `${alias}.stopped_from_version::text`;
}

/**
 * SQL true while an operator's stop or delete holds the row `alias` (`OPERATOR_STOPPED_STATES`) and its
 * one-shot token is `versionSql`: a FAIL decided from that version may still be recorded over the stop
 * (`SAVE_ROUNDS`, and push's evidence and ownership takes), once.
 */
export function stoppedFromSql(alias: string, versionSql: string): string {
  return `${alias}.operational_state in (${OPERATOR_STOPPED_STATES.join(', ')}) and ${stoppedFromVersionSql(alias)} = ${versionSql}`;
}
