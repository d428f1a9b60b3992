import type { KeyObject } from 'node:crypto';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { parseQuoteString, type QuoteParts } from './quote-string.js';
import { tpmSignatureVerifies } from './tpm-signature-check.js';
import { isEccSignature, parseTpmtSignatureInPlace, type TpmtSignature } from './tpmt-signature.js';

/**
 * The answer to "does `signature` over `signed` verify with `key`", worked out ahead of the quote
 * check (`verifyQuoteSignatureAhead`), with the quote's decoded parts. It is bound to exactly what it answered:
 * `checkSignedAttest` uses it only for the same key object, the same signature and the same signed
 * bytes, and verifies anything else itself. Nothing but the cryptographic fact is carried; every other
 * check (scheme, hash, nonce, PCR digest, clock) still runs where it always did.
 */
export interface SignatureVerdict {
  readonly key: KeyObject;
  readonly signature: TpmtSignature;
  readonly signed: Uint8Array;
  readonly valid: boolean;
  /**
   * The quote string the verdict was worked out from, and its decoded parts (`signed` is `parts.attest`,
   * `signature` is parsed from `parts.signature`): the quote check takes them instead of decoding the
   * same text again, and only for this very text.
   */
  readonly quote?: { readonly text: string; readonly parts: QuoteParts };
}

/**
 * Verifies the signature of a Keylime quote string, on the event loop: handing an ECDSA P-256 verify
 * to libuv's thread pool cost the process more CPU than the verify itself (the futex wake of a pool
 * thread and the completion's wake of the event loop; docs/fleet.md, seventeenth pass). Undefined when
 * the quote is not a string or its parts do not parse: the quote check then reports that itself.
 */
export function verifyQuoteSignatureAhead(key: KeyObject, quote: unknown): SignatureVerdict | undefined {
  if (typeof quote !== 'string') {
    return undefined;
  }
  let parts: QuoteParts;
  let signature: TpmtSignature;
  try {
    parts = parseQuoteString(quote);
    signature = parseTpmtSignatureInPlace(parts.signature);
  } catch {
    return undefined;
  }
  const valid = tpmSignatureVerifies(key, signature, parts.attest);
  return { key, signature, signed: parts.attest, valid, quote: { text: quote, parts } };
}

/** The verdict's answer when it is about exactly this key, signature and signed bytes; undefined otherwise. */
export function verdictFor(verdict: SignatureVerdict | undefined, key: KeyObject, signature: TpmtSignature, signed: Uint8Array): boolean | undefined {
  // The pull round hands the verdict's own parsed signature and attest bytes back: identical objects need no byte compare.
  if (verdict === undefined || verdict.key !== key || (verdict.signed !== signed && !bytesEqual(verdict.signed, signed)) || (verdict.signature !== signature && !sameSignature(verdict.signature, signature))) {
    return undefined;
  }
  return verdict.valid;
}

function sameSignature(a: TpmtSignature, b: TpmtSignature): boolean {
  if (a.sigAlg !== b.sigAlg || a.hashAlg !== b.hashAlg) {
    return false;
  }
  if (isEccSignature(a) || isEccSignature(b)) {
    return isEccSignature(a) && isEccSignature(b) && bytesEqual(a.signatureR, b.signatureR) && bytesEqual(a.signatureS, b.signatureS);
  }
  return bytesEqual(a.sig, b.sig);
}
