import type { KeyObject } from 'node:crypto';
import { isQuoteHashAlg } from './algorithms.js';
import { checkQuote } from './internal/quote-check.js';

export interface IdentityQuoteInput {
  readonly quote: string;
  /** The `nonce` query parameter; its ASCII bytes are the qualifying data. */
  readonly nonce: string;
  readonly hashAlg: string;
  /** The enrolled agent's `ak_tpm` (base64 TPM2B_PUBLIC), its bytes, or a cached key. */
  readonly akTpm: string | Uint8Array | KeyObject;
}

/** The `results` of `GET /verify/identity`: Keylime answers 1/0, not booleans. */
export type IdentityQuoteResult = { readonly valid: 1 } | { readonly valid: 0; readonly reason: string };

/**
 * `GET /v2.x/verify/identity` (spec §4.6): checks only that the quote is signed by the enrolled AK,
 * carries the nonce and that its PCR blob hashes to pcrDigest — the same lib/tpm quote check the other
 * paths use, without PCR values, PCR 16 binding or the TPM clock.
 */
export function verifyIdentityQuote(input: IdentityQuoteInput): IdentityQuoteResult {
  if (!isQuoteHashAlg(input.hashAlg)) {
    return { valid: 0, reason: `unsupported hash algorithm "${input.hashAlg}"` };
  }
  const outcome = checkQuote({
    quote: input.quote,
    akTpm: input.akTpm,
    nonce: new Uint8Array(Buffer.from(input.nonce, 'utf8')),
    hashAlg: input.hashAlg,
  });
  if (!outcome.ok) {
    return { valid: 0, reason: String(outcome.event.context['error'] ?? outcome.event.eventId) };
  }
  return { valid: 1 };
}
