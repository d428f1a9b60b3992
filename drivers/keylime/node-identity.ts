import { AttestationFailed } from '../../interfaces/errors.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { createKeylimeClient } from '../../lib/http/keylime-client.js';
import { trustLevelHasEvidence, type TrustLevel } from '../../lib/identity/trust-level.js';
import type { TenantEkCheckMode } from '../../lib/tenant/ek-certificate-check.js';
import { LivenessClient } from '../../lib/verifier/liveness/liveness-client.js';
import type { KeylimeConnection } from './keylime-connection.js';
import type { KeylimeNodeSettings } from './keylime-driver-info.js';
import type { StatusVerdict } from '../../lib/attestation/operator-decision.js';

/**
 * The node's trust level from the registrar (`GET /agents/{id}`, ironlime's `trust_level`). A Keylime
 * registrar does not say: its agents have a TPM, and count as `hardware-tpm` only when the driver
 * itself checks the EK certificate against the vendor store (`ekCheck: require`, done before every
 * enrolment), else `emulated-tpm`.
 *
 * @throws AttestationFailed when the registrar does not know the agent (or it is not activated).
 */
export async function readTrustLevel(connection: KeylimeConnection, agentId: string, ekCheck: TenantEkCheckMode): Promise<TrustLevel> {
  try {
    const shown = await connection.registrar.show(agentId);
    return shown.trust_level ?? (ekCheck === 'require' ? 'hardware-tpm' : 'emulated-tpm');
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

/** Runs `use` with a liveness client on the verifier (the same TLS material as the verifier client). */
export async function withLivenessClient<T>(settings: KeylimeNodeSettings, connection: KeylimeConnection, timeoutMs: number, use: (client: LivenessClient) => Promise<T>): Promise<T> {
  const https = settings.verifierUrl.toLowerCase().startsWith('https:');
  const { ca, cert, key } = connection.tls;
  const http = createKeylimeClient({
    baseUrl: settings.verifierUrl,
    timeoutMs,
    ...(https ? { tls: { ...(ca === undefined ? {} : { ca }), ...(cert === undefined || key === undefined ? {} : { cert, key }) } } : {}),
  });
  try {
    return await use(new LivenessClient(http));
  } finally {
    http.close();
  }
}

/** Enrols a node without a TPM for liveness checks, with what the registrar holds (address, certificate, proof key). */
export async function enrolForLiveness(connection: KeylimeConnection, liveness: LivenessClient, agentId: string): Promise<void> {
  const identity = await connection.registrar.identity(agentId);
  if (identity.ip === null || identity.port === null || identity.mtls_cert === null || identity.mtls_cert === 'disabled') {
    throw new AttestationFailed([`agent ${agentId} registered no address or certificate to be checked at`]);
  }
  await liveness.enrol(agentId, {
    mode: identity.identity_mode === 'id-secret' ? 'id-secret' : 'id-only',
    ip: identity.ip,
    port: identity.port,
    mtlsCert: identity.mtls_cert,
    proofKey: identity.host_proof_key,
  });
}

/**
 * The verifier's liveness status as a verdict: `alive` passes (the step's gate already decided
 * whether a node without integrity evidence may go on), `pending` waits, the rest fail.
 */
export async function readLivenessVerdict(liveness: LivenessClient, agentId: string): Promise<StatusVerdict> {
  let status;
  try {
    status = await liveness.status(agentId);
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
      return { kind: 'fail', reasons: [`agent ${agentId} is not enrolled for liveness checks with the verifier`], eventIds: [] };
    }
    throw error;
  }
  if (status.liveness_status === 'alive') return { kind: 'pass' };
  if (status.liveness_status === 'pending') return { kind: 'pending', why: 'no liveness check answered yet' };
  return { kind: 'fail', reasons: [`liveness ${status.liveness_status}: ${status.last_failure ?? 'no reason given'}; ${status.integrity_evidence}`], eventIds: [] };
}

/** Removes a liveness enrolment; none is fine. */
export async function removeLiveness(liveness: LivenessClient, agentId: string): Promise<void> {
  try {
    await liveness.remove(agentId);
  } catch (error) {
    if (!(error instanceof KeylimeHttpError && error.remoteHttpStatus === 404)) throw error;
  }
}
