import { checkPrimeSync, randomBytes } from 'node:crypto';

/** The primes below 168: the primorial Infineon's generator reduced by starts with them (Nemec et al. 2017, §2). */
const SMALL_PRIMES = [3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167];

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if ((e & 1n) === 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

const toBigInt = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
const toBytes = (value: bigint, length: number): Uint8Array => new Uint8Array(Buffer.from(value.toString(16).padStart(length * 2, '0'), 'hex'));

/**
 * A 1024-bit prime built as the flawed generator built them: k·M + (65537^a mod M), M = 2·3·…·167
 * (2 keeps the prime odd), so a modulus of two such primes is a power of 65537 modulo every prime of M.
 */
function rocaPrime(): bigint {
  const primorial = SMALL_PRIMES.reduce((product, p) => product * BigInt(p), 2n);
  const low = 3n << 1022n;
  for (;;) {
    const a = toBigInt(randomBytes(8));
    const k = (low + toBigInt(randomBytes(120))) / primorial;
    const candidate = k * primorial + modPow(65537n, a, primorial);
    if (candidate >> 1024n === 0n && checkPrimeSync(candidate)) return candidate;
  }
}

/** A 2048-bit RSA modulus with the ROCA fingerprint (CVE-2017-15361), big-endian. */
export function rocaModulus(): Uint8Array {
  return toBytes(rocaPrime() * rocaPrime(), 256);
}
