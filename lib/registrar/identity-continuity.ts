import { TRUST_LEVELS, type IdentityMode, type TrustLevel } from '../identity/trust-level.js';

/** What a registration claims about the host, before anything is stored. */
export interface OfferedIdentity {
  readonly mode: IdentityMode;
  /** The level the registrar grants this registration (a `tpm` EK that does not chain is `emulated-tpm`). */
  readonly trustLevel: TrustLevel;
  /** base64 TPM2B_PUBLIC of the EK; null without a TPM. */
  readonly ekTpm: string | null;
  /** sha256 of the host id (`lib/identity/host-id.ts`); null when the agent sent none (TPM modes may omit it). */
  readonly hostIdHash: string | null;
  /** hex proof key of an `id-secret` host; null when not sent (it is sent at first registration only). */
  readonly hostProofKey: string | null;
}

/** The part of a stored registration that continuity is judged against. */
export interface StoredIdentity {
  readonly agentId: string;
  readonly identityMode: IdentityMode;
  readonly trustLevel: TrustLevel;
  readonly ekTpm: string | null;
  readonly hostIdHash: string | null;
  readonly hostProofKey: string | null;
  /** A mode an admin allowed the next registration to switch to. */
  readonly modeChangeTo: IdentityMode | null;
}

export type ContinuityDecision =
  /** `fresh`: an admin allowed this mode change, so the stored identity is replaced, not compared. */
  | { readonly kind: 'accept'; readonly fresh: boolean }
  /** `flag`: the agent id whose record is marked with the refusal (the stronger one it tried to undercut). */
  | { readonly kind: 'refuse'; readonly reason: string; readonly flag: string };

/**
 * No silent downgrade (issue 15 item 5): decides whether a registration may continue the identity
 * stored under its agent id and under its host id.
 * - A host id already held by ANOTHER agent id at a stronger level refuses a weaker registration: a
 *   machine that had a TPM cannot come back without one under a new name.
 * - Under the same agent id, the mode must be the stored one unless an admin allowed the change
 *   (`modeChangeTo`); then the identity starts afresh.
 * - Same mode: another host id, or (`id-secret`) another proof key is refused; a host that lost its
 *   secret made a new one, which is indistinguishable from an impostor. Another EK or AK is refused
 *   by `decideRegistration` with Keylime's own message (and flagged by the service).
 * Pure: the caller stores nothing on a refusal but the flag.
 */
export function decideIdentityContinuity(
  current: StoredIdentity | undefined,
  sameHost: readonly StoredIdentity[],
  offered: OfferedIdentity,
): ContinuityDecision {
  const stronger = sameHost.find((other) => (current === undefined || other.agentId !== current.agentId) && rank(other.trustLevel) > rank(offered.trustLevel));
  if (stronger !== undefined) {
    return {
      kind: 'refuse',
      reason: `its host id is registered as agent '${stronger.agentId}' at trust level ${stronger.trustLevel}; a ${offered.trustLevel} registration of the same host is refused`,
      flag: stronger.agentId,
    };
  }
  const claimed = sameHost.find(
    (other) => (current === undefined || other.agentId !== current.agentId) && other.identityMode === 'id-secret' && offered.mode === 'id-secret' && other.hostProofKey !== offered.hostProofKey,
  );
  if (claimed !== undefined) {
    return { kind: 'refuse', reason: `its host id belongs to id-secret agent '${claimed.agentId}', whose secret it does not hold`, flag: claimed.agentId };
  }
  if (current === undefined) return { kind: 'accept', fresh: false };
  const refuse = (reason: string): ContinuityDecision => ({ kind: 'refuse', reason, flag: current.agentId });
  if (current.modeChangeTo !== null && current.modeChangeTo === offered.mode) return { kind: 'accept', fresh: true };
  if (offered.mode !== current.identityMode) {
    return refuse(`it is registered as ${current.identityMode} (${current.trustLevel}) and came back as ${offered.mode}; changing its mode is an admin action`);
  }
  if (current.hostIdHash !== null && offered.hostIdHash !== null && current.hostIdHash !== offered.hostIdHash) {
    return refuse('it came back with another host id');
  }
  if (offered.mode === 'id-secret' && offered.hostProofKey !== null && offered.hostProofKey !== current.hostProofKey) {
    return refuse('it presented another host secret (a host that lost its secret must be re-registered by an admin)');
  }
  if (current.trustLevel !== offered.trustLevel && rank(offered.trustLevel) < rank(current.trustLevel)) {
    return refuse(`it was ${current.trustLevel} and would now be ${offered.trustLevel}`);
  }
  return { kind: 'accept', fresh: false };
}

function rank(level: TrustLevel): number {
  return TRUST_LEVELS.indexOf(level);
}
