import { hashInfoByName } from '../tpm/constants.js';

/**
 * The hash algorithms that appear in IMA measurement lists and runtime policies. Digest sizes and
 * node:crypto names come from the shared table (`HASH_ALGORITHMS` in lib/tpm/constants.ts); this file
 * adds only what is IMA's own: the ids the kernel writes into IMA signature headers, and the two kernel
 * hashes that are no TPM algorithm.
 *
 * Names follow Keylime's `algorithms.Hash` (`sha1`, `sha256`, `sha384`, `sha512`, `sm3_256`) and
 * the kernel's `hash_algo_name[]` (`md5`, `sha224`); ids follow `include/uapi/linux/hash_info.h`.
 */

export interface ImaHashAlgorithm {
  /** The name as written in `d-ng` (`sha256:…`) and in Keylime policies. */
  readonly name: string;
  /** The name node:crypto knows it by. */
  readonly nodeName: string;
  readonly digestSize: number;
  /** `enum hash_algo` id used in `signature_v2_hdr.hash_algo`. */
  readonly linuxId: number;
}

/** `enum hash_algo` ids of the TPM hashes IMA uses, keyed by their shared name. */
const LINUX_IDS: ReadonlyArray<readonly [name: string, linuxId: number]> = [
  ['sha1', 2],
  ['sha256', 4],
  ['sha384', 5],
  ['sha512', 6],
  ['sm3_256', 17],
];

function tpmHash(name: string, linuxId: number): ImaHashAlgorithm {
  const shared = hashInfoByName(name);
  if (shared === undefined) {
    throw new Error(`${name} is missing from HASH_ALGORITHMS`);
  }
  return { name, nodeName: shared.nodeName, digestSize: shared.digestSize, linuxId };
}

/** `md5` and `sha224` are kernel hashes that no TPM bank or Keylime policy names. */
const ALGORITHMS: readonly ImaHashAlgorithm[] = [
  { name: 'md5', nodeName: 'md5', digestSize: 16, linuxId: 1 },
  { name: 'sha224', nodeName: 'sha224', digestSize: 28, linuxId: 7 },
  ...LINUX_IDS.map(([name, linuxId]) => tpmHash(name, linuxId)),
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

/** The PCR banks we replay PCR 10 in (sm3_256, which node:crypto may lack, is not one). */
export const PCR_BANKS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
export type PcrBank = (typeof PCR_BANKS)[number];

/** Digest size of a PCR bank, in bytes. */
export function pcrBankSize(bank: PcrBank): number {
  return (BY_NAME.get(bank) as ImaHashAlgorithm).digestSize;
}

/**
 * The algorithms whose digests are `hexLength` hex characters long, as Keylime's
 * `create-runtime-policy` guesses them: sha256 and sm3_256 are both 64 characters, so that length
 * is ambiguous.
 */
export function imaHashesByHexLength(hexLength: number): ImaHashAlgorithm[] {
  return ALGORITHMS.filter((a) => a.digestSize * 2 === hexLength && hashInfoByName(a.name) !== undefined);
}
