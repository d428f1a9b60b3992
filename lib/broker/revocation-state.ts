import type { RevocationState } from './broker-repository.js';

/**
 * Whether a node's revocation refuses a credential issued at `issuedAtMs` (a session's attestation, a
 * token's `iat`): always while the revocation is in force; after a reinstatement, every credential
 * issued before it (compared in whole seconds, a token's `iat` resolution). A reinstatement therefore
 * never re-enables a token from before the revocation, nor one a foreign issuer signed while this
 * broker had the node revoked. Returns the refusal's reason, or undefined. Pure.
 */
export function revocationRefusal(revocation: RevocationState | undefined, issuedAtMs: number): string | undefined {
  if (revocation === undefined) {
    return undefined;
  }
  if (revocation.reinstatedAt === null) {
    return 'is revoked';
  }
  if (Math.floor(issuedAtMs / 1000) < Math.floor(revocation.reinstatedAt / 1000)) {
    return 'was reinstated after this credential was issued: attest again';
  }
  return undefined;
}
