import type { CompiledRuntimePolicy } from '../compiled-policy.js';
import { pcrBankSize, PCR_BANKS, type ImaHashAlgorithm, type PcrBank } from '../hash-algorithms.js';
import type { Pcr10Replay } from './pcr10-replay.js';
import { TemplateDigests } from './template-digests.js';
import { digestNgSize, nameNgSize } from './template-data.js';

const SPACE = 0x20;
const NEWLINE = 0x0a;
const BOOT_AGGREGATE = 'boot_aggregate';
/** `10 `, the space after the template hash, `ima-ng `. */
const FIXED_FIELDS = '10  ima-ng ';
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

/** The byte the hex digits `bytes[at]`, `bytes[at + 1]` spell, or 0x100 when they are not hex. */
function hexByte(bytes: Uint8Array, at: number): number {
  const first = bytes[at] as number;
  const second = bytes[at + 1] as number;
  return (first | second) <= ASCII_MAX ? (HEX_PAIR[(first << 7) | second] as number) : NOT_HEX;
}

/** Whether `bytes` holds the ASCII `literal` at `at`. */
function spells(bytes: Uint8Array, at: number, literal: string): boolean {
  for (let i = 0; i < literal.length; i++) {
    if (bytes[at + i] !== literal.charCodeAt(i)) {
      return false;
    }
  }
  return true;
}

/**
 * The template data of one `ima-ng` line with a given file digest algorithm, built in one reused
 * buffer: `d-ng` (u32 size, `alg:` NUL, digest) then `n-ng` (u32 size, path, NUL), sizes
 * little-endian (Linux ima_template_lib.c). The `d-ng` header never changes, so it is written once;
 * the digest and the path are written byte by byte from the list's bytes, with no slice and no
 * native `Buffer#write` call.
 */
class TemplateDataScratch {
  readonly prefix: string;
  readonly hexLength: number;
  /** Where the digest bytes go, and where the `n-ng` size goes. */
  private readonly digestAt: number;
  private readonly nameAt: number;
  /** Grown (up to a path of LONGEST_PATH) when a path needs it: most rounds never do. */
  private buffer: Buffer;
  /** `buffer.subarray(0, n)` by length `n`, made once each: hashing takes an exact view. */
  private views: Buffer[] = [];
  /** The template data the last successful `build` wrote. */
  data: Buffer;

  constructor(algorithm: PcrBank) {
    const digestSize = pcrBankSize(algorithm);
    this.prefix = `${algorithm}:`;
    this.hexLength = digestSize * 2;
    this.nameAt = digestNgSize(algorithm.length, digestSize);
    this.digestAt = this.nameAt - digestSize;
    this.buffer = Buffer.alloc(512);
    this.buffer.writeUInt32LE(this.nameAt - 4, 0);
    this.buffer.write(this.prefix, 4, 'latin1');
    this.data = Buffer.alloc(0);
  }

  /**
   * Builds the template data for the digest `bytes[hexStart, hexStart + hexLength)` and the path
   * from `pathStart` to the end of the line (a newline or the end of `bytes`) and returns where the
   * line ends, or -1 when the digest is not hex, or the path is empty, holds a space or a byte
   * beyond ASCII (any character beyond ASCII is such bytes in UTF-8) or is longer than any real
   * path. An ASCII character is its own UTF-8 byte, so the bytes are those the full parser writes.
   * `data` is then the template data.
   */
  build(bytes: Uint8Array, hexStart: number, pathStart: number): number {
    let b = this.buffer;
    let at = this.digestAt;
    let digest = 0;
    for (let i = hexStart; i < hexStart + this.hexLength; i += 2) {
      const byte = hexByte(bytes, i);
      digest |= byte;
      b[at++] = byte;
    }
    if (digest >= NOT_HEX) {
      return -1;
    }
    at = this.nameAt + 4;
    const stop = Math.min(bytes.length, pathStart + LONGEST_PATH);
    let end = pathStart;
    let room = b.length - 1;
    for (; end < stop; end++) {
      const byte = bytes[end] as number;
      // The usual byte (printable, not a space) costs two comparisons; the others are sorted here.
      if (byte <= SPACE || byte > ASCII_MAX) {
        if (byte === NEWLINE) {
          break;
        }
        if (byte === SPACE || byte > ASCII_MAX) {
          return -1;
        }
      }
      if (at === room) {
        b = this.grow();
        room = b.length - 1;
      }
      b[at++] = byte;
    }
    if (end === pathStart || (end < bytes.length && bytes[end] !== NEWLINE)) {
      return -1;
    }
    b.writeUInt32LE(end - pathStart + 1, this.nameAt);
    b[at++] = 0;
    this.data = this.views[at] ??= b.subarray(0, at);
    return end;
  }

