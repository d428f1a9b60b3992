import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { TPM_ST_ATTEST_QUOTE, algName, hashInfo, resolveHash } from './constants.js';
import { parsePcrBlobInPlace, type PcrBank, type PcrBlob } from './pcr-blob.js';
import { describeSelection, sameSelection } from './internal/pcr-selection.js';
import { PcrValues } from './internal/pcr-values.js';
import { clockProblem, type PreviousClockInfo } from './quote-clock.js';
import { checkSignedAttest } from './internal/signed-attest.js';
import type { SignatureVerdict } from './signature-verdict.js';
import { signatureHashProblem, signingKeyFrom, type SigningKeyInput } from './tpm-signature-check.js';
import { parseTpmsAttestInPlace, type TpmsAttest, type TpmsClockInfo } from './tpms-attest.js';
import { parseTpmtSignatureInPlace, type TpmtSignature } from './tpmt-signature.js';

/** Keylime's event id for every quote failure, spelling included (keylime-protocol §7.2 [!]). */
export const QUOTE_VALIDATION_EVENT_ID = 'qoute_validation.quote_validation';

/** The check a quote failed, in the order they run. */
export type QuoteCheck =
  | 'hash-alg'
  | 'signature-scheme'
  | 'signature'
  | 'attest-structure'
  | 'attest-type'
  | 'nonce'
  | 'pcr-selection'
  | 'pcr-digest'
  | 'clock';

export interface VerifyQuoteInput {
  /** The AK. Pass a KeyObject made once with `signingKeyFrom` to skip re-parsing on every quote. */
  readonly akPublic: SigningKeyInput;
  /** TPMS_ATTEST bytes, or a parsed one (its `raw` bytes are what the signature covers). */
  readonly attest: Uint8Array | TpmsAttest;
  readonly signature: Uint8Array | TpmtSignature;
  /** The tpm2-tools PCR blob, raw or parsed. */
  readonly pcrBlob: Uint8Array | PcrBlob;
  /** Qualifying data the quote must carry (Keylime pull mode: the nonce's ASCII bytes). */
  readonly nonce: Uint8Array;
  /**
   * Other qualifying data accepted as well (push: the challenge's base64 text, which the Rust agent
   * quotes, beside its decoded bytes; keylime-protocol §7.2 item 4).
   */
  readonly alternativeNonce?: Uint8Array;
  /** The signature hash the verifier asked for (`sha256` or a TPM_ALG_ID). */
  readonly hashAlg: string | number;
  /** Optionally pins the signature scheme (`rsassa`, `rsapss`, `ecdsa`): downgrade protection. */
  readonly signAlg?: string | number;
  /** Clock info of the last accepted quote from this TPM, for the §7.3 clock checks. */
  readonly previousClock?: PreviousClockInfo;
  /** The signature verified ahead (`verifyQuoteSignatureAhead`); ignored unless it is about this AK, signature and attest. */
  readonly signatureVerdict?: SignatureVerdict;
}

export interface QuoteVerified {
  readonly valid: true;
  /** Signature hash (Keylime name). */
  readonly hashAlg: string;
  /** Bank of `pcrs`: the signature hash's bank if quoted, else the first bank quoted. */
  readonly pcrBank: string;
  /** Verified PCR values of `pcrBank`, ascending. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  /** Verified values of every quoted bank, in selection order. */
  readonly banks: readonly PcrBank[];
  /** To be stored as the next `previousClock`. */
  readonly clockInfo: TpmsClockInfo;
  readonly attest: TpmsAttest;
}

export interface QuoteRejected {
  readonly valid: false;
  readonly failedCheck: QuoteCheck;
  readonly reason: string;
  readonly eventId: typeof QUOTE_VALIDATION_EVENT_ID;
}

export type QuoteVerdict = QuoteVerified | QuoteRejected;

function reject(failedCheck: QuoteCheck, reason: string): QuoteRejected {
  return { valid: false, failedCheck, reason: `quote: ${reason}`, eventId: QUOTE_VALIDATION_EVENT_ID };
}


/**
 * node:crypto's one-shot `hash` (Node ≥ 20.12) skips building a Hash stream object, which is a
 * measurable share of a quote check; older Node falls back to createHash.
 */
const oneShotHash: typeof nodeCrypto.hash | undefined = (nodeCrypto as Partial<typeof nodeCrypto>).hash;

/**
 * H(every PCR value, bank by bank in selection order), hashed as one joined buffer: one call into
 * OpenSSL rather than one per PCR. A parsed blob's values are copied from where they lie
 * (`PcrValues.copyValuesTo`), without a view per PCR. The joined copy is transient, so pooled memory is fine.
 */
function pcrDigest(nodeHash: string, banks: readonly PcrBank[]): Uint8Array {
  let length = 0;
  for (const bank of banks) length += valuesLength(bank.pcrs);
  const joined = Buffer.allocUnsafe(length);
  let at = 0;
  for (const bank of banks) at = copyValues(bank.pcrs, joined, at);
  return oneShotHash === undefined ? createHash(nodeHash).update(joined).digest() : oneShotHash(nodeHash, joined, 'buffer');
}

