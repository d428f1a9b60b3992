import { randomInt } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz';
/** Keylime's challenge length (`tpm/tpm_util.py: makecredential`, spec §5.1 step 1). */
const CREDENTIAL_LENGTH = 32;

/** The secret sealed to the EK/AK pair by MakeCredential, and the HMAC key the agent proves it with. */
export interface ActivationCredential {
  /** 32 random ASCII characters from A–Z 0–9 a–z: what TPM2_ActivateCredential gives back to the agent. */
  readonly credential: Uint8Array;
  /** base64 of `credential`: Keylime's stored `key`, the HMAC-SHA384 key of `auth_tag` (spec §1.4). */
  readonly key: string;
}

/** A fresh activation credential from the CSPRNG (`randomInt` has no modulo bias). */
export function newActivationCredential(): ActivationCredential {
  let text = '';
  for (let i = 0; i < CREDENTIAL_LENGTH; i += 1) {
    text += ALPHABET[randomInt(ALPHABET.length)];
  }
  const credential = Buffer.from(text, 'ascii');
  return { credential, key: credential.toString('base64') };
}
