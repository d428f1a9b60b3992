import { webcrypto } from 'node:crypto';
import { expect } from 'chai';
import { EphemeralKeyPool } from '../../lib/broker/ephemeral-key-pool.js';

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
});
