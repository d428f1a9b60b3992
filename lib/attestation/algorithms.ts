/**
 * Algorithm names as the agent reports them in `hash_alg`, `enc_alg` and `sign_alg` (tpm2-tools names;
 * keylime/common/algorithms.py; spec §2 "Response details") and the accept-list test of spec §7.1.
 */

/** Hash algorithms Keylime recognises for quotes and PCR banks. */
export const QUOTE_HASH_ALGS = ['sha1', 'sha256', 'sha384', 'sha512', 'sm3_256'] as const;
export type QuoteHashAlg = (typeof QUOTE_HASH_ALGS)[number];

/** Signing schemes an agent may report. */
export const QUOTE_SIGN_ALGS = ['rsassa', 'rsapss', 'ecdsa', 'ecdaa', 'ecschnorr'] as const;
export type QuoteSignAlg = (typeof QUOTE_SIGN_ALGS)[number];

/** True when `name` is a hash algorithm Keylime recognises (`Hash.is_recognized`). */
export function isQuoteHashAlg(name: string): name is QuoteHashAlg {
  return (QUOTE_HASH_ALGS as readonly string[]).includes(name);
}

/**
 * Keylime's `Encrypt.normalize`: the unsized names `rsa` and `ecc` mean RSA-2048 and P-256, which is
 * what API ≥ 2.5 agents report (`rsa2048`, `ecc256`). Other names are returned unchanged.
 */
export function normalizeEncAlg(name: string): string {
  if (name === 'rsa') {
    return 'rsa2048';
  }
  if (name === 'ecc') {
    return 'ecc256';
  }
  return name;
}

/**
 * Keylime's `algorithms.is_accepted`: exact membership, or equality after `normalizeEncAlg` on both
 * sides (so a tenant's default `["ecc","rsa"]` accepts an agent's `rsa2048`).
 */
export function isAlgorithmAccepted(name: string, accepted: readonly string[]): boolean {
  if (accepted.includes(name)) {
    return true;
  }
  const normalized = normalizeEncAlg(name);
  return accepted.some((candidate) => normalizeEncAlg(candidate) === normalized);
}
