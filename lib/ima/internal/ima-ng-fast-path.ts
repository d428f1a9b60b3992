import { hash, timingSafeEqual } from 'node:crypto';
import type { CompiledRuntimePolicy } from '../compiled-policy.js';
import { pcrBankSize, type ImaHashAlgorithm } from '../hash-algorithms.js';
import type { Pcr10Replay } from './pcr10-replay.js';

const SPACE = 0x20;
const DIGESTS: ReadonlyArray<{ prefix: string; digestSize: number }> = (['sha256', 'sha1'] as const).map((bank) => ({
  prefix: `${bank}:`,
  digestSize: pcrBankSize(bank),
}));

/**
 * The common line of a measurement list — `10 <template hash> ima-ng sha256:<hex> <path>` (or a
 * `sha1:` file digest), whose template hash, policy digest or exclusion accepts it — checked without
 * building an entry object: the template data (`d-ng` ‖ `n-ng`, Linux ima_template_lib.c) is written
 * into one reused buffer straight from the text, hashed once per bank with one-shot node:crypto
 * hashes, and both banks of PCR 10 are extended.
 *
 * It only ever says yes: `accept` returns false, having changed nothing, for any line it does not
 * settle — another template or PCR, an odd spelling, a violation (all-zero hash), a template hash
 * that does not match, a path neither listed with this digest nor excluded, `boot_aggregate` with
 * extra aggregates — and the caller then runs the full parser and validator on it, which give the
 * verdict and the failure. So the fast path changes the cost, never the outcome.
 */
export class ImaNgFastPath {
  private scratch = Buffer.allocUnsafe(4096);
  private readonly logged: Buffer;

  constructor(
    private readonly logHash: ImaHashAlgorithm,
    private readonly policy: CompiledRuntimePolicy | undefined,
    private readonly extraBootAggregates: boolean,
  ) {
    this.logged = Buffer.alloc(logHash.digestSize);
  }

  /** True when the line `text[start, end)` was accepted and extended into `replay`. */
  accept(text: string, start: number, end: number, replay: Pcr10Replay): boolean {
    const hashEnd = start + 3 + this.logHash.digestSize * 2;
    if (
      (this.logHash.name !== 'sha1' && this.logHash.name !== 'sha256') ||
      !text.startsWith('10 ', start) ||
      text.charCodeAt(hashEnd) !== SPACE ||
      !text.startsWith('ima-ng ', hashEnd + 1) ||
      this.logged.write(text.slice(start + 3, hashEnd), 0, 'hex') !== this.logHash.digestSize ||
      isAllZero(this.logged)
    ) {
      return false;
    }
    const fieldStart = hashEnd + 8;
    const digest = DIGESTS.find((d) => text.startsWith(d.prefix, fieldStart));
    if (digest === undefined) {
      return false;
    }
    const hexStart = fieldStart + digest.prefix.length;
    const pathStart = hexStart + digest.digestSize * 2 + 1;
    const space = text.indexOf(' ', pathStart);
    if (pathStart >= end || text.charCodeAt(pathStart - 1) !== SPACE || (space >= 0 && space < end)) {
      return false;
    }
    const hex = text.slice(hexStart, pathStart - 1);
    const path = text.slice(pathStart, end);
    const data = this.templateData(digest.prefix, digest.digestSize, hex, path);
    if (data === undefined) {
      return false;
    }
    const sha1 = hash('sha1', data, 'buffer');
    const sha256 = hash('sha256', data, 'buffer');
    const computed = this.logHash.name === 'sha1' ? sha1 : sha256;
    if (!timingSafeEqual(this.logged, computed) || !this.accepted(path, hex)) {
      return false;
    }
    replay.extend(sha1, sha256);
    return true;
  }

  /** `d-ng` (u32 size, `alg:` NUL, digest) then `n-ng` (u32 size, path, NUL), little-endian sizes. */
  private templateData(prefix: string, size: number, hex: string, path: string): Buffer | undefined {
    const needed = 4 + prefix.length + 1 + size + 4 + path.length * 3 + 1;
    if (needed > this.scratch.length) {
      this.scratch = Buffer.allocUnsafe(needed * 2);
    }
    const b = this.scratch;
    let at = 4;
    b.writeUInt32LE(prefix.length + 1 + size, 0);
    at += b.write(prefix, at, 'latin1');
    b[at++] = 0;
    if (b.write(hex, at, 'hex') !== size) {
      return undefined;
    }
    at += size + 4;
    const nameBytes = b.write(path, at, 'utf8');
    b.writeUInt32LE(nameBytes + 1, at - 4);
    at += nameBytes;
    b[at++] = 0;
    return b.subarray(0, at);
  }

  /** The `ima-ng` rule's yes: listed with this (lowercase) digest, or excluded. */
  private accepted(path: string, hex: string): boolean {
    const policy = this.policy;
    if (policy === undefined) {
      return true;
    }
    if (path === 'boot_aggregate' && this.extraBootAggregates) {
      return false;
    }
    return policy.digests.get(path)?.includes(hex) === true || policy.isExcluded(path);
  }
}

function isAllZero(bytes: Buffer): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) {
    acc |= bytes[i] as number;
  }
  return acc === 0;
}
