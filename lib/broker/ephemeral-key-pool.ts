import { webcrypto } from 'node:crypto';

/** WebCrypto parameters of an ECDH-ES ephemeral key on the tee key's curve (RFC 7518 §4.6). */
const P256_ECDH = { name: 'ECDH', namedCurve: 'P-256' } as const;

/**
 * Ephemeral P-256 ECDH private keys for ECDH-ES answers, made ahead of the requests that use them.
 * `take` hands out each key once and forgets it; when fewer than `lowWater` are left it starts one
 * refill, which asks WebCrypto for the missing keys up to `size` all at once (the thread pool then makes
 * them back to back); an empty pool makes the key on the spot. A key the refill fails to make is left
 * out, and a failure on the spot fails the answer. Keys are extractable: jose exports the public part
 * for the `epk` header.
 */
export class EphemeralKeyPool {
  private readonly keys: webcrypto.CryptoKey[] = [];
  private refilling = false;

  constructor(
    private readonly size = 64,
    private readonly lowWater = 16,
  ) {}

  async take(): Promise<webcrypto.CryptoKey> {
    const key = this.keys.pop();
    if (this.keys.length < this.lowWater && !this.refilling) {
      this.refilling = true;
      void this.refill().finally(() => {
        this.refilling = false;
      });
    }
    return key ?? (await generateEphemeralKey());
  }

  private async refill(): Promise<void> {
    const missing = this.size - this.keys.length;
    const made = await Promise.allSettled(Array.from({ length: missing }, generateEphemeralKey));
    for (const result of made) {
      if (result.status === 'fulfilled') this.keys.push(result.value);
    }
  }
}

async function generateEphemeralKey(): Promise<webcrypto.CryptoKey> {
  return (await webcrypto.subtle.generateKey(P256_ECDH, true, ['deriveBits'])).privateKey;
}
