import { KeyObject } from 'node:crypto';
import { IronlimeError } from '../../../interfaces/errors.js';
import { parseQuoteString } from '../../tpm/quote-string.js';
import type { SignatureVerdict } from '../../tpm/signature-verdict.js';
import { verifyQuote, type QuoteVerdict, type QuoteVerified } from '../../tpm/verify-quote.js';
import { WeakAkError } from '../../tpm/tpm-errors.js';
import { akPublicKey, enteringAkPublicKey } from '../agent-policies.js';
import type { QuoteHashAlg } from '../algorithms.js';
import { previousClockInfo, type StoredClockInfo } from './clock-check.js';
import { FailureComponent, failureEvent, type FailureEvent } from './failure.js';

export interface QuoteCheckInput {
  /** Keylime quote string `r<attest>:<signature>:<pcr blob>`. */
  readonly quote: string;
  readonly akTpm: string | Uint8Array | KeyObject;
  /** The qualifying data the verifier asked for (pull: the nonce's ASCII bytes). */
  readonly nonce: Uint8Array;
  /** Other qualifying data accepted as well (`VerifyQuoteInput.alternativeNonce`). */
  readonly alternativeNonce?: Uint8Array;
  readonly hashAlg: QuoteHashAlg;
  /** Pins the signature scheme the agent reported (downgrade protection); omit to accept any the AK allows. */
  readonly signAlg?: string;
  /** Clock info of the last accepted quote; omit to skip the clock check (one-shot evidence). */
  readonly previousClock?: StoredClockInfo | null;
  /**
   * The AK signature verified ahead (`verifyQuoteSignatureAhead`); used only for this very AK, signature and
   * attest. When it was worked out from this very quote text, its decoded parts are used instead of
   * decoding the text again.
   */
  readonly signatureVerdict?: SignatureVerdict;
}

export type QuoteCheckOutcome =
  | {
      readonly ok: true;
      readonly verified: QuoteVerified;
      /** The verified PCRs of the `hashAlg` bank (empty when the quote selected none there, as Keylime reads it). */
      readonly pcrs: ReadonlyMap<number, Uint8Array>;
    }
  | { readonly ok: false; readonly event: FailureEvent };

/**
 * Keylime's quote check (`checkquote` + `check_quote_timing`; spec §7.2, §7.3) through lib/tpm: the
 * AK signature over TPMS_ATTEST, nonce, PCR blob against pcrDigest, and (when a previous clock is given)
 * the clock rules. Any failure, including a malformed quote string, AK or blob, is the irrecoverable
 * `qoute_validation.quote_validation` — the other checks cannot run on unverified PCRs.
 */
export function checkQuote(input: QuoteCheckInput): QuoteCheckOutcome {
  let verified: QuoteVerdict;
  // The pre-check decoded this very text already (`verifyQuoteSignatureAhead`): its parts are taken as they are.
  const ahead = input.signatureVerdict?.quote?.text === input.quote ? input.signatureVerdict : undefined;
  try {
    const parts = ahead?.quote?.parts ?? parseQuoteString(input.quote);
    verified = verifyQuote({
      akPublic: input.akTpm instanceof KeyObject ? akPublicKey(input.akTpm) : enteringAkPublicKey(input.akTpm),
      attest: parts.attest,
      signature: ahead?.signature ?? parts.signature,
      pcrBlob: parts.pcrBlob,
      nonce: input.nonce,
      ...(input.alternativeNonce === undefined ? {} : { alternativeNonce: input.alternativeNonce }),
      hashAlg: input.hashAlg,
      ...(input.signAlg === undefined ? {} : { signAlg: input.signAlg }),
      ...(input.signatureVerdict === undefined ? {} : { signatureVerdict: input.signatureVerdict }),
      ...(input.previousClock === undefined || input.previousClock === null
        ? {}
        : { previousClock: previousClockInfo(input.previousClock) }),
    });
  } catch (error) {
    if (error instanceof IronlimeError) {
      return { ok: false, event: quoteFailure(error instanceof WeakAkError ? 'weak-key' : 'malformed', error.message) };
    }
    throw error;
  }
  if (!verified.valid) {
    return { ok: false, event: quoteFailure(verified.failedCheck, verified.reason) };
  }
  const pcrs = verified.pcrBank === input.hashAlg ? verified.pcrs : new Map<number, Uint8Array>();
  return { ok: true, verified, pcrs };
}

function quoteFailure(failedCheck: string, reason: string): FailureEvent {
  return failureEvent(
    FailureComponent.QUOTE_VALIDATION,
    'quote_validation',
    { message: 'Quote data validation', error: reason, check: failedCheck },
    false,
  );
}
