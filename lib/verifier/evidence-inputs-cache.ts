import { createHash, type KeyObject } from 'node:crypto';
import { akPublicKey } from '../attestation/agent-policies.js';
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
 * parsed refstate, the AK's public key — kept by the SHA-256 of that text, so that a fleet sending the
 * same policy and AK many times pays for parsing, validating and compiling (RE2 programs included)
 * once, and the texts themselves are not kept. Pure memoisation: each value is a deterministic
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
      return this.aks.get(text, () => akPublicKey(text));
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

/** Least recently used first out, by entry count and by the length of the texts behind the entries. */
class BoundedCache<T> {
  private readonly map = new Map<string, { value: T; length: number }>();
  private textLength = 0;

  get(text: string, make: () => T): T {
    if (text.length > MAX_TEXT_LENGTH) {
      return make();
    }
    // UTF-16 code units, not UTF-8: two texts differing only in a lone surrogate and U+FFFD differ here.
    const key = createHash('sha256').update(text, 'utf16le').digest('base64');
    const found = this.map.get(key);
    if (found !== undefined) {
      this.map.delete(key);
      this.map.set(key, found);
      return found.value;
    }
    const value = make();
    this.map.set(key, { value, length: text.length });
    this.textLength += text.length;
    while (this.map.size > CAPACITY || this.textLength > TEXT_BUDGET) {
      const [oldestKey, oldest] = this.map.entries().next().value as [string, { value: T; length: number }];
      this.map.delete(oldestKey);
      this.textLength -= oldest.length;
    }
    return value;
  }
}
