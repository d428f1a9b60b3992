import { BigEndianReader } from '../bytes/byte-reader.js';
import { BigEndianWriter } from '../bytes/byte-writer.js';
import { TpmParseError } from '../bytes/parse-errors.js';
import {
  TPM_ALG_ECDAA,
  TPM_ALG_ECDSA,
  TPM_ALG_ECSCHNORR,
  TPM_ALG_RSAPSS,
  TPM_ALG_RSASSA,
  TPM_ALG_SM2,
  algName,
} from './constants.js';
import { tpm2bView } from './internal/reader-views.js';

/** Largest RSA signature (4096-bit keys) and ECC parameter we accept, as in `tpmt-public.ts`. */
const MAX_RSA_KEY_BYTES = 512;
const MAX_ECC_KEY_BYTES = 128;

/** TPMS_SIGNATURE_RSA (Part 2 §11.3.1, Table 213) under an RSASSA or RSAPSS selector. */
export interface RsaSignature {
  readonly sigAlg: typeof TPM_ALG_RSASSA | typeof TPM_ALG_RSAPSS;
  readonly hashAlg: number;
  readonly sig: Uint8Array;
}

/** TPMS_SIGNATURE_ECC (Part 2 §11.3.2, Table 214) under an ECDSA, ECDAA, SM2 or ECSCHNORR selector. */
export interface EccSignature {
  readonly sigAlg: typeof TPM_ALG_ECDSA | typeof TPM_ALG_ECDAA | typeof TPM_ALG_SM2 | typeof TPM_ALG_ECSCHNORR;
  readonly hashAlg: number;
  readonly signatureR: Uint8Array;
  readonly signatureS: Uint8Array;
}

/** A parsed TPMT_SIGNATURE. HMAC and NULL signatures are not accepted: nothing here can verify them. */
export type TpmtSignature = RsaSignature | EccSignature;

/** True for the selectors whose TPMU_SIGNATURE arm is TPMS_SIGNATURE_ECC. */
export function isEccSignature(signature: TpmtSignature): signature is EccSignature {
  return 'signatureR' in signature;
}

/**
 * Unmarshals a TPMT_SIGNATURE (Part 2 §11.3.4, Table 217): | sigAlg u16 | TPMU_SIGNATURE by sigAlg |,
 * where RSA arms are | hash u16 | sig TPM2B_PUBLIC_KEY_RSA | and ECC arms are
 * | hash u16 | signatureR TPM2B_ECC_PARAMETER | signatureS TPM2B_ECC_PARAMETER |.
 * Byte fields are views into `r.bytes` (see `reader-views.ts`).
 */
export function unmarshalTpmtSignature(r: BigEndianReader): TpmtSignature {
  return r.struct('TPMT_SIGNATURE', () => {
    const sigAlg = r.u16();
    switch (sigAlg) {
      case TPM_ALG_RSASSA:
      case TPM_ALG_RSAPSS:
        return { sigAlg, hashAlg: r.u16(), sig: r.struct('sig', () => tpm2bView(r, MAX_RSA_KEY_BYTES)) };
      case TPM_ALG_ECDSA:
      case TPM_ALG_ECDAA:
      case TPM_ALG_SM2:
      case TPM_ALG_ECSCHNORR:
        return {
          sigAlg,
          hashAlg: r.u16(),
          signatureR: r.struct('signatureR', () => tpm2bView(r, MAX_ECC_KEY_BYTES)),
          signatureS: r.struct('signatureS', () => tpm2bView(r, MAX_ECC_KEY_BYTES)),
        };
      default:
        throw r.error(`unsupported signature algorithm ${algName(sigAlg)}`);
    }
  });
}

/** Parses a TPMT_SIGNATURE that fills `bytes` exactly. Throws `TpmParseError`. Verifies nothing. */
export function parseTpmtSignature(bytes: Uint8Array): TpmtSignature {
  return parseTpmtSignatureInPlace(bytes.slice());
}

/** `parseTpmtSignature` without the private copy: the result's byte fields alias `bytes`. */
export function parseTpmtSignatureInPlace(bytes: Uint8Array): TpmtSignature {
  const r = new BigEndianReader(bytes, TpmParseError);
  const signature = unmarshalTpmtSignature(r);
  r.finish();
  return signature;
}

export function marshalTpmtSignatureTo(w: BigEndianWriter, signature: TpmtSignature): void {
  w.u16(signature.sigAlg).u16(signature.hashAlg);
  if (isEccSignature(signature)) {
    w.tpm2b(signature.signatureR).tpm2b(signature.signatureS);
  } else {
    w.tpm2b(signature.sig);
  }
}

export function marshalTpmtSignature(signature: TpmtSignature): Uint8Array {
  const w = new BigEndianWriter();
  marshalTpmtSignatureTo(w, signature);
  return w.finish();
}
