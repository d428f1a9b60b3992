import { sameProofKey } from '../identity/host-secret-proof.js';
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
  /** Activated (its TPM credential or host proof answered; `id-only` at once): only then does it hold its host id. */
  readonly active: boolean;
}

export type ContinuityDecision =
  /** `fresh`: an admin allowed this mode change, so the stored identity is replaced, not compared. */
  | { readonly kind: 'accept'; readonly fresh: boolean }
  /** `flag`: the agent id whose record is marked with the refusal (the stronger one it tried to undercut). */
  | { readonly kind: 'refuse'; readonly reason: string; readonly flag: string };

/**
 * No silent downgrade (issue 15 item 5): decides whether a registration may continue the identity
 * stored under its agent id and under its host id.
 * - A host id is held only by ACTIVATED records (registration is open to anyone who knows a MAC or
 *   UUID; an activation is a proof). A registration that does not hold the host id it names yet is
 *   judged by `decideHostIdClaim` against the holders: a machine that had a TPM cannot come back
 *   without one under a new name. An active record coming back with the host id it holds continues:
 *   a holder that came later never displaces it (the first activated record keeps the host id; an
 *   admin resolves a conflict by deleting an agent).
 * - Under the same agent id, a never-activated record blocks nothing: it is replaced (hunt H6). An
 *   activated one continues: the mode must be the stored one unless an admin allowed the change
 *   (`modeChangeTo`); then the identity starts afresh.
 * - Same mode: another host id, a host id added to an activated record (it would hold it without a
 *   proof), or (`id-secret`) another proof key is refused; a host that lost its
 *   secret made a new one, which is indistinguishable from an impostor. Another EK or AK is refused
 *   by `decideRegistration` with Keylime's own message (and flagged by the service).
 * Pure: the caller stores nothing on a refusal but the flag.
 */
export function decideIdentityContinuity(
  current: StoredIdentity | undefined,
  sameHost: readonly StoredIdentity[],
  offered: OfferedIdentity,
): ContinuityDecision {
  const fresh = current !== undefined && current.modeChangeTo !== null && current.modeChangeTo === offered.mode;
  // An admin-allowed mode change starts a new identity, which must claim the host id again.
  const holds = current !== undefined && current.active && !fresh && current.hostIdHash !== null && current.hostIdHash === offered.hostIdHash;
  if (!holds) {
    const claim = decideHostIdClaim(current?.agentId, sameHost, offered);
    if (claim.kind === 'refuse') return claim;
  }
  if (current === undefined) return { kind: 'accept', fresh: false };
  if (fresh) return { kind: 'accept', fresh: true };
  // A never-activated record proved nothing and holds nothing: another identity replaces it (decideRegistration).
  if (!current.active) return { kind: 'accept', fresh: false };
  const refuse = (reason: string): ContinuityDecision => ({ kind: 'refuse', reason, flag: current.agentId });
  if (offered.mode !== current.identityMode) {
    return refuse(`it is registered as ${current.identityMode} (${current.trustLevel}) and came back as ${offered.mode}; changing its mode is an admin action`);
  }
  if (current.hostIdHash !== null && offered.hostIdHash !== null && current.hostIdHash !== offered.hostIdHash) {
    return refuse('it came back with another host id');
  }
  if (current.active && current.hostIdHash === null && offered.hostIdHash !== null) {
    // A repeated registration proves nothing (a TPM's EK and AK are public) and would leave this active record holding the host id unproven.
    return refuse('it was activated without a host id and came back with one; an admin deletes the agent so that it registers and activates with it');
  }
  if (offered.mode === 'id-secret' && offered.hostProofKey !== null && !sameProofKey(offered.hostProofKey, current.hostProofKey)) {
    return refuse('it presented another host secret (a host that lost its secret must be re-registered by an admin)');
  }
  if (current.trustLevel !== offered.trustLevel && rank(offered.trustLevel) < rank(current.trustLevel)) {
    return refuse(`it was ${current.trustLevel} and would now be ${offered.trustLevel}`);
  }
  return { kind: 'accept', fresh: false };
}

/**
 * Whether the record of `agentId` (undefined: a new one) may take its host id, judged against the
 * records of other agent ids that hold it (`sameHost`, of which only the activated ones count). Asked
 * at registration, and again when the record activates, so that of two records that would exclude
 * each other only the first activated keeps the host id:
 * - a holder at a stronger level refuses a weaker record;
 * - an `id-secret` holder refuses an `id-secret` record with another proof key.
 * The refusal names the holder, whose record the caller flags.
 */
export function decideHostIdClaim(agentId: string | undefined, sameHost: readonly StoredIdentity[], offered: OfferedIdentity): ContinuityDecision {
  const holders = sameHost.filter((other) => other.active && other.agentId !== agentId);
  const stronger = holders.find((other) => rank(other.trustLevel) > rank(offered.trustLevel));
  if (stronger !== undefined) {
    return {
      kind: 'refuse',
      reason: `its host id is registered as agent '${stronger.agentId}' at trust level ${stronger.trustLevel}; a ${offered.trustLevel} registration of the same host is refused`,
      flag: stronger.agentId,
    };
  }
  const claimed = holders.find((other) => other.identityMode === 'id-secret' && offered.mode === 'id-secret' && !sameProofKey(other.hostProofKey, offered.hostProofKey));
  if (claimed !== undefined) {
    return { kind: 'refuse', reason: `its host id belongs to id-secret agent '${claimed.agentId}', whose secret it does not hold`, flag: claimed.agentId };
  }
  return { kind: 'accept', fresh: false };
}

function rank(level: TrustLevel): number {
  return TRUST_LEVELS.indexOf(level);
}
