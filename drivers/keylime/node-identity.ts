import { AttestationFailed } from '../../interfaces/errors.js';
import { BadRemoteReplyError, KeylimeHttpError } from '../../lib/http/client-errors.js';
import { trustLevelHasEvidence, type TrustLevel } from '../../lib/identity/trust-level.js';
import { checkRegisteredEkCertificate, loadTenantCertStore } from '../../lib/tenant/ek-certificate-check.js';
import { decodeRegisteredAgent } from '../../lib/tenant/registrar-agents.js';
import { LivenessClient, type LivenessStatusReply } from '../../lib/verifier/liveness/liveness-client.js';
import type { EkCheckSettings } from './enrolment-policy.js';
import type { KeylimeConnection } from './keylime-connection.js';
import { foreignEnrolment } from './node-binding.js';
import { judgeLivenessStatus } from '../../lib/attestation/liveness-operator-decision.js';
import type { StatusVerdict } from '../../lib/attestation/operator-decision.js';

/**
 * The node's trust level from the registrar (`GET /agents/{id}`, ironlime's `trust_level`). A Keylime
 * registrar does not say: its agents have a TPM, and count as `hardware-tpm` only when the driver
 * checks the EK certificate (`ekCheck: require`) and that check passes for this very registration —
 * run here on the record just read, not assumed from the option — else `emulated-tpm`.
 *
 * @throws AttestationFailed when the registrar does not know the agent (or it is not activated).
 */
export async function readTrustLevel(connection: KeylimeConnection, agentId: string, identity: EkCheckSettings): Promise<TrustLevel> {
  try {
    const shown = await connection.registrar.show(agentId);
    if (shown.trust_level !== undefined) return shown.trust_level;
    // Without an EK (or under a weaker check) there is no EK check that could have passed.
    if (identity.ekCheck !== 'require' || shown.ek_tpm === null || shown.ek_tpm === undefined) return 'emulated-tpm';
    const ek = checkRegisteredEkCertificate(decodeRegisteredAgent(shown, agentId), 'require', loadTenantCertStore(identity.extraEkCaDirs));
    return ek.ok ? 'hardware-tpm' : 'emulated-tpm';
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
      throw new AttestationFailed([`agent ${agentId} is not registered (or not activated) at the registrar`], [], { cause: error });
    }
    throw error;
  }
}

/** True for nodes the verifier checks for liveness instead of attesting (no TPM). */
export function checkedForLiveness(level: TrustLevel): boolean {
  return !trustLevelHasEvidence(level);
}

/** How `foreignEnrolment` names a liveness enrolment in its refusal. */
const LIVENESS_ENROLMENT = 'enrolled for liveness checks with the verifier';

/** The verifier's liveness enrolment of the agent, or undefined when it has none. */
async function readLivenessEnrolment(liveness: LivenessClient, agentId: string): Promise<LivenessStatusReply | undefined> {
  return (await readLivenessEnrolmentAt(liveness, agentId))?.status;
}

/**
 * `readLivenessEnrolment` with the verifier's clock when it answered, when its reply carried a `Date` header.
 * @throws BadRemoteReplyError for a reply about another agent: its `alive` must never stand in for this one's.
 */
async function readLivenessEnrolmentAt(liveness: LivenessClient, agentId: string): Promise<{ readonly status: LivenessStatusReply; readonly verifierTime: number | undefined } | undefined> {
  let read: { readonly status: LivenessStatusReply; readonly verifierTime: number | undefined };
  try {
    read = await liveness.statusAt(agentId);
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) return undefined;
    throw error;
  }
  if (read.status.agent_id !== agentId) {
    throw new BadRemoteReplyError(`verifier liveness status of agent ${agentId}`, `it names agent ${JSON.stringify(read.status.agent_id.slice(0, 64))}: not trusted`);
  }
  return read;
}

/** Why a liveness enrolment is not this node's (no `metadata`: a verifier older than the field), or undefined. */
function foreignLiveness(enrolled: LivenessStatusReply, nodeUuid: string, agentId: string): string | undefined {
  return foreignEnrolment({ metaData: enrolled.metadata ?? '' }, nodeUuid, agentId, LIVENESS_ENROLMENT);
}