  /** A buffer twice as large (or as large as LONGEST_PATH needs), holding what this one held. */
  private grow(): Buffer {
    const larger = Buffer.alloc(Math.min(2 * this.buffer.length, this.nameAt + nameNgSize(LONGEST_PATH)));
    this.buffer.copy(larger);
    this.buffer = larger;
    this.views = [];
    return larger;
  }
}

/**
 * The common line of a measurement list — `10 <template hash> ima-ng sha256:<hex> <path>` (or a
 * `sha1:` file digest), whose template hash, policy digest or exclusion accepts it — checked
 * straight from the list's UTF-8 bytes, without an entry object: the template data is rebuilt in a
 * reused buffer (TemplateDataScratch), hashed by the full validator's rule (TemplateDigests: in the
 * banks the replay needs, with a policy in SHA-256, and in the log's hash algorithm when the line is
 * held to its logged hash, each at most once; a sha1 log under a sha256 quote: SHA-256 of the
 * template data and the extend, and SHA-1 of the template data for a line the quote does not bind) —
 * the logged template hash compared digit by digit with the computed one (or, not held to it, only
 * checked to be hex and not all zeros), the line looked up in the
 * policy by its template data's SHA-256 (ImaNgPolicyIndex), and PCR 10 extended. Per line it
 * allocates only the hash results. It reads bytes rather than the string's chars: each `charCodeAt`
 * checks the string's representation, a byte array load does not (about 0.25 µs a line of the
 * 50,000-line bench round, measured interleaved).
 *
 * It only ever says yes, and only for a line all of whose bytes it read and found ASCII (so the
 * line's characters are those bytes, one for one): `accept` returns -1, having changed nothing, for
 * any line it does not settle — another template or PCR, an odd spelling, a character beyond ASCII,
 * a violation (all-zero hash), a template hash that does not match (when compared), a path
 * neither listed with this digest nor excluded, `boot_aggregate` with extra aggregates — and the
 * caller then runs the full parser and validator on the line's text, which give the verdict and the
 * failure. So the fast path changes the cost, never the outcome.
 */
export class ImaNgFastPath {
  private readonly sha256Data = new TemplateDataScratch('sha256');
  private readonly sha1Data = new TemplateDataScratch('sha1');
  /** The bank whose hash the logged template hashes are; undefined when the fast path leaves the log alone. */
  private readonly loggedBank: PcrBank | undefined;
  /** Hex digits of a logged template hash (when `loggedBank` is set). */
  private readonly loggedHexLength: number;
  /** Bytes of the shortest line it takes (a `sha1:` digest, a one-byte path): every byte before the path's is read. */
  private readonly shortestLine: number;
  private readonly digests: TemplateDigests;

