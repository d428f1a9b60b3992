import type { StoredAgent } from './registrar-agent-repository.js';
import { RegistrationConflict } from './registrar-errors.js';
import type { CheckedRegistration } from './registration-check.js';

/**
 * The record a registration leaves behind, given what is stored (Keylime
 * `models/registrar/registrar_agent.py`, spec §1.3 steps 2, 7 and 8):
 * - once an EK, EK certificate or AK is stored, a different value — or dropping the EK certificate —
 *   is refused with 403; only a previously absent EK certificate may be added;
 * - `regcount` grows by one whenever an identity field changes (so 1 after the first registration);
 * - `active` is reset when the EK or AK changes, otherwise kept; the new activation key always
 *   replaces the old one (every registration issues a fresh challenge).
 * Contact fields (`ip`, `port`, `mtls_cert`) are simply replaced.
 *
 * @throws RegistrationConflict when the TPM identity differs from the stored one.
 */
export function decideRegistration(
  agentId: string,
  current: StoredAgent | undefined,
  checked: CheckedRegistration,
  activationKey: string,
): Omit<StoredAgent, 'agentId'> {
  const ekCert = checked.ekCertDer === null ? null : Buffer.from(checked.ekCertDer).toString('base64');
  if (current !== undefined) {
    const differing = [
      current.ekTpm !== checked.ekTpm ? 'ek_tpm' : undefined,
      current.aikTpm !== checked.aikTpm ? 'aik_tpm' : undefined,
      current.ekCert !== null && current.ekCert !== ekCert ? 'ekcert' : undefined,
    ].filter((field) => field !== undefined);
    if (differing.length > 0) {
      throw new RegistrationConflict(
        `Agent re-registration with different TPM identity is forbidden (${differing.join(', ')} of agent ` +
          `'${agentId}' differ from the stored ones); delete the agent first if its TPM really changed`,
      );
    }
  }
  const identityChanged =
    current === undefined ||
    current.ekTpm !== checked.ekTpm ||
    current.aikTpm !== checked.aikTpm ||
    current.ekCert !== ekCert;
  return {
    ekTpm: checked.ekTpm,
    ekCert,
    aikTpm: checked.aikTpm,
    activationKey,
    active: current === undefined ? false : current.active,
    ip: checked.ip,
    port: checked.port,
    mtlsCert: checked.mtlsCert,
    regcount: (current?.regcount ?? 0) + (identityChanged ? 1 : 0),
  };
}
