import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { PrecomputedRsaKeys } from '../../lib/pki/rsa-key-source.js';
import { REPO_ROOT } from './paths.js';

/** RSA-2048 keys made ahead for the tests (fixtures/rsa-key-pool/README.md). */
export const RSA_KEY_POOL_FILE = path.join(REPO_ROOT, 'fixtures', 'rsa-key-pool', 'keys.txt');

const PUBLIC_EXPONENT = 0x10001n;
const MODULUS_BITS = 2048;

/**
 * The keys of a pool file (one `<p>:<q>` line per key, the primes in base64url) in file order, each
 * handed out once; `undefined` when all are used. A key whose modulus was handed out before, or that is
 * not a 2048-bit RSA key with e = 65537, throws: a test process never gets the same key twice.
 */
export function rsaKeyPool(text: string): PrecomputedRsaKeys {
  const lines = text.split('\n').filter((line) => line !== '');
  const moduli = new Set<bigint>();
  let next = 0;
  return (): KeyObject | undefined => {
    const line = lines[next];
    if (line === undefined) {
      return undefined;
    }
    next += 1;
    const { key, modulus } = privateKeyFromPrimes(line, next);
    if (moduli.has(modulus)) {
      throw new Error(`RSA key pool: key ${next} repeats an earlier key`);
    }
    moduli.add(modulus);
    return key;
  };
}

/** The pool of `RSA_KEY_POOL_FILE`. */
export function rsaKeyPoolFromFile(): PrecomputedRsaKeys {
  return rsaKeyPool(readFileSync(RSA_KEY_POOL_FILE, 'utf8'));
}

function privateKeyFromPrimes(line: string, index: number): { key: KeyObject; modulus: bigint } {
  const parts = line.split(':');
  if (parts.length !== 2) {
    throw new Error(`RSA key pool: key ${index} is not two primes joined by ':'`);
  }
  const [p, q] = parts.map(fromBase64Url) as [bigint, bigint];
  const n = p * q;
  if (n.toString(2).length !== MODULUS_BITS || p === q || p < 3n || q < 3n) {
    throw new Error(`RSA key pool: key ${index} is not an RSA-${MODULUS_BITS} key`);
  }
  const lambda = lcm(p - 1n, q - 1n);
  const d = modularInverse(PUBLIC_EXPONENT, lambda, index);
  const jwk = {
    kty: 'RSA',
    n: toBase64Url(n),
    e: toBase64Url(PUBLIC_EXPONENT),
    d: toBase64Url(d),
    p: toBase64Url(p),
    q: toBase64Url(q),
    dp: toBase64Url(d % (p - 1n)),
    dq: toBase64Url(d % (q - 1n)),
    qi: toBase64Url(modularInverse(q, p, index)),
  };
  return { key: createPrivateKey({ key: jwk, format: 'jwk' }), modulus: n };
}

function modularInverse(a: bigint, m: bigint, index: number): bigint {
  let [oldR, r] = [a % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const quotient = oldR / r;
    [oldR, r] = [r, oldR - quotient * r];
    [oldS, s] = [s, oldS - quotient * s];
  }
  if (oldR !== 1n) {
    throw new Error(`RSA key pool: key ${index} has no private exponent (not a valid RSA key)`);
  }
  return ((oldS % m) + m) % m;
}

function lcm(a: bigint, b: bigint): bigint {
  let [x, y] = [a, b];
  while (y !== 0n) {
    [x, y] = [y, x % y];
  }
  return (a / x) * b;
}

function fromBase64Url(text: string): bigint {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) {
    throw new Error('RSA key pool: a prime is not base64url');
  }
  return BigInt(`0x${Buffer.from(text, 'base64url').toString('hex')}`);
}

function toBase64Url(value: bigint): string {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex').toString('base64url');
}
