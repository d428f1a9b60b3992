import { createHash, getHashes } from 'node:crypto';

/**
 * The hash algorithms an event log can name, by TPM_ALG_ID (TCG Algorithm Registry, Table 3) with the
 * digest size fixed by that registry. A crypto-agile log also gives every size in its Spec ID event
 * (TCG PC Client PFP §9.4.5.1); a size there that contradicts this table is a malformed log.
 */
export interface HashAlgorithm {
  /** TPM_ALG_ID. */
  readonly algId: number;
  /** Name used in PCR maps and refstates (`sha256`), as Keylime and tpm2-tools spell it. */
  readonly name: string;
  readonly digestSize: number;
  /** node:crypto name, or null when this Node cannot compute it (the bank is then not replayed). */
  readonly nodeName: string | null;
}

const AVAILABLE = new Set(getHashes());

function known(algId: number, name: string, digestSize: number, nodeName: string): HashAlgorithm {
  return { algId, name, digestSize, nodeName: AVAILABLE.has(nodeName) ? nodeName : null };
}

/** TPM_ALG_SHA1 … TPM_ALG_SHA3_512 (TCG Algorithm Registry Table 3). */
const KNOWN: readonly HashAlgorithm[] = [
  known(0x0004, 'sha1', 20, 'sha1'),
  known(0x000b, 'sha256', 32, 'sha256'),
  known(0x000c, 'sha384', 48, 'sha384'),
  known(0x000d, 'sha512', 64, 'sha512'),
  known(0x0012, 'sm3_256', 32, 'sm3'),
  known(0x0027, 'sha3_256', 32, 'sha3-256'),
  known(0x0028, 'sha3_384', 48, 'sha3-384'),
  known(0x0029, 'sha3_512', 64, 'sha3-512'),
];

const BY_ID = new Map(KNOWN.map((alg) => [alg.algId, alg]));
const BY_NAME = new Map(KNOWN.map((alg) => [alg.name, alg]));

/** TPM_ALG_SHA1: the only bank of a SHA1-format (TCG_PCR_EVENT) log. */
export const SHA1 = BY_ID.get(0x0004) as HashAlgorithm;

/** The registry entry for `algId`, or undefined when the algorithm is not one we know. */
export function knownHashAlgorithm(algId: number): HashAlgorithm | undefined {
  return BY_ID.get(algId);
}

/** The registry entry for a bank name (`sha256`), or undefined. */
export function hashAlgorithmByName(name: string): HashAlgorithm | undefined {
  return BY_NAME.get(name);
}

/**
 * An algorithm a Spec ID event names but we do not know: it gets a stable name from its id
 * (`alg_0x00b0`) and the size the log declares, so its digests can be framed but never replayed.
 */
export function unknownHashAlgorithm(algId: number, digestSize: number): HashAlgorithm {
  return { algId, name: `alg_0x${algId.toString(16).padStart(4, '0')}`, digestSize, nodeName: null };
}

/** Digest of `parts` (concatenated) with `alg`; the caller checks `alg.nodeName` first. */
export function digestWith(alg: HashAlgorithm, ...parts: Uint8Array[]): Uint8Array {
  if (alg.nodeName === null) {
    throw new Error(`no implementation of ${alg.name} in this Node.js`);
  }
  const hash = createHash(alg.nodeName);
  for (const part of parts) {
    hash.update(part);
  }
  return new Uint8Array(hash.digest());
}
