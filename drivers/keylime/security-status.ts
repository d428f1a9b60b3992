import { AttestationFailed } from '../../interfaces/errors.js';
import { judgeVerifierStatus, type StatusVerdict } from '../../lib/attestation/operator-decision.js';
import type { TrustLevel } from '../../lib/identity/trust-level.js';
import type { EkCheckSettings } from './enrolment-policy.js';
import type { KeylimeConnection } from './keylime-connection.js';
import type { KeylimeNodeSettings } from './keylime-driver-info.js';
import { foreignEnrolment } from './node-binding.js';
import { checkedForLiveness, readLivenessVerdict, readTrustLevel } from './node-identity.js';
import { EXPIRED, settleBefore, waitForFinalVerdict } from './status-wait.js';
import { readVerifierAgentAt, recentFailures } from './verifier-agent-view.js';
import { isTransient } from './verifier-removal.js';

/** What `awaitTrustedStatus` asks about, and how. */
export interface SecurityStatusQuery {
  readonly connection: KeylimeConnection;
  readonly settings: KeylimeNodeSettings;
  readonly agentId: string;
  readonly nodeUuid: string;
  readonly signal: AbortSignal;
  readonly identity: EkCheckSettings;
  /** The driver option `staleAfterSeconds` (undefined: the verifier's bound, else the derived one). */
  readonly staleAfterSeconds: number | undefined;
  /** The level the step's gate read (`KeylimeAttestation.trustLevel` for this task): used instead of asking the registrar again. */
  readonly gatedLevel?: TrustLevel | undefined;
}

/**
 * `validateSecurityStatus`'s judgement: polls the verifier (bounded by `statusTimeoutSeconds`) until
 * it has a final verdict on the agent, judged by `judgeVerifierStatus` for this node's enrolment only.
 * An agent the verifier does not attest may be a node without a TPM that it checks for liveness; then
 * the liveness status is the verdict.
 *
 * A FAIL's failure history is read within the same deadline: one that does not answer in time (or at
 * all, or before the step is aborted) leaves the verdict's own reasons. Reads left behind end when the caller closes `connection`.
 *
 * @throws AttestationFailed with the verifier's reasons, its failure history's event ids, or "not enrolled".
 * @throws AttestationServiceUnavailable (from the wait) when no final verdict came in time.
 */
export async function awaitTrustedStatus(query: SecurityStatusQuery): Promise<void> {
  const { connection, settings, agentId } = query;
  let liveness = false;
  const read = async (): Promise<StatusVerdict> => {
    const verdict = await readVerdict(query);
    // A node the verifier does not attest may be one it checks for liveness (no TPM).
    liveness = verdict.kind === 'fail' && verdict.reasons.length === 0 && (await isCheckedForLiveness(query));
    if (liveness) return readLivenessVerdict(connection.liveness(), agentId, query.nodeUuid, { staleAfterSeconds: query.staleAfterSeconds });
    return verdict.kind === 'fail' && verdict.reasons.length === 0 ? { ...verdict, reasons: [`agent ${agentId} is not enrolled with the verifier`] } : verdict;
  };
  const timeoutMs = settings.statusTimeoutSeconds * 1000;
  const deadline = performance.now() + timeoutMs;
  const verdict = await waitForFinalVerdict(read, {
    timeoutMs,
    intervalMs: settings.statusPollIntervalSeconds * 1000,
    signal: query.signal,
    isTransient,
  });
  if (verdict.kind === 'fail' && liveness) {
    throw new AttestationFailed(verdict.reasons, verdict.eventIds);
  }
  if (verdict.kind === 'fail') {
    const history = await failuresBefore(query, deadline);
    const reasons = [...new Set([...verdict.reasons, ...history.reasons])];
    const eventIds = [...new Set([...verdict.eventIds, ...history.eventIds])];
    throw new AttestationFailed(reasons, eventIds);
  }
}

/**
 * `recentFailures` if it answers before `deadline` (monotonic clock) and before the step is aborted;
 * else none. The FAIL is final already: an abort must not turn it into the abort's reason, which the
 * hooks rethrow unrecorded.
 */
async function failuresBefore(query: SecurityStatusQuery, deadline: number): Promise<{ eventIds: string[]; reasons: string[] }> {
  const none = { eventIds: [], reasons: [] };
  const left = deadline - performance.now();
  if (left <= 0 || query.signal.aborted) return none;
  try {
    const read = await settleBefore(() => recentFailures(query.connection.verifier, query.agentId), left, query.signal);
    return read === EXPIRED ? none : read;
  } catch (error) {
    // `recentFailures` never rejects: this is the step's abort.
    if (query.signal.aborted) return none;
    throw error;
  }
}

async function readVerdict(query: SecurityStatusQuery): Promise<StatusVerdict> {
  const read = await readVerifierAgentAt(query.connection.verifier, query.agentId);
  if (read === undefined) {
    // No reason yet: the caller asks whether the node is one checked for liveness instead.
    return { kind: 'fail', reasons: [], eventIds: [] };
  }
  const { agent, verifierTime } = read;
  const foreign = foreignEnrolment(agent, query.nodeUuid, query.agentId);
  if (foreign !== undefined) {
    return { kind: 'fail', reasons: [foreign], eventIds: [] };
  }
  return judgeVerifierStatus(agent, {
    now: Date.now() / 1000,
    verifierNow: verifierTime,
    agentMode: query.settings.agentMode,
    staleAfterSeconds: query.staleAfterSeconds,
  });
}

/** True when the registrar says the agent has no TPM; unknown there counts as false (the verifier's verdict stands). */
async function isCheckedForLiveness(query: SecurityStatusQuery): Promise<boolean> {
  if (query.gatedLevel !== undefined) return checkedForLiveness(query.gatedLevel);
  try {
    return checkedForLiveness(await readTrustLevel(query.connection, query.agentId, query.identity));
  } catch (error) {
    if (error instanceof AttestationFailed) return false;
    throw error;
  }
}
