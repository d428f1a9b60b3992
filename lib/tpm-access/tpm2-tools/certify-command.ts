import { TpmParseError } from '../../bytes/parse-errors.js';
import { BigEndianReader } from '../../bytes/byte-reader.js';
import { BigEndianWriter } from '../../bytes/byte-writer.js';
import { TPM_ALG_NULL } from '../../tpm/constants.js';
import { TpmAccessError } from '../tpm-access-error.js';

/** TPM 2.0 Part 2 §6.9 / §6.5: TPM_ST_SESSIONS, TPM_CC_Certify, TPM_RS_PW. */
const TPM_ST_SESSIONS = 0x8002;
const TPM_CC_CERTIFY = 0x00000148;
const TPM_RS_PW = 0x40000009;
/**
 * Part 2 §6.6.3 warnings that mean the TPM did not run the command and it may be sent again:
 * TPM_RC_YIELDED, TPM_RC_TESTING (a self-test of the algorithm is under way), TPM_RC_RETRY. ESYS resends
 * on these (swtpm answers the first TPM2_Certify after a TPM2_Startup with TPM_RC_RETRY); `tpm2_send` does not.
 */
const RESEND_WARNINGS: ReadonlySet<number> = new Set([0x908, 0x90a, 0x922]);

/** Whether a raw command answered `responseCode` did not run and may be sent again. */
export function isResendWarning(responseCode: number | undefined): boolean {
  return responseCode !== undefined && RESEND_WARNINGS.has(responseCode);
}

/** One password authorization with an empty password: handle, empty nonce, attributes 0, empty hmac. */
const PASSWORD_AUTH_BYTES = 4 + 2 + 1 + 2;

/**
 * The raw TPM2_Certify command (Part 3 §18.2) that certifies `objectHandle` with `signHandle` over
 * `qualifyingData`, both authorized by an empty password, with the signing key's own scheme
 * (inScheme TPM_ALG_NULL). tpm2-tools 5.4's `tpm2_certify` cannot take qualifying data (spec §10.5a),
 * so the push agent sends this through `tpm2_send`.
 */
export function marshalCertifyCommand(objectHandle: number, signHandle: number, qualifyingData: Uint8Array): Uint8Array {
  const body = new BigEndianWriter().u32(TPM_CC_CERTIFY).u32(objectHandle).u32(signHandle).u32(2 * PASSWORD_AUTH_BYTES);
  for (let i = 0; i < 2; i += 1) {
    body.u32(TPM_RS_PW).u16(0).u8(0).u16(0);
  }
  const rest = body.tpm2b(qualifyingData).u16(TPM_ALG_NULL).finish();
  return new BigEndianWriter().u16(TPM_ST_SESSIONS).u32(2 + 4 + rest.length).bytes(rest).finish();
}

/** TPM2_Certify's response: the TPMS_ATTEST and TPMT_SIGNATURE bytes. Throws `TpmAccessError` with the `responseCode` for a TPM error code (so TPM_RC_INITIALIZE is recovered from). */
export function parseCertifyResponse(response: Uint8Array): { readonly attest: Uint8Array; readonly signature: Uint8Array } {
  const reader = new BigEndianReader(response, TpmParseError);
  const tag = reader.u16();
  const size = reader.u32();
  const code = reader.u32();
  if (code !== 0) {
    throw new TpmAccessError(`TPM2_Certify failed with response code 0x${code.toString(16)}`, { responseCode: code });
  }
  if (tag !== TPM_ST_SESSIONS || size !== response.length) {
    throw new TpmParseError('TPM2_Certify response header does not match its length', 0, ['certify response']);
  }
  const parameterSize = reader.u32();
  const parameters = new BigEndianReader(reader.bytesOf(parameterSize), TpmParseError);
  const attest = parameters.tpm2b();
  return { attest, signature: parameters.rest() };
}
