import { IsIn, IsOptional, Matches } from 'class-validator';
import { IsBase64String, IsNonce, IsPcrMask } from '../http/validators.js';

/**
 * Request shapes of the agent API (rust-keylime `quotes_handler.rs`, `keys_handler.rs`; spec §2).
 * Query values are strings on the wire and are kept as strings: the checks are on their text.
 */

/** `GET quotes/identity?nonce=`. */
export class IdentityQuoteQuery {
  @IsNonce()
  nonce!: string;
}

/** Largest `ima_ml_entry` accepted: any real IMA log is far shorter; it keeps the number exact. */
const MAX_ENTRY_DIGITS = 12;

/** `GET quotes/integrity?nonce=&mask=&partial=&ima_ml_entry=`. */
export class IntegrityQuoteQuery {
  @IsNonce()
  nonce!: string;

  @IsPcrMask()
  mask!: string;

  /** "0": include `pubkey`; "1": omit it (the verifier already has it). */
  @IsIn(['0', '1'], { message: 'must be 0 or 1' })
  partial!: string;

  /** First IMA list line wanted; default 0. */
  @IsOptional()
  @Matches(new RegExp(`^[0-9]{1,${MAX_ENTRY_DIGITS}}$`), { message: 'must be a non-negative integer' })
  ima_ml_entry?: string;
}

/** RSA-OAEP of 32 bytes under an RSA key of up to 8192 bits. */
const MAX_WRAPPED_KEY_B64 = 1400;
/** A payload may be a zip of scripts and files; the route's body limit bounds it too. */
const MAX_PAYLOAD_B64 = 12 * 1024 * 1024;

/** `POST keys/ukey`. */
export class UkeyBody {
  /** hex HMAC-SHA384(K, agent id): 96 digits. */
  @Matches(/^[0-9a-fA-F]{96}$/, { message: 'must be 96 hex digits (HMAC-SHA384)' })
  auth_tag!: string;

  @IsBase64String({ maxLength: MAX_WRAPPED_KEY_B64 })
  encrypted_key!: string;

  /** base64 of IV ‖ AES-256-GCM ciphertext ‖ tag. */
  @IsOptional()
  @IsBase64String({ maxLength: MAX_PAYLOAD_B64 })
  payload?: string;
}

/** `POST keys/vkey`. */
export class VkeyBody {
  @IsBase64String({ maxLength: MAX_WRAPPED_KEY_B64 })
  encrypted_key!: string;
}

/** `GET keys/verify?challenge=`: letters and digits (Keylime sends 20). */
export class VerifyKeyQuery {
  @Matches(/^[A-Za-z0-9]{1,256}$/, { message: 'must be 1 to 256 letters and digits' })
  challenge!: string;
}
