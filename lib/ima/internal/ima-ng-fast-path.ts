import type { CompiledRuntimePolicy } from '../compiled-policy.js';
import { pcrBankSize, type ImaHashAlgorithm, type PcrBank } from '../hash-algorithms.js';
import type { Pcr10Replay } from './pcr10-replay.js';
import { TemplateDigests } from './template-digests.js';
import { digestNgSize, nameNgSize } from './template-data.js';

const SPACE = 0x20;
const BOOT_AGGREGATE = 'boot_aggregate';
/** Paths longer than this (Linux PATH_MAX is 4096 bytes) skip the fast path. */
const LONGEST_PATH = 8192;
const ASCII_MAX = 0x7f;
const NOT_HEX = 0x100;
/**
 * The byte two ASCII hex digits (either case) spell, indexed by `first << 7 | second`; 0x100 for
 * any other pair of characters below 128. One load per byte where a table of digits takes two.
 */
const HEX_PAIR = new Uint16Array(128 * 128).fill(NOT_HEX);
const DIGITS = '0123456789abcdef';
for (let high = 0; high < 16; high++) {
  for (let low = 0; low < 16; low++) {
    for (const first of [DIGITS[high] as string, (DIGITS[high] as string).toUpperCase()]) {
      for (const second of [DIGITS[low] as string, (DIGITS[low] as string).toUpperCase()]) {
        HEX_PAIR[(first.charCodeAt(0) << 7) | second.charCodeAt(0)] = (high << 4) | low;
      }
    }
  }
}

/** The byte of the hex digits at `text[at]` and `text[at + 1]`, or 0x100 when they are not hex. */
function hexByte(text: string, at: number): number {
  const first = text.charCodeAt(at);
  const second = text.charCodeAt(at + 1);
  return (first | second) <= ASCII_MAX ? (HEX_PAIR[(first << 7) | second] as number) : NOT_HEX;
}

/**
 * Whether `text` holds `literal` at `at`. A loop over char codes: a `startsWith` call per field
 * cost about 60 ns a line on top of the three hashes.
 */
function spells(text: string, at: number, literal: string): boolean {
  for (let i = 0; i < literal.length; i++) {
    if (text.charCodeAt(at + i) !== literal.charCodeAt(i)) {
      return false;
    }
  }
  return true;
}

/**
 * The template data of one `ima-ng` line with a given file digest algorithm, built in one reused
 * buffer: `d-ng` (u32 size, `alg:` NUL, digest) then `n-ng` (u32 size, path, NUL), sizes
 * little-endian (Linux ima_template_lib.c). The `d-ng` header never changes, so it is written once;
 * the digest and the path are written byte by byte from the text, with no slice of it and no
 * native `Buffer#write` call (together about 0.2 µs a line).
 */
class TemplateDataScratch {
  readonly prefix: string;
  readonly hexLength: number;
  /** Where the digest bytes go, and where the `n-ng` size goes. */
  private readonly digestAt: number;
  private readonly nameAt: number;
  private readonly buffer: Buffer;
  /** `buffer.subarray(0, n)` by length `n`, made once each: hashing takes an exact view. */
  private readonly views: Buffer[] = [];

  constructor(algorithm: PcrBank) {
    const digestSize = pcrBankSize(algorithm);
    this.prefix = `${algorithm}:`;
    this.hexLength = digestSize * 2;
    this.nameAt = digestNgSize(algorithm.length, digestSize);
    this.digestAt = this.nameAt - digestSize;
    this.buffer = Buffer.alloc(this.nameAt + nameNgSize(LONGEST_PATH));
    this.buffer.writeUInt32LE(this.nameAt - 4, 0);
    this.buffer.write(this.prefix, 4, 'latin1');
  }

  /**
   * The template data for the digest `text[hexStart, hexStart + hexLength)` and the path
   * `text[pathStart, end)`, or `undefined` when the digest is not hex, or the path holds a space or
   * a character beyond ASCII (whose UTF-8 bytes the full parser writes) or is longer than any real
   * path. An ASCII character is its own UTF-8 byte, so the bytes are those the full parser writes.
   */
  build(text: string, hexStart: number, pathStart: number, end: number): Buffer | undefined {
    const pathLength = end - pathStart;
    if (pathLength > LONGEST_PATH) {
      return undefined;
    }
    const b = this.buffer;
    let at = this.digestAt;
    let bytes = 0;
    for (let i = hexStart; i < hexStart + this.hexLength; i += 2) {
      const byte = hexByte(text, i);
      bytes |= byte;
      b[at++] = byte;
    }
    if (bytes >= NOT_HEX) {
      return undefined;
    }
    b.writeUInt32LE(pathLength + 1, this.nameAt);
    at = this.nameAt + 4;
    for (let i = pathStart; i < end; i++) {
      const char = text.charCodeAt(i);
      if (char === SPACE || char > ASCII_MAX) {
        return undefined;
      }
      b[at++] = char;
    }
    b[at++] = 0;
    return (this.views[at] ??= b.subarray(0, at));
  }
}

