import { isCanonicalBase64 } from '../../http/validators.js';
import { MAX_NONCE_BYTES } from '../../tpm-access/port-checks.js';

/**
 * The bytes a verifier's challenge names, or undefined unless it is canonical base64 of 1 to 64
 * bytes (a TPM2B_DATA's qualifying data; Keylime sends 16). Checked before decoding: `Buffer.from`
 * reads any other base64 leniently (a quote over other bytes than asked) and builds an array-like
 * object's `length` bytes (a hostile `{"length": 4294967295}` exhausts memory).
 */
export function challengeBytes(value: unknown): Uint8Array | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > Math.ceil(MAX_NONCE_BYTES / 3) * 4 || !isCanonicalBase64(value)) {
    return undefined;
  }
  const bytes = Buffer.from(value, 'base64');
  return bytes.length <= MAX_NONCE_BYTES ? new Uint8Array(bytes) : undefined;
}
