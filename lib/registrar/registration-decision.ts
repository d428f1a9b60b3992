import { sameProofKey } from '../identity/host-secret-proof.js';
import type { IdentityMode, TrustLevel } from '../identity/trust-level.js';
import type { ContactDetails, StoredAgent } from './registrar-agent-repository.js';
import { InvalidAgentData, RegistrationConflict } from './registrar-errors.js';

/** A registration as the registrar is about to store it, in any identity mode. */
export interface RegistrationOffer {
  readonly identityMode: IdentityMode;
  readonly trustLevel: TrustLevel;
  /** Canonical base64 of the EK TPM2B_PUBLIC; null without a TPM. */
  readonly ekTpm: string | null;
  /** sha256 of the EK public key (`ekKeyHash`); null without a TPM. */
  readonly ekKeyHash: string | null;
  /** DER of the EK certificate; null when none was sent (always without a TPM). */
  readonly ekCertDer: Uint8Array | null;
  readonly aikTpm: string | null;
  readonly hostIdHash: string | null;
  readonly hostProofKey: string | null;
  readonly ip: string | null;
  readonly port: number | null;
  readonly mtlsCert: string | null;
}

/**
 * The record a registration leaves behind, given what is stored (Keylime
 * `models/registrar/registrar_agent.py`, spec §1.3 steps 2, 7 and 8):
 * - once an ACTIVATED record holds an EK, EK certificate or AK, a different value — or dropping the EK
 *   certificate — is refused with 403; only a previously absent EK certificate may be added;
 * - a NEVER-ACTIVATED record claiming another identity (EK, AK, EK certificate, mode, host id — also
 *   none where it had one — or host proof key) is replaced as a new one would be: it proved nothing, and anyone can register a
 *   predictable id (Keylime's hash_ek) with a TPM's public EK and EK certificate and a made-up AK, so
 *   keeping it would lock the real agent out (hunt H6). Its host id, flags and allowed mode go with it;
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
 * Without a TPM (docs/identity.md): an `id-secret` host answers a nonce instead of a credential, so
 * it follows the same rules; its proof key is sent at first registration only and kept. An `id-only`
 * host has nothing to prove: it is active at once and its contact details are whatever it last sent.
 * `fresh` (an admin allowed a mode change) replaces the stored identity instead of comparing it.
 * Continuity across modes and host ids is judged before, by `decideIdentityContinuity`.
 *
 * @throws RegistrationConflict when the TPM identity differs from the one an activated record holds.
 * @throws InvalidAgentData when an `id-secret` host registers for the first time without a proof key.
 */
export function decideRegistration(
  agentId: string,
  stored: StoredAgent | undefined,
  offer: RegistrationOffer,
  activationKey: string,
  fresh = false,
): Omit<StoredAgent, 'agentId'> {
  const ekCert = offer.ekCertDer === null ? null : Buffer.from(offer.ekCertDer).toString('base64');
  const replaced = fresh || (stored !== undefined && !stored.active && claimsAnotherIdentity(stored, offer, ekCert));
  const current = replaced ? undefined : stored;
  if (current !== undefined) {
    const differing = [
      current.ekTpm !== offer.ekTpm ? 'ek_tpm' : undefined,
      current.aikTpm !== offer.aikTpm ? 'aik_tpm' : undefined,
      current.ekCert !== null && current.ekCert !== ekCert ? 'ekcert' : undefined,
    ].filter((field) => field !== undefined);
    if (differing.length > 0) {
      throw new RegistrationConflict(
        `Agent re-registration with different TPM identity is forbidden (${differing.join(', ')} of agent ` +
          `'${agentId}' differ from the stored ones); delete the agent first if its TPM really changed`,
      );
    }
  }
  const hostProofKey = offer.hostProofKey ?? current?.hostProofKey ?? null;
  if (offer.identityMode === 'id-secret' && hostProofKey === null) {
    throw new InvalidAgentData('host_proof_key', 'an id-secret host sends its proof key at first registration');
  }
  const identityChanged =
    current === undefined ||
    current.ekTpm !== offer.ekTpm ||
    current.aikTpm !== offer.aikTpm ||
    current.ekCert !== ekCert ||
    current.hostIdHash !== (offer.hostIdHash ?? current.hostIdHash);
  const offered: ContactDetails = { ip: offer.ip, port: offer.port, mtlsCert: offer.mtlsCert };
  const provable = offer.identityMode !== 'id-only';
  const active = !provable || (current === undefined ? false : current.active);
  const contact = provable && active && current !== undefined ? contactOf(current) : offered;
  return {
    ekTpm: offer.ekTpm,
    ekCert,
    aikTpm: offer.aikTpm,
    activationKey,
    active,
    ...contact,
    pendingContact: provable && active && !sameContact(contact, offered) ? offered : null,
    regcount: (stored?.regcount ?? 0) + (identityChanged ? 1 : 0),
    identityMode: offer.identityMode,
    trustLevel: offer.trustLevel,
    hostIdHash: offer.hostIdHash ?? current?.hostIdHash ?? null,
    hostProofKey,
    modeChangeTo: current?.modeChangeTo ?? null,
    flaggedReason: current?.flaggedReason ?? null,
  };
}

/**
 * The record after a successful activation: active, with any pending contact details now in force,
 * and `spentKey` in place of the activation key, so the same proof cannot activate twice (a TPM
 * credential or an `id-secret` nonce becomes `spentActivationKey` of the accepted proof).
 */
export function applyActivation(current: StoredAgent, spentKey: string): Omit<StoredAgent, 'agentId'> {
  const { agentId: _agentId, ...rest } = current;
  return {
    ...rest,
    active: true,
    ...(current.pendingContact ?? contactOf(current)),
    pendingContact: null,
    activationKey: spentKey,
  };
}

/**
 * True when the offer names an identity other than the stored never-activated one (an EK certificate
 * added to a record without one is the same identity; a host id left out is another).
 */
function claimsAnotherIdentity(stored: StoredAgent, offer: RegistrationOffer, ekCert: string | null): boolean {
  return (
    stored.identityMode !== offer.identityMode ||
    stored.ekTpm !== offer.ekTpm ||
    stored.aikTpm !== offer.aikTpm ||
    (stored.ekCert !== null && stored.ekCert !== ekCert) ||
    // The host id of a record that proved nothing is only what its latest registration names: carried
    // over, it would be held after an activation that never claimed it (EK and AK are public).
    stored.hostIdHash !== offer.hostIdHash ||
    (offer.hostProofKey !== null && !sameProofKey(stored.hostProofKey, offer.hostProofKey))
  );
}

function contactOf(agent: StoredAgent): ContactDetails {
  return { ip: agent.ip, port: agent.port, mtlsCert: agent.mtlsCert };
}

function sameContact(a: ContactDetails, b: ContactDetails): boolean {
  return a.ip === b.ip && a.port === b.port && a.mtlsCert === b.mtlsCert;
}
