import type { KeyObject } from 'node:crypto';
import { TPM_ALG_RSA } from './constants.js';
import type { TpmtPublicFields } from './tpmt-public.js';

/** Smallest RSA modulus accepted for an EK or AK (NIST SP 800-131A: 1024-bit RSA is disallowed for signatures). */
export const MIN_TPM_RSA_BITS = 2048;

/**
 * The small primes of the ROCA fingerprint (CVE-2017-15361, Nemec et al., CCS 2017). The RSA key
 * generation of Infineon's library (in its TPMs' firmware until the 2017 updates) built each prime as
 * k·M + (65537^a mod M), M a primorial, so the modulus is a power of 65537 modulo every prime of M;
 * every M used (512- to 4096-bit keys) includes these primes. A random modulus passes all of them
 * with a probability far below 2^-100.
 */
const ROCA_PRIMES = [3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167];

/** Per prime r of `ROCA_PRIMES`: which residues mod r are powers of 65537. */
const ROCA_SUBGROUPS: readonly (readonly boolean[])[] = ROCA_PRIMES.map((r) => {
  const member = new Array<boolean>(r).fill(false);
  for (let power = 1; !member[power]; power = (power * (65537 % r)) % r) member[power] = true;
  return member;
});

/** Whether a big-endian RSA modulus carries the ROCA fingerprint. */
export function hasRocaFingerprint(modulus: Uint8Array): boolean {
  return ROCA_PRIMES.every((r, index) => {
    let residue = 0;
    for (const byte of modulus) residue = (residue * 256 + byte) % r;
    return ROCA_SUBGROUPS[index]?.[residue] === true;
  });
}

/**
 * Why a TPM key (EK or AK) cannot be trusted whatever its attributes and certificate say, or null:
 * an RSA modulus under `MIN_TPM_RSA_BITS`, or one a vulnerable Infineon TPM made (ROCA), whose
 * private key can be computed from the public one: with it, anyone can activate credentials for the
 * EK or sign quotes as the AK without the TPM. ECC keys are not affected.
 */
export function tpmKeyWeakness(pub: TpmtPublicFields): string | null {
  return pub.type === TPM_ALG_RSA ? rsaModulusWeakness(pub.unique.n) : null;
}

/** `tpmKeyWeakness` for a public key read from PEM or DER (an AK a user gives the CLI as a file). */
export function publicKeyWeakness(key: KeyObject): string | null {
  if (key.asymmetricKeyType !== 'rsa') return null;
  return rsaModulusWeakness(Buffer.from(key.export({ format: 'jwk' }).n ?? '', 'base64url'));
}

function rsaModulusWeakness(modulus: Uint8Array): string | null {
  // Counted without leading zero bytes: a TPM2B may carry a short modulus padded to 256 bytes.
  const bits = (modulus.length - leadingZeroBytes(modulus)) * 8;
  if (bits < MIN_TPM_RSA_BITS) return `is a ${bits}-bit RSA key (at least ${MIN_TPM_RSA_BITS} bits are required)`;
  if (hasRocaFingerprint(modulus)) {
    return 'is an RSA key made by a TPM with the ROCA flaw (CVE-2017-15361, Infineon firmware before its 2017 update): its private key can be computed from the public key; update the TPM firmware, then clear the TPM and register again';
  }
  return null;
}

function leadingZeroBytes(bytes: Uint8Array): number {
  const first = bytes.findIndex((byte) => byte !== 0);
  return first === -1 ? bytes.length : first;
}