/**
 * Enrols a node without a TPM for liveness checks, with what the registrar holds (address, certificate,
 * proof key) and the node's uuid in `metadata`; re-enrols only an enrolment this node made (picking up
 * an address the agent moved to), and never a `failed` one: a failed verdict stays failed, as a TPM
 * agent's does (docs/keylime-driver.md), until the node is torn down (`unregisterNode`). Resolves
 * `kept-failed` when it left such an enrolment, else `enrolled`.
 *
 * @throws AttestationFailed when another node's enrolment (or one made for no node) holds the agent,
 *   or the registrar now holds it in a TPM mode (never enrolled as `id-only`).
 */
export async function enrolForLiveness(connection: KeylimeConnection, liveness: LivenessClient, agentId: string, nodeUuid: string): Promise<'enrolled' | 'kept-failed'> {
  const enrolled = await readLivenessEnrolment(liveness, agentId);
  const foreign = enrolled === undefined ? undefined : foreignLiveness(enrolled, nodeUuid, agentId);
  if (foreign !== undefined) throw new AttestationFailed([foreign]);
  if (enrolled?.liveness_status === 'failed') return 'kept-failed';
  const identity = await connection.registrar.identity(agentId);
  // Read apart from the level that sent the node here: the agent may have registered with a TPM since.
  if (identity.identity_mode !== 'id-secret' && identity.identity_mode !== 'id-only') {
    throw new AttestationFailed([`agent ${agentId} is registered in mode ${identity.identity_mode}, which is attested, not checked for liveness: start again`]);
  }
  if (identity.ip === null || identity.port === null || identity.mtls_cert === null || identity.mtls_cert === 'disabled') {
    throw new AttestationFailed([`agent ${agentId} registered no address or certificate to be checked at`]);
  }
  await liveness.enrol(agentId, {
    mode: identity.identity_mode,
    ip: identity.ip,
    port: identity.port,
    mtlsCert: identity.mtls_cert,
    proofKey: identity.host_proof_key,
    metadata: { node: nodeUuid },
  });
  return 'enrolled';
}

/**
 * The verifier's liveness status of this node's enrolment as a verdict (`judgeLivenessStatus`): a
 * fresh `alive` passes (the step's gate already decided whether a node without integrity evidence may
 * go on), a stale one and `pending` wait, the rest fail, and so does another node's enrolment of the
 * agent. `staleAfterSeconds` is the driver option (undefined: the verifier's bound, else the derived one).
 */
export async function readLivenessVerdict(
  liveness: LivenessClient,
  agentId: string,
  nodeUuid: string,
  options: { readonly staleAfterSeconds?: number | undefined; readonly now?: number } = {},
): Promise<StatusVerdict> {
  const read = await readLivenessEnrolmentAt(liveness, agentId);
  if (read === undefined) {
    return { kind: 'fail', reasons: [`agent ${agentId} is not enrolled for liveness checks with the verifier`], eventIds: [] };
  }
  const { status, verifierTime } = read;
  const foreign = foreignLiveness(status, nodeUuid, agentId);
  if (foreign !== undefined) return { kind: 'fail', reasons: [foreign], eventIds: [] };
  return judgeLivenessStatus(
    {
      status: status.liveness_status,
      lastSeen: status.last_seen ?? null,
      lastFailure: status.last_failure ?? null,
      integrityEvidence: status.integrity_evidence,
      freshnessBoundSeconds: status.freshness_bound,
      stale: status.stale,
    },
    { now: options.now ?? Date.now() / 1000, verifierNow: verifierTime, staleAfterSeconds: options.staleAfterSeconds },
  );
}

/**
 * Removes this node's liveness enrolment of the agent. Returns why nothing was removed (none, another
 * node's, or with `keepFailed` a failed one: left alone), else undefined.
 */
export async function removeOwnLiveness(liveness: LivenessClient, agentId: string, nodeUuid: string, keepFailed = false): Promise<string | undefined> {
  const enrolled = await readLivenessEnrolment(liveness, agentId);
  if (enrolled === undefined) return `agent ${agentId} is not enrolled for liveness checks with the verifier`;
  const foreign = foreignLiveness(enrolled, nodeUuid, agentId);
  if (foreign !== undefined) return foreign;
  if (keepFailed && enrolled.liveness_status === 'failed') {
    return `agent ${agentId} failed its liveness checks before it was registered with a TPM: tear the node down to attest it afresh`;
  }
  try {
    await liveness.remove(agentId);
  } catch (error) {
    if (!(error instanceof KeylimeHttpError && error.remoteHttpStatus === 404)) throw error;
  }
  return undefined;
}
