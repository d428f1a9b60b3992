import type { KeyObject } from 'node:crypto';
import { isDsseEnvelope, verifyDsseEnvelope } from './dsse-envelope.js';
import { parseExcludeList } from './exclude-matcher.js';
import { allowlistToRuntimePolicy } from './internal/legacy-allowlist.js';
import { parsePolicyJson } from './internal/policy-json.js';
import { PolicySignatureError } from './internal/runtime-policy-error.js';
import { parseRuntimePolicy, type RuntimePolicy } from './runtime-policy.js';

export interface LoadPolicyOptions {
  /**
   * Key that a DSSE-signed policy must verify with; a signed policy without one is refused, and so is
   * an unsigned policy (JSON or flat allowlist) with one: a key given asks for a signed policy.
   */
  readonly signingKey?: KeyObject;
  /** A legacy exclude list whose rules are added to the policy's `excludes`. */
  readonly excludeListText?: string;
}

/** What was loaded, so a caller can tell the operator. */
export interface LoadedPolicy {
  readonly policy: RuntimePolicy;
  readonly format: 'runtime-policy' | 'signed-runtime-policy' | 'flat-allowlist';
}

/**
 * Loads any policy document Keylime accepts: a JSON runtime policy, a DSSE envelope holding one, or
 * a legacy flat allowlist (converted as `allowlistToRuntimePolicy` does). The text is JSON when its
 * first non-blank character is `{`, as Keylime decides.
 *
 * @throws RuntimePolicyError for a malformed document; PolicySignatureError for a signed policy
 *   that does not verify, when no key was given for one, or when a key was given for an unsigned one.
 */
export function loadRuntimePolicy(text: string, options: LoadPolicyOptions = {}): LoadedPolicy {
  const excludeListText = options.excludeListText ?? '';
  const isJson = /^\s*\{/.test(text);
  let document: unknown = isJson ? parsePolicyJson(text, '(document)') : undefined;
  if (options.signingKey !== undefined && !isDsseEnvelope(document)) {
    throw new PolicySignatureError('a key was given to verify the policy with, but the policy is not a signed DSSE envelope');
  }
  if (!isJson) {
    return { policy: allowlistToRuntimePolicy(text, excludeListText), format: 'flat-allowlist' };
  }
  let format: LoadedPolicy['format'] = 'runtime-policy';
  if (isDsseEnvelope(document)) {
    if (options.signingKey === undefined) {
      throw new PolicySignatureError('the policy is a signed DSSE envelope; give the key to verify it with');
    }
    document = verifyDsseEnvelope(document, options.signingKey).toString('utf8');
    format = 'signed-runtime-policy';
  }
  const policy = parseRuntimePolicy(document);
  if (excludeListText !== '') {
    policy.excludes = [...new Set([...policy.excludes, ...parseExcludeList(excludeListText)])];
  }
  return { policy, format };
}