/** The bytes of a bank's values. */
function valuesLength(pcrs: ReadonlyMap<number, Uint8Array>): number {
  if (pcrs instanceof PcrValues) return pcrs.size * pcrs.valueSize;
  let length = 0;
  for (const value of pcrs.values()) length += value.length;
  return length;
}

/** Copies a bank's values into `target` from `at`, in order; returns the offset after the last. */
function copyValues(pcrs: ReadonlyMap<number, Uint8Array>, target: Buffer, at: number): number {
  if (pcrs instanceof PcrValues) return pcrs.copyValuesTo(target, at);
  let offset = at;
  for (const value of pcrs.values()) {
    target.set(value, offset);
    offset += value.length;
  }
  return offset;
}

/**
 * Verifies a TPM2_Quote as Keylime's `checkquote` + `check_quote_timing` do (keylime-protocol §7.2–7.3):
 * the signature scheme suits the AK (RSA: RSASSA or RSAPSS; ECC: ECDSA) and its hash is `hashAlg`;
 * the signature over the exact TPMS_ATTEST bytes verifies; the attest is a quote whose extraData is
 * `nonce`; the PCR blob selects the same PCRs as the quote and H_sig(PCR values in selection order)
 * equals pcrDigest — hashed with the SIGNATURE's hash, not the bank's (TPM 2.0 Part 3 §18.4: the
 * digest uses the signing scheme's hash); and the clock moved forward from `previousClock`.
 *
 * Unsigned inputs (AK, signature, PCR blob) are parsed first and throw `TpmParseError` /
 * `TpmKeyError` when malformed. The attest is parsed only after its signature verified, so a forged
 * or corrupted attest reports `signature`. Does NOT judge PCR values against any policy, nor check
 * qualifiedSigner or firmwareVersion. Byte arrays in the verdict (PCR values, attest fields) are
 * views into the buffers passed in, not copies: nothing is copied on this hot path, so copy what you
 * keep if you reuse those buffers.
 */
export function verifyQuote(input: VerifyQuoteInput): QuoteVerdict {
  const key = signingKeyFrom(input.akPublic);
  const signature = input.signature instanceof Uint8Array ? parseTpmtSignatureInPlace(input.signature) : input.signature;
  const blob = input.pcrBlob instanceof Uint8Array ? parsePcrBlobInPlace(input.pcrBlob) : input.pcrBlob;

  const expectedHash = resolveHash(input.hashAlg);
  const hashProblem = signatureHashProblem(signature, input.hashAlg);
  if (expectedHash === undefined || hashProblem !== null) {
    return reject('hash-alg', hashProblem ?? `unknown hash ${String(input.hashAlg)}`);
  }
  const signed = checkSignedAttest({
    key, signature, attest: input.attest, signAlg: input.signAlg, signer: 'the AK', parse: parseTpmsAttestInPlace,
    ...(input.signatureVerdict === undefined ? {} : { verdict: input.signatureVerdict }),
  });
  if (!signed.valid) {
    return reject(signed.failedCheck, signed.reason);
  }
  const attest = signed.attest;
  if (attest.type !== TPM_ST_ATTEST_QUOTE) {
    return reject('attest-type', `attestation type 0x${attest.type.toString(16)} is not TPM_ST_ATTEST_QUOTE`);
  }
  if (!bytesEqual(attest.extraData, input.nonce) && !(input.alternativeNonce !== undefined && bytesEqual(attest.extraData, input.alternativeNonce))) {
    return reject('nonce', 'extraData does not match the nonce');
  }
  const quoted = attest.attested.pcrSelect;
  if (!sameSelection(quoted, blob.selection)) {
    return reject('pcr-selection', `PCR blob selects ${describeSelection(blob.selection, algName)}, the quote ${describeSelection(quoted, algName)}`);
  }
  if (!bytesEqual(pcrDigest(expectedHash.nodeName, blob.untrustedBanks), attest.attested.pcrDigest)) {
    return reject('pcr-digest', 'PCR values do not hash to the quoted pcrDigest');
  }
  const clock = clockProblem(attest.clockInfo, input.previousClock);
  if (clock !== null) {
    return reject('clock', clock);
  }

  const banks = blob.untrustedBanks.filter((bank) => bank.pcrs.size > 0);
  const chosen = banks.find((bank) => bank.hashAlg === expectedHash.algId) ?? banks[0];
  return {
    valid: true,
    hashAlg: expectedHash.name,
    pcrBank: chosen === undefined ? expectedHash.name : hashInfo(chosen.hashAlg)?.name ?? algName(chosen.hashAlg),
    pcrs: chosen?.pcrs ?? new Map(),
    banks,
    clockInfo: attest.clockInfo,
    attest,
  };
}
