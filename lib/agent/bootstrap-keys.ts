import { constants, createDecipheriv, createHmac, privateDecrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import { AgentKeyError } from './agent-errors.js';

/** Keys kept per kind while waiting for their other half; older ones are dropped first. */
const MAX_PENDING = 16;
/**
 * Payload bytes kept with the Us waiting for their V (two of the largest a ukey carries): 16 Us of
 * 9 MiB each held 150 MiB for as long as no V came. The oldest U with a payload is dropped first,
 * never the newest; Us without one are kept (MAX_PENDING bounds them).
 */
const MAX_PENDING_PAYLOAD_BYTES = 24 * 1024 * 1024;
/** U, V and K: an AES-256 key. */
const KEY_BYTES = 32;
/** Payload layout `IV(16) ‖ AES-256-GCM ciphertext ‖ tag(16)` (Keylime `crypto.encrypt`, spec §9.1). */
const GCM_IV = 16;
const GCM_TAG = 16;

interface PendingU {
  readonly u: Buffer;
  readonly authTag: Buffer;
  readonly payload: Buffer | undefined;
}

/** What the agent holds once U and V combined: K, and the decrypted payload if one came with U. */
export interface BootstrapSecret {
  readonly k: Buffer;
  readonly payload: Buffer | undefined;
  /** Why a payload that came with U could not be decrypted (K is still good: its HMAC matched). */
  readonly payloadError: string | undefined;
}

/**
 * The agent's half of Keylime's U/V/K scheme (spec §9.1; rust-keylime `keys_handler.rs`): the tenant
 * sends U (with `auth_tag` = HMAC-SHA384(K, agent id) and an optional payload), the verifier sends V
 * after a good integrity quote, both RSA-OAEP(SHA-1)-wrapped under the NK. Every U is tried with
 * every V: K = U xor V is accepted when its HMAC over the agent id equals that U's `auth_tag`
 * (constant-time). Then `keys/verify` answers HMAC-SHA384(K, challenge) and the payload is decrypted.
 */
export class BootstrapKeys {
  private readonly us: PendingU[] = [];
  private readonly vs: Buffer[] = [];
  private secret: BootstrapSecret | undefined;

  constructor(
    private readonly nk: KeyObject,
    private readonly agentId: string,
  ) {}

  /** `POST keys/ukey`. `authTagHex` is 96 hex digits (validated at the boundary). @throws AgentKeyError */
  addU(encryptedKeyB64: string, authTagHex: string, payloadB64: string | undefined): void {
    const u = this.unwrap(encryptedKeyB64);
    const payload = payloadB64 === undefined ? undefined : Buffer.from(payloadB64, 'base64');
    pushBounded(this.us, { u, authTag: Buffer.from(authTagHex, 'hex'), payload });
    // Only a U that holds payload bytes frees any: one without waits on (it costs ~100 bytes).
    while (pendingPayloadBytes(this.us) > MAX_PENDING_PAYLOAD_BYTES) {
      const oldest = this.us.findIndex((pending) => (pending.payload?.length ?? 0) > 0);
      if (oldest === this.us.length - 1) break;
      this.us.splice(oldest, 1);
    }
    this.combine();
  }

  /** `POST keys/vkey`. @throws AgentKeyError */
  addV(encryptedKeyB64: string): void {
    pushBounded(this.vs, this.unwrap(encryptedKeyB64));
    this.combine();
  }

  /** K and the payload, once a U and a V matched. */
  get current(): BootstrapSecret | undefined {
    return this.secret;
  }

  /** `GET keys/verify`: hex HMAC-SHA384(K, challenge). @throws AgentKeyError before K exists (Keylime's text). */
  hmacOf(challenge: string): string {
    if (this.secret === undefined) {
      throw new AgentKeyError('Bootstrap key not yet available.');
    }
    return createHmac('sha384', this.secret.k).update(Buffer.from(challenge, 'utf8')).digest('hex');
  }

  /** U or V: exactly 32 bytes, so K = U xor V is an AES-256 key (spec §9.1); any other size is refused. */
  private unwrap(encryptedKeyB64: string): Buffer {
    let key: Buffer;
    try {
      key = privateDecrypt({ key: this.nk, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(encryptedKeyB64, 'base64'));
    } catch (cause) {
      // One uniform answer whatever went wrong inside OAEP (STYLE 7).
      throw new AgentKeyError('encrypted_key: cannot be decrypted with the agent key', { cause });
    }
    if (key.length !== KEY_BYTES) {
      throw new AgentKeyError(`encrypted_key: must wrap a ${KEY_BYTES}-byte key (AES-256), not ${key.length} bytes`);
    }
    return key;
  }

  private combine(): void {
    for (const pending of [...this.us].reverse()) {
      for (const v of [...this.vs].reverse()) {
        const k = xor(pending.u, v);
        const tag = createHmac('sha384', k).update(Buffer.from(this.agentId, 'utf8')).digest();
        if (tag.length === pending.authTag.length && timingSafeEqual(tag, pending.authTag)) {
          this.secret = openPayload(k, pending.payload);
          this.us.length = 0;
          this.vs.length = 0;
          return;
        }
      }
    }
  }
}

function openPayload(k: Buffer, payload: Buffer | undefined): BootstrapSecret {
  if (payload === undefined) {
    return { k, payload: undefined, payloadError: undefined };
  }
  try {
    return { k, payload: decryptPayload(k, payload), payloadError: undefined };
  } catch (error) {
    return { k, payload: undefined, payloadError: (error as Error).message };
  }
}

/** AES-256-GCM payload decryption (no AAD). @throws AgentKeyError with one uniform message. */
export function decryptPayload(k: Buffer, blob: Buffer): Buffer {
  try {
    if (k.length !== KEY_BYTES || blob.length < GCM_IV + GCM_TAG) {
      throw new RangeError('payload too short or key not 256 bits');
    }
    const decipher = createDecipheriv('aes-256-gcm', k, blob.subarray(0, GCM_IV));
    decipher.setAuthTag(blob.subarray(blob.length - GCM_TAG));
    return Buffer.concat([decipher.update(blob.subarray(GCM_IV, blob.length - GCM_TAG)), decipher.final()]);
  } catch (cause) {
    throw new AgentKeyError('payload: cannot be decrypted with the bootstrap key', { cause });
  }
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i += 1) {
    out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return out;
}

function pendingPayloadBytes(us: readonly PendingU[]): number {
  return us.reduce((total, pending) => total + (pending.payload?.length ?? 0), 0);
}

function pushBounded<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > MAX_PENDING) {
    list.shift();
  }
}
