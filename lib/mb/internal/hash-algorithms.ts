import { getHashes, hash } from 'node:crypto';
import { HASH_ALGORITHMS, TPM_ALG_SHA1 } from '../../tpm/constants.js';

/**
 * A hash algorithm an event log can name, by TPM_ALG_ID, with the digest size fixed by the TCG
 * Algorithm Registry (the shared table `HASH_ALGORITHMS`). A crypto-agile log also gives every size in
 * its Spec ID event (TCG PC Client PFP §9.4.5.1); a size there that contradicts the table is a
 * malformed log.
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

/** The shared table, with the node:crypto name dropped where this Node lacks the algorithm. */
const KNOWN: readonly HashAlgorithm[] = HASH_ALGORITHMS.map(({ algId, name, digestSize, nodeName }) => ({
  algId,
  name,
  digestSize,
  nodeName: AVAILABLE.has(nodeName) ? nodeName : null,
}));

const BY_ID = new Map(KNOWN.map((alg) => [alg.algId, alg]));
const BY_NAME = new Map(KNOWN.map((alg) => [alg.name, alg]));

/** TPM_ALG_SHA1: the only bank of a SHA1-format (TCG_PCR_EVENT) log. */
export const SHA1 = BY_ID.get(TPM_ALG_SHA1) as HashAlgorithm;

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

/**
 * Digest of `data` with `alg`; the caller checks `alg.nodeName` first. One-shot (`crypto.hash`): no
 * Hash object to create, feed and finish, which costs more than hashing an event's few hundred bytes.
 */
export function digestOf(alg: HashAlgorithm, data: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.from(digestLatin1(alg, data), 'latin1'));
}

/**
 * Whether `digest` is the digest of `data` with `alg`, compared in constant time over `digest`'s
 * length (STYLE 7). The digest is taken as a latin1 string (`'binary'`, one char per byte), as the
 * IMA replay does: a short string costs node:crypto less than a Buffer, whose backing store must be
 * allocated and later collected, for every event of a log.
 */
export function digestEquals(alg: HashAlgorithm, data: Uint8Array, digest: Uint8Array): boolean {
  const computed = digestLatin1(alg, data);
  if (computed.length !== digest.length) {
    return false;
  }
  let difference = 0;
  for (let i = 0; i < digest.length; i++) {
    difference |= computed.charCodeAt(i) ^ (digest[i] as number);
  }
  return difference === 0;
}

/** `input` is `value ‖ digest` (each `alg.digestSize` bytes): its first half becomes `H(input)`, a PCR extend in place. */
export function extendInPlace(alg: HashAlgorithm, input: Uint8Array): void {
  const value = digestLatin1(alg, input);
  for (let i = 0; i < value.length; i++) {
    input[i] = value.charCodeAt(i);
  }
}

function digestLatin1(alg: HashAlgorithm, data: Uint8Array): string {
  if (alg.nodeName === null) {
    throw new Error(`no implementation of ${alg.name} in this Node.js`);
  }
  return hash(alg.nodeName, data, 'binary');
}
