import type { RevocationState } from './broker-repository.js';

/**
 * Whether a node's revocation refuses a credential issued at `issuedAtMs` (a session's start or
 * attestation, a token's `iat`): always while the revocation is in force; after a reinstatement, every
 * credential issued before it. A token's `iat` has whole seconds, so tokens compare in seconds: one of
 * the reinstatement's second is accepted, unless that is also the revocation's second (`revokedAt`,
 * whole seconds), where it may have been issued before the revocation — a token of a revocation's
 * second is refused whenever the revocation was reinstated (so a reinstatement in that second is
 * recorded at the next one and answers then: `RevocationStore.recordReinstatement`). Sessions carry milliseconds and compare in
 * them, one of the very millisecond refused. A reinstatement therefore never re-enables a session or
 * token from before the revocation, nor a token a foreign issuer signed while this broker had the node
 * revoked. Returns the refusal's reason, or undefined. Pure.
 */
export function revocationRefusal(
  revocation: RevocationState | undefined,
  issuedAtMs: number,
  precision: 'seconds' | 'milliseconds' = 'seconds',
): string | undefined {
  if (revocation === undefined) {
    return undefined;
  }
  if (revocation.reinstatedAt === null) {
    return 'is revoked';
  }
  const before =
    precision === 'seconds'
      ? Math.floor(issuedAtMs / 1000) < Math.floor(revocation.reinstatedAt / 1000) || Math.floor(issuedAtMs / 1000) <= revocation.revokedAt
      : issuedAtMs <= revocation.reinstatedAt;
  if (before) {
    return 'was reinstated after this credential was issued: attest again';
  }
  return undefined;
}
