import type { ContactDetails, StoredAgent } from './registrar-agent-repository.js';
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
 *
 * Contact fields (`ip`, `port`, `mtls_cert`) of an agent that is not active yet are replaced. Those of
 * an ACTIVE agent are not: the EK, EK certificate and AK are public, so anyone can repeat a
 * registration with them. New contact details are kept aside (`pendingContact`) and take effect only
 * when the agent answers the fresh challenge (`applyActivation`), the proof a first registration
 * needs too (stricter than Keylime, which replaces them at once — issue 11 item 3).
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
  const offered: ContactDetails = { ip: checked.ip, port: checked.port, mtlsCert: checked.mtlsCert };
  const active = current === undefined ? false : current.active;
  const contact = active && current !== undefined ? contactOf(current) : offered;
  return {
    ekTpm: checked.ekTpm,
    ekCert,
    aikTpm: checked.aikTpm,
    activationKey,
    active,
    ...contact,
    pendingContact: active && !sameContact(contact, offered) ? offered : null,
    regcount: (current?.regcount ?? 0) + (identityChanged ? 1 : 0),
  };
}

/**
 * The record after a successful activation: active, with any pending contact details now in force.
 */
export function applyActivation(current: StoredAgent): Omit<StoredAgent, 'agentId'> {
  const { agentId: _agentId, ...rest } = current;
  return { ...rest, active: true, ...(current.pendingContact ?? contactOf(current)), pendingContact: null };
}

function contactOf(agent: StoredAgent): ContactDetails {
  return { ip: agent.ip, port: agent.port, mtlsCert: agent.mtlsCert };
}

function sameContact(a: ContactDetails, b: ContactDetails): boolean {
  return a.ip === b.ip && a.port === b.port && a.mtlsCert === b.mtlsCert;
}
