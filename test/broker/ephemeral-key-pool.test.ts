import { webcrypto } from 'node:crypto';
import { expect } from 'chai';
import { EphemeralKeyPool } from '../../lib/broker/ephemeral-key-pool.js';

const P256_ECDH = { name: 'ECDH', namedCurve: 'P-256' } as const;

/**
 * A key generator whose generations stay pending until the test settles them, so that the test counts
 * them, sees how many are in flight at once, and makes chosen ones fail.
 */
class HeldGenerator {
  calls = 0;
  readonly made = new Set<webcrypto.CryptoKey>();
  private pending: { call: number; resolve: (key: webcrypto.CryptoKey) => void; reject: (error: Error) => void }[] = [];

  readonly generate = (): Promise<webcrypto.CryptoKey> => {
    this.calls += 1;
    const call = this.calls;
    return new Promise((resolve, reject) => this.pending.push({ call, resolve, reject }));
  };

  get inFlight(): number {
    return this.pending.length;
  }

  /**
   * Settles the pending generations, and those the pool then asks for, until none is left: a real key
   * each, or a failure where `fails(call)` (calls counted from 1). Returns how many were in flight at
   * each step.
   */
  async settleAll(fails: (call: number) => boolean = () => false): Promise<number[]> {
    const steps: number[] = [];
    while (this.pending.length > 0) {
      if (steps.length === 100) throw new Error('the pool never stops asking for keys');
      steps.push(this.pending.length);
      for (const { call, resolve, reject } of this.pending.splice(0)) {
        if (fails(call)) {
          reject(new Error(`generation ${call} failed`));
        } else {
          const { privateKey } = await webcrypto.subtle.generateKey(P256_ECDH, true, ['deriveBits']);
          this.made.add(privateKey);
          resolve(privateKey);
        }
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return steps;
  }
}

/** Runs `body` and returns the rejections left unhandled meanwhile (one more timer turn included). */
async function unhandledRejectionsDuring(body: () => Promise<void>): Promise<unknown[]> {
  const unhandled: unknown[] = [];
  const listener = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', listener);
  try {
    await body();
    await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    process.off('unhandledRejection', listener);
  }
  return unhandled;
}

/**
 * Takes `count` keys that the pool holds: each take must be served without asking for a generation
 * (checked before awaiting it, since a take waiting for a held generation would never settle).
 */
async function takeHeld(pool: EphemeralKeyPool, generator: HeldGenerator, count: number): Promise<webcrypto.CryptoKey[]> {
  const keys: webcrypto.CryptoKey[] = [];
  for (let taken = 0; taken < count; taken += 1) {
    const callsBefore = generator.calls;
    const key = pool.take();
    expect(generator.calls, `take ${taken + 1} of ${count} asked for a generation`).to.equal(callsBefore);
    keys.push(await key);
  }
  return keys;
}

describe('EphemeralKeyPool', function () {
  it('hands out every key once: distinct extractable P-256 ECDH private keys, taken one by one and many at once, across refills', async function () {
    const pool = new EphemeralKeyPool(8, 2);
    const keys: webcrypto.CryptoKey[] = [];
    for (let round = 0; round < 3; round += 1) {
      keys.push(await pool.take());
      keys.push(...(await Promise.all(Array.from({ length: 12 }, () => pool.take()))));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const publicParts = new Set<string>();
    for (const key of keys) {
      expect([key.type, key.extractable, key.usages]).to.deep.equal(['private', true, ['deriveBits']]);
      expect(key.algorithm).to.deep.equal({ name: 'ECDH', namedCurve: 'P-256' });
      const { x, y } = await webcrypto.subtle.exportKey('jwk', key);
      publicParts.add(`${x}.${y}`);
    }
    expect(publicParts.size, 'no key handed out twice').to.equal(keys.length);
  });

  it('refills up to `size` keys and no more, at most 8 generations at a time, serves takes from them without generating, and refills again below `lowWater`', async function () {
    const generator = new HeldGenerator();
    const pool = new EphemeralKeyPool(20, 5, generator.generate);

    const first = pool.take();
    expect(await generator.settleAll(), 'the first batch of the refill, then the key made on the spot, then two more batches').to.deep.equal([9, 8, 4]);
    const taken = [await first];
    expect(generator.calls).to.equal(21);

    taken.push(...(await takeHeld(pool, generator, 15)));
    const leavingFour = pool.take();
    expect([generator.calls, generator.inFlight], 'the take that leaves 4 (< 5) starts one batch of the refill').to.deep.equal([29, 8]);
    taken.push(await leavingFour);
    taken.push(...(await takeHeld(pool, generator, 1)));
    expect(generator.calls, 'one refill at a time').to.equal(29);

    expect(await generator.settleAll(), 'the 17 missing keys').to.deep.equal([8, 8, 1]);
    taken.push(...(await takeHeld(pool, generator, 15)));
    const startingThird = pool.take();
    expect([generator.calls, generator.inFlight], 'the 16th take from the 20 keys held starts a third refill').to.deep.equal([46, 8]);
    taken.push(await startingThird);
    await generator.settleAll();

    expect(new Set(taken).size, 'no key handed out twice').to.equal(taken.length);
    expect(taken.every((key) => generator.made.has(key))).to.equal(true);
  });

  it('a refill whose generations partly fail leaves nothing unhandled and keeps the keys it made, then fills up', async function () {
    const generator = new HeldGenerator();
    const pool = new EphemeralKeyPool(4, 1, generator.generate);
    const unhandled = await unhandledRejectionsDuring(async () => {
      const first = pool.take();
      expect(await generator.settleAll((call) => call <= 2), 'the refill, the key on the spot, the refill again for the 2 it failed to make').to.deep.equal([5, 2]);
      await first;
      await takeHeld(pool, generator, 3);
      const leavingNone = pool.take();
      expect([generator.calls, generator.inFlight], 'the take that leaves none (< 1) refills').to.deep.equal([11, 4]);
      await leavingNone;
      await generator.settleAll();
    });
    expect(unhandled).to.deep.equal([]);
  });

  it('an empty pool whose generator fails makes take() reject, leaves nothing unhandled, and refills at the next take', async function () {
    const generator = new HeldGenerator();
    const pool = new EphemeralKeyPool(4, 1, generator.generate);
    const unhandled = await unhandledRejectionsDuring(async () => {
      const failing = pool.take();
      const outcome = failing.then(
        () => 'a key',
        (error: unknown) => (error instanceof Error ? error.message : 'not an Error'),
      );
      expect(await generator.settleAll(() => true), 'a refill that makes nothing stops after its batch').to.deep.equal([5]);
      expect(await outcome).to.equal('generation 5 failed');

      const next = pool.take();
      expect(generator.inFlight, 'a new refill and a key on the spot').to.equal(5);
      await generator.settleAll();
      expect(generator.made.has(await next)).to.equal(true);
    });
    expect(unhandled).to.deep.equal([]);
  });
});
