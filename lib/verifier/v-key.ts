import { constants, publicEncrypt } from 'node:crypto';
import { InvalidParameterValue } from '../../interfaces/errors.js';

/** Size of Keylime's V (and U, K) keys: 32 bytes (spec §9.1). */
export const V_KEY_BYTES = 32;

/**
 * `encrypted_key` of `POST /keys/vkey` (spec §6.2 step 3, §9.1): V wrapped with RSA-OAEP, SHA-1 and
 * MGF1-SHA-1, no label, under the agent's NK public key (the PEM its quotes bind into PCR 16).
 * Keylime's agents only decrypt this padding, so SHA-1 is a compatibility requirement here.
 *
 * @throws InvalidParameterValue when V is not 32 bytes of base64 or the NK key is not an RSA key.
 */
export function wrapVKey(vBase64: string, nkPublicPem: string): string {
  const v = Buffer.from(vBase64, 'base64');
  if (v.length !== V_KEY_BYTES) {
    throw new InvalidParameterValue('v', `must be ${V_KEY_BYTES} bytes of base64`);
  }
  try {
    return publicEncrypt({ key: nkPublicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, v).toString('base64');
  } catch (cause) {
    throw new InvalidParameterValue('pubkey', 'the agent key is not an RSA public key V can be wrapped under', { cause });
  }
}
