import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { resourcePathText, type ResourcePath } from './kbs-wire.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Resources at rest: AES-256-GCM under the broker's master key, a fresh 96-bit IV per write, and the
 * resource path as AAD so a sealed value moved to another path does not open. Stored as base64 of
 * IV ‖ ciphertext ‖ tag.
 */
export class ResourceVault {
  constructor(private readonly masterKey: Uint8Array) {}

  seal(path: ResourcePath, plaintext: Uint8Array): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv);
    cipher.setAAD(Buffer.from(resourcePathText(path), 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
  }

  /** The plaintext; throws (`Error` from node:crypto) when the value was altered, moved or sealed under another key. */
  open(path: ResourcePath, sealed: string): Uint8Array {
    const bytes = Buffer.from(sealed, 'base64');
    if (bytes.length < IV_BYTES + TAG_BYTES) {
      throw new Error('sealed resource too short');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.masterKey, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(resourcePathText(path), 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return new Uint8Array(Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]));
  }
}