/**
 * The common line of a measurement list — `10 <template hash> ima-ng sha256:<hex> <path>` (or a
 * `sha1:` file digest), whose template hash, policy digest or exclusion accepts it — checked
 * straight from the text, without an entry object: the template data is rebuilt in a reused buffer
 * (TemplateDataScratch), hashed by the full validator's rule (TemplateDigests: in the banks the
 * replay needs, in the log's hash algorithm and, with a policy, in SHA-256, each at most once; a
 * sha1 log under a sha256 quote: SHA-1 and SHA-256 of the template data, then the extend) —
 * the logged template hash compared digit by digit with the computed one, the line looked up in the
 * policy by its template data's SHA-256 (ImaNgPolicyIndex), and PCR 10 extended. Per line it
 * allocates only the hash results. A path beyond ASCII is left to the full parser.
 *
 * It only ever says yes: `accept` returns false, having changed nothing, for any line it does not
 * settle — another template or PCR, an odd spelling, a violation (all-zero hash: no real hash
 * matches it), a template hash that does not match, a path neither listed with this digest nor
 * excluded, `boot_aggregate` with extra aggregates — and the caller then runs the full parser and
 * validator on it, which give the verdict and the failure. So the fast path changes the cost, never
 * the outcome.
 */
export class ImaNgFastPath {
  private readonly sha256Data = new TemplateDataScratch('sha256');
  private readonly sha1Data = new TemplateDataScratch('sha1');
  /** The bank whose hash the logged template hashes are; undefined when the fast path leaves the log alone. */
  private readonly loggedBank: PcrBank | undefined;
  /** Hex digits of a logged template hash (when `loggedBank` is set). */
  private readonly loggedHexLength: number;
  private readonly digests: TemplateDigests;

  /** `banks`: the banks of PCR 10 the round replays (those of the `Pcr10Replay` given to `accept`). */
  constructor(
    logHash: ImaHashAlgorithm,
    banks: readonly PcrBank[],
    private readonly policy: CompiledRuntimePolicy | undefined,
    private readonly extraBootAggregates: boolean,
  ) {
    this.loggedBank = logHash.name === 'sha1' || logHash.name === 'sha256' ? logHash.name : undefined;
    this.loggedHexLength = this.loggedBank === undefined ? 0 : pcrBankSize(this.loggedBank) * 2;
    this.digests = new TemplateDigests(logHash, banks, policy !== undefined);
  }

  /** True when the line `text[start, end)` was accepted and extended into `replay`. */
  accept(text: string, start: number, end: number, replay: Pcr10Replay): boolean {
    const hashEnd = start + 3 + this.loggedHexLength;
    if (this.loggedBank === undefined || !spells(text, start, '10 ') || text.charCodeAt(hashEnd) !== SPACE || !spells(text, hashEnd + 1, 'ima-ng ')) {
      return false;
    }
    const fieldStart = hashEnd + 8;
    const scratch = spells(text, fieldStart, this.sha256Data.prefix)
      ? this.sha256Data
      : spells(text, fieldStart, this.sha1Data.prefix)
        ? this.sha1Data
        : undefined;
    if (scratch === undefined) {
      return false;
    }
    const hexStart = fieldStart + scratch.prefix.length;
    const pathStart = hexStart + scratch.hexLength + 1;
    if (pathStart >= end || text.charCodeAt(pathStart - 1) !== SPACE) {
      return false;
    }
    const data = scratch.build(text, hexStart, pathStart, end);
    if (data === undefined) {
      return false;
    }
    const digests = this.digests;
    digests.compute(data);
    if (!sameDigest(text, start + 3, digests.logged) || !this.accepted(text, pathStart, end, digests.sha256Words)) {
      return false;
    }
    replay.extend(digests);
    return true;
  }

  /** The `ima-ng` rule's yes for the path `text[pathStart, end)`: listed with this digest, or excluded. */
  private accepted(text: string, pathStart: number, end: number, sha256Words: Int32Array): boolean {
    const policy = this.policy;
    if (policy === undefined) {
      return true;
    }
    if (this.extraBootAggregates && end - pathStart === BOOT_AGGREGATE.length && spells(text, pathStart, BOOT_AGGREGATE)) {
      return false;
    }
    return policy.imaNgIndex.has(sha256Words) || policy.isExcluded(text.slice(pathStart, end));
  }
}

/** Whether the hex digits at `text[at…]` spell the bytes of `digest` (latin1), in either case. */
function sameDigest(text: string, at: number, digest: string): boolean {
  let diff = 0;
  for (let i = 0; i < digest.length; i++) {
    diff |= hexByte(text, at + 2 * i) ^ digest.charCodeAt(i);
  }
  return diff === 0;
}
