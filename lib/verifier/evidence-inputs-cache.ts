import { createHash, type KeyObject } from 'node:crypto';
import { enteringAkPublicKey } from '../attestation/agent-policies.js';
import { MeasuredBootMemo } from '../attestation/mb-check-memo.js';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';

/** Entries kept per kind; the oldest is dropped first. */
const CAPACITY = 256;
/**
 * Characters of text behind the entries of one kind (what is derived from a text is about its size):
 * with one cache per pool thread, this bounds what an unauthenticated client can make a verifier hold.
 */
const TEXT_BUDGET = 16 * 1024 * 1024;
/** Texts longer than this are parsed every time and never kept. */
const MAX_TEXT_LENGTH = 4 * 1024 * 1024;
/** Boot-log characters one measured-boot memo is handed before it is replaced by an empty one. */
const MB_LOG_BUDGET = 16 * 1024 * 1024;

/**
 * What `POST /verify/evidence` derives from the text of a request — the compiled runtime policy, the
 * parsed refstate, the AK's public key — kept by that text (a long one by its SHA-256), so that a
 * fleet sending the same policy and AK many times pays for parsing, validating and compiling (RE2
 * programs included) once. Pure memoisation: each value is a deterministic
 * function of its whole key text and is never changed after it is made, and a text that fails to
 * parse is not kept (it throws again next time). Also owns the measured-boot memo handed to the
 * engine. The body is untrusted, so every part is bounded: entries per kind, text behind them, and the
 * boot-log bytes a memo sees. Owned by one evidence checker (the route, or one pool worker).
 */
export class EvidenceInputsCache {
  private readonly runtimePolicies = new BoundedCache<CompiledRuntimePolicy>();
  private readonly refstates = new BoundedCache<MbRefstate>();
  private readonly aks = new BoundedCache<KeyObject>();
  private mbMemo = new MeasuredBootMemo();
  private mbLogCharacters = 0;

  /** @throws RuntimePolicyError / PolicySignatureError as `loadRuntimePolicy`. */
  runtimePolicy(text: string): CompiledRuntimePolicy {
    return this.runtimePolicies.get(text, () => compileRuntimePolicy(loadRuntimePolicy(text).policy));
  }

  /** @throws MbRefstateError as `parseMbRefstate`. */
  refstate(text: string): MbRefstate {
    return this.refstates.get(text, () => parseMbRefstate(text));
  }

  /**
   * The AK's public key from `tpm_ak` (base64 TPM2B_PUBLIC), or the text itself when it does not
   * decode: the engine then reports it as evidence that fails, as without the cache.
   */
  akTpm(text: string): KeyObject | string {
    try {
      return this.aks.get(text, () => enteringAkPublicKey(text));
    } catch {
      return text;
    }
  }

  /**
   * The memo for a request whose boot log has `logLength` characters, or undefined (checked afresh)
   * for a log too long to keep. The memo keeps up to 64 logs per refstate; it is replaced by an empty
   * one once the logs handed to it add up to MB_LOG_BUDGET characters, which bounds what it holds.
   */
  measuredBootMemo(logLength: number): MeasuredBootMemo | undefined {
    if (logLength > MAX_TEXT_LENGTH) {
      return undefined;
    }
    this.mbLogCharacters += logLength;
    if (this.mbLogCharacters > MB_LOG_BUDGET) {
      this.mbMemo = new MeasuredBootMemo();
      this.mbLogCharacters = logLength;
    }
    return this.mbMemo;
  }
}

/**
 * Texts up to this many characters are their own key. V8 hashes a string's whole content only up to
 * 16,383 characters (`String::kMaxHashCalcLength`) and a longer one by its length alone, so longer
 * texts of one length would all share a hash bucket: those are keyed by their SHA-256 instead. A
 * lookup by text hashes it once and compares it with at most the few entries of its bucket; the
 * SHA-256 of a 2 KB policy's UTF-16 units cost more (about 5 % of a worker's time).
 */
const LONGEST_TEXT_KEY = 16_383;

interface CacheEntry<T> {
  readonly value: T;
  readonly length: number;
  /** When it was last handed out (a count of lookups): the entry with the lowest goes first. */
  lastUse: number;
}

/**
 * Least recently used first out, by entry count and by the length of the texts behind the entries,
 * over two maps each kept in order of last use: short texts by themselves, long ones by SHA-256.
 */
class BoundedCache<T> {
  private readonly byText = new Map<string, CacheEntry<T>>();
  private readonly byDigest = new Map<string, CacheEntry<T>>();
  private textLength = 0;
  private uses = 0;

  get(text: string, make: () => T): T {
    if (text.length > MAX_TEXT_LENGTH) {
      return make();
    }
    const [map, key] =
      text.length <= LONGEST_TEXT_KEY
        ? [this.byText, text]
        : // UTF-16 code units, not UTF-8: two texts differing only in a lone surrogate and U+FFFD differ here.
          [this.byDigest, createHash('sha256').update(text, 'utf16le').digest('base64')];
    this.uses += 1;
    const found = map.get(key);
    if (found !== undefined) {
      map.delete(key);
      found.lastUse = this.uses;
      map.set(key, found);
      return found.value;
    }
    const value = make();
    map.set(key, { value, length: text.length, lastUse: this.uses });
    this.textLength += text.length;
    while (this.byText.size + this.byDigest.size > CAPACITY || this.textLength > TEXT_BUDGET) {
      this.dropOldest();
    }
    return value;
  }

  private dropOldest(): void {
    const oldestText = this.byText.entries().next().value;
    const oldestDigest = this.byDigest.entries().next().value;
    const [map, [key, entry]] =
      oldestDigest === undefined || (oldestText !== undefined && oldestText[1].lastUse < oldestDigest[1].lastUse)
        ? [this.byText, oldestText as [string, CacheEntry<T>]]
        : [this.byDigest, oldestDigest];
    map.delete(key);
    this.textLength -= entry.length;
  }
}
