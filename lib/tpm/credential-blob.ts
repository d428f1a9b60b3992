import { BigEndianReader } from '../bytes/byte-reader.js';
import { BigEndianWriter } from '../bytes/byte-writer.js';
import { TpmParseError } from '../bytes/parse-errors.js';

/** Magic of a tpm2-tools credential file (tpm2-tools `tpm2_makecredential.c`, `files_save_*`). */
export const CREDENTIAL_BLOB_MAGIC = 0xbadcc0de;
export const CREDENTIAL_BLOB_VERSION = 1;

/** sizeof(TPMS_ID_OBJECT) = TPM2B_DIGEST + TPM2B_DIGEST (Part 2 §12.4.2, Table 220). */
const MAX_ID_OBJECT = 2 * (2 + 64);
/** sizeof(TPMU_ENCRYPTED_SECRET): the largest is an RSA-4096 ciphertext (Part 2 §11.4.2, Table 209). */
const MAX_ENCRYPTED_SECRET = 512;

/** The output of TPM2_MakeCredential (Part 3 §12.6) as tpm2-tools stores it. */
export interface CredentialBlob {
  /** TPMS_ID_OBJECT.integrityHMAC: HMAC over encIdentity ‖ the AK name. */
  readonly integrityHmac: Uint8Array;
  /** TPMS_ID_OBJECT.encIdentity: the AES-CFB encrypted TPM2B_DIGEST credential. */
  readonly encIdentity: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET: the seed, RSA-OAEP encrypted or as an ephemeral ECC point. */
  readonly encryptedSecret: Uint8Array;
}

/**
 * Parses a tpm2-tools credential file (keylime-protocol §5.1 step 8), all big-endian:
 * | magic u32 = 0xBADCC0DE | version u32 = 1 | TPM2B_ID_OBJECT | TPM2B_ENCRYPTED_SECRET |
 * where TPM2B_ID_OBJECT = u16 size ‖ (integrityHMAC TPM2B_DIGEST ‖ encIdentity). Structure only: the
 * HMAC is checked by `activateCredential`. Throws `TpmParseError`.
 */
export function parseCredentialBlob(bytes: Uint8Array): CredentialBlob {
  const r = new BigEndianReader(bytes, TpmParseError);
  return r.struct('credential blob', () => {
    const magic = r.u32();
    if (magic !== CREDENTIAL_BLOB_MAGIC) {
      throw r.error(`magic 0x${magic.toString(16)} is not 0xbadcc0de`);
    }
    const version = r.u32();
    if (version !== CREDENTIAL_BLOB_VERSION) {
      throw r.error(`version ${version} is not 1`);
    }
    const idObject = r.struct('TPM2B_ID_OBJECT', () => {
      const size = r.u16();
      if (size > MAX_ID_OBJECT || size > r.remaining) {
        throw r.error(`size ${size} exceeds the maximum ${Math.min(MAX_ID_OBJECT, r.remaining)}`);
      }
      const end = r.offset + size;
      const integrityHmac = r.struct('integrityHMAC', () => r.tpm2b(64));
      if (r.offset > end) {
        throw r.error('integrityHMAC overruns the ID object');
      }
      return { integrityHmac, encIdentity: r.bytesOf(end - r.offset) };
    });
    const encryptedSecret = r.struct('TPM2B_ENCRYPTED_SECRET', () => r.tpm2b(MAX_ENCRYPTED_SECRET));
    r.finish();
    return { ...idObject, encryptedSecret };
  });
}

/** Writes the tpm2-tools credential file for `blob`. */
export function marshalCredentialBlob(blob: CredentialBlob): Uint8Array {
  return new BigEndianWriter()
    .u32(CREDENTIAL_BLOB_MAGIC)
    .u32(CREDENTIAL_BLOB_VERSION)
    .sized16((w) => w.tpm2b(blob.integrityHmac).bytes(blob.encIdentity))
    .tpm2b(blob.encryptedSecret)
    .finish();
}
