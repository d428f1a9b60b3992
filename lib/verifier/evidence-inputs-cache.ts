import type { KeyObject } from 'node:crypto';
import { akPublicKey } from '../attestation/agent-policies.js';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';

/** Entries kept per kind; the oldest is dropped first. */
const CAPACITY = 256;
/** Texts longer than this are parsed every time (a key this size costs as much to hash as to keep). */
const MAX_KEY_LENGTH = 1024 * 1024;

/**
 * What `POST /verify/evidence` derives from the text of a request — the compiled runtime policy, the
 * parsed refstate, the AK's public key — kept by that text, so that a fleet sending the same policy
 * and AK many times pays for parsing, validating and compiling (RE2 programs included) once. Pure
 * memoisation: each value is a deterministic function of its key text and is never changed after it
 * is made, and a text that fails to parse is not kept (it throws again next time). Owned by the route
 * (one per verifier), bounded, least recently used dropped first.
 */
export class EvidenceInputsCache {
  private readonly runtimePolicies = new BoundedMap<CompiledRuntimePolicy>();
  private readonly refstates = new BoundedMap<MbRefstate>();
  private readonly aks = new BoundedMap<KeyObject>();

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
}

class BoundedMap<T> {
  private readonly map = new Map<string, T>();

  get(key: string, make: () => T): T {
    if (key.length > MAX_KEY_LENGTH) {
      return make();
    }
    const found = this.map.get(key);
    if (found !== undefined) {
      this.map.delete(key);
      this.map.set(key, found);
      return found;
    }
    const made = make();
    this.map.set(key, made);
    if (this.map.size > CAPACITY) {
      this.map.delete(this.map.keys().next().value as string);
    }
    return made;
  }
}
