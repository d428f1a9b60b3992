import { constants, createHash, sign, type KeyObject } from 'node:crypto';
import {
  TPM_ALG_ECDSA,
  TPM_ALG_RSAPSS,
  TPM_ALG_RSASSA,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_CERTIFY,
  TPM_ST_ATTEST_QUOTE,
  hashInfo,
  resolveHash,
} from '../../tpm/constants.js';
import { marshalPcrBlob } from '../../tpm/pcr-blob.js';
import { marshalTpmsAttest, type TpmsClockInfo } from '../../tpm/tpms-attest.js';
import { TpmKeyError } from '../../tpm/tpm-errors.js';
import { marshalTpmtSignature, type TpmtSignature } from '../../tpm/tpmt-signature.js';
import type { QuoteParts } from '../../tpm/quote-string.js';

/**
 * Signs `data` as a TPM would with a software key: RSASSA (PKCS#1 v1.5), RSAPSS (salt = digest size,
 * what the reference TPM uses) or ECDSA (r and s as fixed-width big-endian integers). For the software
 * TPM, fleet simulations, tests and benchmarks; a verifier never needs it.
 */
export function signAsTpm(privateKey: KeyObject, sigAlg: number, hashAlg: number, data: Uint8Array): TpmtSignature {
  const hash = hashInfo(hashAlg);
  if (hash === undefined) {
    throw new TpmKeyError(`unknown signature hash 0x${hashAlg.toString(16)}`);
  }
  switch (sigAlg) {
    case TPM_ALG_RSASSA:
      return { sigAlg, hashAlg, sig: new Uint8Array(sign(hash.nodeName, data, privateKey)) };
    case TPM_ALG_RSAPSS:
      return {
        sigAlg,
        hashAlg,
        sig: new Uint8Array(sign(hash.nodeName, data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hash.digestSize })),
      };
    case TPM_ALG_ECDSA: {
      const p1363 = sign(hash.nodeName, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const half = p1363.length / 2;
      return { sigAlg, hashAlg, signatureR: new Uint8Array(p1363.subarray(0, half)), signatureS: new Uint8Array(p1363.subarray(half)) };
    }
    default:
      throw new TpmKeyError(`cannot sign with scheme 0x${sigAlg.toString(16)}`);
  }
}

export interface BuildQuoteInput {
  readonly akPrivateKey: KeyObject;
  /** Written as qualifiedSigner: the AK name, or the AK's qualified name as a TPM writes it (the software TPM). */
  readonly akName: Uint8Array;
  readonly sigAlg: number;
  /** Signature hash, also the pcrDigest hash (`sha256` or TPM_ALG_ID). */
  readonly hashAlg: string | number;
  /** PCR bank of `pcrs`; defaults to `hashAlg`. */
  readonly bank?: string | number;
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly nonce: Uint8Array;
  readonly clockInfo: TpmsClockInfo;
  readonly firmwareVersion?: bigint;
}

/**
 * A complete TPM2_Quote made in software: the TPMS_ATTEST (type quote, extraData = nonce, pcrDigest =
 * H_hashAlg of the PCR values in ascending order), its TPMT_SIGNATURE by the AK, and the tpm2-tools
 * PCR blob — the three parts of a Keylime quote string.
 */
export function buildQuote(input: BuildQuoteInput): QuoteParts {
  const hash = resolveHash(input.hashAlg);
  const bank = resolveHash(input.bank ?? input.hashAlg);
  if (hash === undefined || bank === undefined) {
    throw new TpmKeyError(`unknown hash ${String(input.hashAlg)} / bank ${String(input.bank)}`);
  }
  const pcrBlob = marshalPcrBlob(bank.algId, input.pcrs);
  const indices = [...input.pcrs.keys()].sort((a, b) => a - b);
  const digest = createHash(hash.nodeName);
  for (const pcr of indices) {
    digest.update(input.pcrs.get(pcr) as Uint8Array);
  }
  const attest = marshalTpmsAttest({
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST_ATTEST_QUOTE,
    qualifiedSigner: input.akName,
    extraData: input.nonce,
    clockInfo: input.clockInfo,
    firmwareVersion: input.firmwareVersion ?? 0n,
    attested: {
      pcrSelect: [{ hashAlg: bank.algId, sizeofSelect: indices.some((p) => p >= 24) ? 4 : 3, pcrs: indices }],
      pcrDigest: new Uint8Array(digest.digest()),
    },
  });
  const signature = marshalTpmtSignature(signAsTpm(input.akPrivateKey, input.sigAlg, hash.algId, attest));
  return { attest, signature, pcrBlob };
}

export interface BuildCertifyInput {
  readonly akPrivateKey: KeyObject;
  readonly akName: Uint8Array;
  readonly qualifiedName: Uint8Array;
  readonly sigAlg: number;
  readonly hashAlg: string | number;
  readonly qualifyingData: Uint8Array;
  readonly clockInfo: TpmsClockInfo;
  readonly firmwareVersion?: bigint;
}

/**
 * TPM2_Certify of the AK by itself made in software (Part 3 §18.2): a TPMS_ATTEST of type certify
 * whose signer and certified object are the AK, extraData = the qualifying data, signed by the AK.
 */
export function buildCertify(input: BuildCertifyInput): { attest: Uint8Array; signature: Uint8Array } {
  const hash = resolveHash(input.hashAlg);
  if (hash === undefined) {
    throw new TpmKeyError(`unknown hash ${String(input.hashAlg)}`);
  }
  const attest = marshalTpmsAttest({
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST_ATTEST_CERTIFY,
    qualifiedSigner: input.qualifiedName,
    extraData: input.qualifyingData,
    clockInfo: input.clockInfo,
    firmwareVersion: input.firmwareVersion ?? 0n,
    attested: { name: input.akName, qualifiedName: input.qualifiedName },
  });
  return { attest, signature: marshalTpmtSignature(signAsTpm(input.akPrivateKey, input.sigAlg, hash.algId, attest)) };
}
