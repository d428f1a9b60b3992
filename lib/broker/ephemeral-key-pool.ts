import { webcrypto } from 'node:crypto';

import type { TeeCurve } from './tee-public-key.js';

/**
 * The most key generations a refill has in flight at once. Each is a job on libuv's thread pool (4
 * threads by default), which the answers in flight also need for jose's deriveBits, digest and key wrap:
 * a refill that asked for all its keys at once would queue them behind tens of generations.
 */
const REFILL_BATCH = 8;

/**
 * Ephemeral ECDH private keys for ECDH-ES answers, made ahead of the requests that use them.
 * `take` hands out each key once and forgets it; when fewer than `lowWater` are left it starts one
 * refill, which makes keys `REFILL_BATCH` at a time until `size` are held; an empty pool makes the key
 * on the spot. `generate` makes one key (`ephemeralKeyGenerator('P-256')` by default). A key the refill fails
 * to make is left out (a batch that makes none ends the refill; the next `take` starts another), and a
 * failure on the spot fails the answer. Keys are extractable: jose exports the public part for the
 * `epk` header.
 */
export class EphemeralKeyPool {
  private readonly keys: webcrypto.CryptoKey[] = [];
  private refilling = false;

  constructor(
    private readonly size = 64,
    private readonly lowWater = 16,
    private readonly generate: () => Promise<webcrypto.CryptoKey> = ephemeralKeyGenerator('P-256'),
  ) {}

  async take(): Promise<webcrypto.CryptoKey> {
    const key = this.keys.pop();
    if (this.keys.length < this.lowWater && !this.refilling) {
      this.refilling = true;
      void this.refill().finally(() => {
        this.refilling = false;
      });
    }
    return key ?? (await this.generate());
  }

  private async refill(): Promise<void> {
    while (this.keys.length < this.size) {
      const batch = Math.min(REFILL_BATCH, this.size - this.keys.length);
      const made = await Promise.allSettled(Array.from({ length: batch }, () => this.generate()));
      const before = this.keys.length;
      for (const result of made) {
        if (result.status === 'fulfilled') this.keys.push(result.value);
      }
      if (this.keys.length === before) return;
    }
  }
}

/** Makes ECDH-ES ephemeral keys with WebCrypto on the tee key's curve (RFC 7518 §4.6: the epk must be on it). */
export function ephemeralKeyGenerator(namedCurve: TeeCurve): () => Promise<webcrypto.CryptoKey> {
  return async () => (await webcrypto.subtle.generateKey({ name: 'ECDH', namedCurve }, true, ['deriveBits'])).privateKey;
}
