import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * The most key generations a refill has in flight at once. Each is a job on libuv's thread pool (4
 * threads by default), which the process's other jobs (file I/O, DNS, other async crypto) also need: a
 * refill that asked for all its keys at once would queue them behind tens of generations.
 */
const REFILL_BATCH = 8;

/**
 * Ephemeral P-256 ECDH private keys for ECDH-ES answers, made ahead of the requests that use them.
 * `take` hands out each key once and forgets it; when fewer than `lowWater` are left it starts one
 * refill, which makes keys `REFILL_BATCH` at a time until `size` are held; an empty pool makes the key
 * on the spot. `generate` makes one key (by default node:crypto's `generateKeyPair`, on the thread
 * pool, off the event loop). A key the refill fails to make is left out (a batch that makes none ends
 * the refill; the next `take` starts another), and a failure on the spot fails the answer. jose
 * exports each key's public part for the `epk` header.
 */
export class EphemeralKeyPool {
  private readonly keys: KeyObject[] = [];
  private refilling = false;

  constructor(
    private readonly size = 64,
    private readonly lowWater = 16,
    private readonly generate: () => Promise<KeyObject> = generateEphemeralKey,
  ) {}

  async take(): Promise<KeyObject> {
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

async function generateEphemeralKey(): Promise<KeyObject> {
  return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
}
