import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { newRsaKeyPair, newRsaKeyPairSync, usePrecomputedRsaKeys } from '../../lib/pki/rsa-key-source.js';
import { RSA_KEY_POOL_FILE, rsaKeyPool } from '../helpers/rsa-key-pool.js';

const POOL_LINES = readFileSync(RSA_KEY_POOL_FILE, 'utf8').split('\n').filter((line) => line !== '');

function modulusOf(key: KeyObject): string {
  return key.export({ format: 'jwk' }).n ?? '';
}

function expectRsa2048(key: KeyObject): void {
  expect(key.asymmetricKeyType).to.equal('rsa');
  expect(key.asymmetricKeyDetails).to.deep.include({ modulusLength: 2048, publicExponent: 65537n });
}

/** `body` with new RSA keys taken from `source`; the test process's own pool is put back after. */
async function withPrecomputed(source: ReturnType<typeof rsaKeyPool> | undefined, body: () => Promise<void> | void): Promise<void> {
  const previous = usePrecomputedRsaKeys(source);
  try {
    await body();
  } finally {
    usePrecomputedRsaKeys(previous);
  }
}

describe('RSA key pool of the test processes (fixtures/rsa-key-pool)', function () {
  it('hands out each key of its text once, in order, then none', function () {
    const take = rsaKeyPool(POOL_LINES.slice(0, 3).join('\n'));
    const keys = [take(), take(), take()].map((key) => key as KeyObject);
    expect(take()).to.equal(undefined);
    keys.forEach(expectRsa2048);
    expect(new Set(keys.map(modulusOf)).size).to.equal(3);
  });

  it('rebuilds whole private keys from the primes: a signature verifies under the public key', function () {
    const key = rsaKeyPool(POOL_LINES[0] ?? '')() as KeyObject;
    const data = Buffer.from('ironlime');
    expect(verify('sha256', data, createPublicKey(key), sign('sha256', data, key))).to.equal(true);
  });

  it('throws rather than hand out a key a second time (a repeated line)', function () {
    const take = rsaKeyPool([POOL_LINES[0], POOL_LINES[1], POOL_LINES[0]].join('\n'));
    take();
    take();
    expect(() => take()).to.throw(/key 3 repeats an earlier key/);
  });

  it('refuses malformed lines: one prime, three, not base64url, a 1024-bit key, p = q', function () {
    const [p, q] = (POOL_LINES[0] ?? '').split(':') as [string, string];
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' });
    const cases: [string, RegExp][] = [
      [p, /key 1 is not two primes joined by ':'/],
      [`${p}:${q}:${p}`, /key 1 is not two primes joined by ':'/],
      [`${p}:${q}=`, /a prime is not base64url/],
      [`${small.p ?? ''}:${small.q ?? ''}`, /key 1 is not an RSA-2048 key/],
      [`${p}:${p}`, /key 1 is not an RSA-2048 key/],
    ];
    for (const [line, message] of cases) {
      expect(() => rsaKeyPool(line)(), line.slice(0, 20)).to.throw(message);
    }
  });

  it('every key of the committed pool is a distinct RSA-2048 key with e = 65537', function () {
    this.timeout(120_000);
    const take = rsaKeyPool(POOL_LINES.join('\n'));
    const moduli = new Set<string>();
    for (let key = take(); key !== undefined; key = take()) {
      expectRsa2048(key);
      moduli.add(modulusOf(key));
    }
    expect(moduli.size).to.equal(POOL_LINES.length);
  });

  it('new key pairs in this process come from the pool, distinct, then from node:crypto once it is used up', async function () {
    await withPrecomputed(rsaKeyPool(POOL_LINES.slice(0, 2).join('\n')), async () => {
      const first = newRsaKeyPairSync();
      const second = await newRsaKeyPair();
      const fresh = newRsaKeyPairSync();
      expect([first, second].map((pair) => modulusOf(pair.privateKey))).to.deep.equal(
        POOL_LINES.slice(0, 2).map((line) => modulusOf(rsaKeyPool(line)() as KeyObject)),
      );
      expect(modulusOf(first.publicKey)).to.equal(modulusOf(first.privateKey));
      [first, second, fresh].forEach((pair) => expectRsa2048(pair.publicKey));
      expect(new Set([first, second, fresh].map((pair) => modulusOf(pair.privateKey))).size).to.equal(3);
    });
  });

  it('without a pool every key is generated afresh', async function () {
    await withPrecomputed(undefined, async () => {
      const keys = [newRsaKeyPairSync(), await newRsaKeyPair()];
      keys.forEach((pair) => expectRsa2048(pair.privateKey));
      const pooled = new Set(POOL_LINES.slice(0, 50).map((line) => modulusOf(rsaKeyPool(line)() as KeyObject)));
      keys.forEach((pair) => expect(pooled.has(modulusOf(pair.privateKey))).to.equal(false));
    });
  });
});