  /** `banks`: the banks of PCR 10 the round replays (those of the `Pcr10Replay` given to `accept`). */
  constructor(
    logHash: ImaHashAlgorithm,
    banks: readonly PcrBank[],
    private readonly policy: CompiledRuntimePolicy | undefined,
    private readonly extraBootAggregates: boolean,
  ) {
    this.loggedBank = (PCR_BANKS as readonly string[]).includes(logHash.name) ? (logHash.name as PcrBank) : undefined;
    this.loggedHexLength = this.loggedBank === undefined ? 0 : pcrBankSize(this.loggedBank) * 2;
    this.shortestLine = FIXED_FIELDS.length + this.loggedHexLength + this.sha1Data.prefix.length + this.sha1Data.hexLength + 2;
    this.digests = new TemplateDigests(logHash, banks, policy !== undefined);
  }

  /**
   * Checks the line of `bytes` (a list's UTF-8) that starts at `start`: when it accepts it, extends
   * `replay` and returns where the line ends (its newline, or the end of `bytes`); otherwise -1.
   * `holdToLogged`: compare the logged template hash with the template data's even when that costs
   * a hash of its own (a line the quote does not bind; TemplateDigests). Either way the logged hash
   * must be hex and not all zeros (a violation, which the full validator extends as all-ones).
   */
  accept(bytes: Buffer, start: number, replay: Pcr10Replay, holdToLogged: boolean): number {
    const hashEnd = start + 3 + this.loggedHexLength;
    if (this.loggedBank === undefined || start + this.shortestLine > bytes.length || !spells(bytes, start, '10 ') || bytes[hashEnd] !== SPACE || !spells(bytes, hashEnd + 1, 'ima-ng ')) {
      return -1;
    }
    const fieldStart = hashEnd + 8;
    const scratch = spells(bytes, fieldStart, this.sha256Data.prefix)
      ? this.sha256Data
      : spells(bytes, fieldStart, this.sha1Data.prefix)
        ? this.sha1Data
        : undefined;
    if (scratch === undefined) {
      return -1;
    }
    const hexStart = fieldStart + scratch.prefix.length;
    const pathStart = hexStart + scratch.hexLength + 1;
    if (pathStart >= bytes.length || bytes[pathStart - 1] !== SPACE) {
      return -1;
    }
    const end = scratch.build(bytes, hexStart, pathStart);
    if (end < 0) {
      return -1;
    }
    const digests = this.digests;
    digests.compute(scratch.data, holdToLogged);
    const loggedOk = digests.logged === '' ? isHexNotZero(bytes, start + 3, this.loggedHexLength) : sameDigest(bytes, start + 3, digests.logged);
    if (!loggedOk || !this.accepted(bytes, pathStart, end, digests.sha256Words)) {
      return -1;
    }
    replay.extend(digests);
    return end;
  }

  /** The `ima-ng` rule's yes for the (ASCII) path `bytes[pathStart, end)`: listed with this digest, or excluded. */
  private accepted(bytes: Buffer, pathStart: number, end: number, sha256Words: Int32Array): boolean {
    const policy = this.policy;
    if (policy === undefined) {
      return true;
    }
    if (this.extraBootAggregates && end - pathStart === BOOT_AGGREGATE.length && spells(bytes, pathStart, BOOT_AGGREGATE)) {
      return false;
    }
    return policy.imaNgIndex.has(sha256Words) || policy.isExcluded(bytes.toString('latin1', pathStart, end));
  }
}

/** Whether the hex digits at `bytes[at…]` spell the bytes of `digest` (latin1), in either case. */
function sameDigest(bytes: Uint8Array, at: number, digest: string): boolean {
  let diff = 0;
  for (let i = 0; i < digest.length; i++) {
    diff |= hexByte(bytes, at + 2 * i) ^ digest.charCodeAt(i);
  }
  return diff === 0;
}

/** Whether the `hexLength` chars at `bytes[at…]` are hex digits (either case) spelling bytes not all zero. */
function isHexNotZero(bytes: Uint8Array, at: number, hexLength: number): boolean {
  let any = 0;
  for (let i = at; i < at + hexLength; i += 2) {
    any |= hexByte(bytes, i);
  }
  return any !== 0 && any < NOT_HEX;
}
