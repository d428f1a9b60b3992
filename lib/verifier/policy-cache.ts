import { createHash } from 'node:crypto';
import { compileRuntimePolicy, type CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import { ImaKeyring } from '../ima/ima-keyring.js';
import { parseRuntimePolicy } from '../ima/runtime-policy.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import type { StoredMbPolicy, StoredRuntimePolicy } from './verifier-policy-repository.js';

/**
 * Parsed and compiled policies, shared by every agent that uses the same stored policy: a thousand
 * agents enrolled with one runtime policy hold one compiled copy. Entries are keyed by name and
 * content digest, so an updated policy is compiled afresh and the stale entry dropped.
 */
export class PolicyCache {
  private readonly runtime = new Map<string, { checksum: string; compiled: CompiledRuntimePolicy }>();
  private readonly mb = new Map<string, { digest: string; refstate: MbRefstate }>();
  private readonly keyrings = new Map<string, ImaKeyring>();
  /** How many policy updates and deletions this process made (`changeCount`). */
  private changes = 0;

  /** The compiled runtime policy; `RuntimePolicyError` if the stored text no longer parses. */
  runtimePolicy(stored: StoredRuntimePolicy): CompiledRuntimePolicy {
    const cached = this.runtime.get(stored.name);
    if (cached !== undefined && cached.checksum === stored.checksum) {
      return cached.compiled;
    }
    const compiled = compileRuntimePolicy(parseRuntimePolicy(stored.runtimePolicy));
    this.runtime.set(stored.name, { checksum: stored.checksum, compiled });
    return compiled;
  }

  /** The parsed refstate; `MbRefstateError` if the stored text no longer parses. */
  refstate(stored: StoredMbPolicy): MbRefstate {
    const digest = sha256(stored.mbPolicy);
    const cached = this.mb.get(stored.name);
    if (cached !== undefined && cached.digest === digest) {
      return cached.refstate;
    }
    const refstate = parseMbRefstate(stored.mbPolicy);
    this.mb.set(stored.name, { digest, refstate });
    return refstate;
  }

  /** The tenant's IMA signature keyring (`ima_sign_verification_keys`), or undefined for "". */
  imaKeyring(text: string): ImaKeyring | undefined {
    if (text.trim() === '') {
      return undefined;
    }
    const digest = sha256(text);
    let keyring = this.keyrings.get(digest);
    if (keyring === undefined) {
      keyring = ImaKeyring.fromJson(text, 'ima_sign_verification_keys');
      this.keyrings.set(digest, keyring);
    }
    return keyring;
  }

  /** Forgets a runtime policy and a refstate stored under `name` (updated or deleted). */
  invalidate(name: string): void {
    this.runtime.delete(name);
    this.mb.delete(name);
    this.changes += 1;
  }

  /**
   * How many times this process updated or deleted a policy: a copy kept while the count was another
   * (the push routes' shared reads and compiled policies) is stale. One count for every name, not one
   * per name: updates are rare, and a per-name map would grow with every policy name ever changed.
   */
  changeCount(): number {
    return this.changes;
  }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
