/**
 * The hash algorithms that appear in IMA measurement lists and runtime policies, with their digest
 * sizes, node:crypto names and the ids the kernel writes into IMA signature headers.
 *
 * Names follow Keylime's `algorithms.Hash` (`sha1`, `sha256`, `sha384`, `sha512`, `sm3_256`) and
 * the kernel's `hash_algo_name[]` (`md5`, `sha224`); ids follow `include/uapi/linux/hash_info.h`.
 */

export interface ImaHashAlgorithm {
  /** The name as written in `d-ng` (`sha256:…`) and in Keylime policies. */
  readonly name: string;
  /** The name node:crypto knows it by. */
  readonly nodeName: string;
  /** Digest size in bytes. */
  readonly size: number;
  /** `enum hash_algo` id used in `signature_v2_hdr.hash_algo`. */
  readonly linuxId: number;
}

const ALGORITHMS: readonly ImaHashAlgorithm[] = [
  { name: 'md5', nodeName: 'md5', size: 16, linuxId: 1 },
  { name: 'sha1', nodeName: 'sha1', size: 20, linuxId: 2 },
  { name: 'sha256', nodeName: 'sha256', size: 32, linuxId: 4 },
  { name: 'sha384', nodeName: 'sha384', size: 48, linuxId: 5 },
  { name: 'sha512', nodeName: 'sha512', size: 64, linuxId: 6 },
  { name: 'sha224', nodeName: 'sha224', size: 28, linuxId: 7 },
  { name: 'sm3_256', nodeName: 'sm3', size: 32, linuxId: 17 },
];

const BY_NAME = new Map(ALGORITHMS.map((a) => [a.name, a]));
const BY_LINUX_ID = new Map(ALGORITHMS.map((a) => [a.linuxId, a]));

/** The algorithm called `name` in an IMA log or policy, or `undefined` when we do not know it. */
export function imaHashByName(name: string): ImaHashAlgorithm | undefined {
  return BY_NAME.get(name);
}

/** The algorithm with this `enum hash_algo` id, or `undefined`. */
export function imaHashByLinuxId(id: number): ImaHashAlgorithm | undefined {
  return BY_LINUX_ID.get(id);
}

/**
 * Algorithms a runtime policy may name as `ima.log_hash_alg` (Keylime `RUNTIME_POLICY_SCHEMA`): the
 * hash the kernel used for the template hashes printed in the list it was read from.
 */
export const LOG_HASH_ALGORITHMS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
export type LogHashAlgorithm = (typeof LOG_HASH_ALGORITHMS)[number];

/** The PCR banks we replay PCR 10 in. */
export const PCR_BANKS = ['sha1', 'sha256'] as const;
export type PcrBank = (typeof PCR_BANKS)[number];

/** Digest size of a PCR bank, in bytes. */
export function pcrBankSize(bank: PcrBank): number {
  return bank === 'sha1' ? 20 : 32;
}

/**
 * The algorithms whose digests are `hexLength` hex characters long, as Keylime's
 * `create-runtime-policy` guesses them: sha256 and sm3_256 are both 64 characters, so that length
 * is ambiguous.
 */
export function imaHashesByHexLength(hexLength: number): ImaHashAlgorithm[] {
  return ALGORITHMS.filter((a) => a.size * 2 === hexLength && a.name !== 'md5' && a.name !== 'sha224');
}
