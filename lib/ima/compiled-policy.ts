import { compileExcludes, type ExcludeMatcher } from './exclude-matcher.js';
import type { MatchAllowance } from '../python-regex/match-allowance.js';
import type { LogHashAlgorithm } from './hash-algorithms.js';
import { ImaKeyring } from './ima-keyring.js';
import { ImaNgPolicyIndex } from './internal/ima-ng-policy-index.js';
import type { RuntimePolicy } from './runtime-policy.js';

/**
 * A runtime policy ready for replay: maps instead of objects, excludes compiled once, the
 * verification keys loaded. Build it once per policy and reuse it for every round (the attestation
 * engine caches it per agent); it is never modified by a replay.
 */
export interface CompiledRuntimePolicy {
  readonly policy: RuntimePolicy;
  readonly digests: ReadonlyMap<string, readonly string[]>;
  /** `digests` again, as the hashes of the `ima-ng` lines they accept (the replay's hot path). */
  readonly imaNgIndex: ImaNgPolicyIndex;
  readonly keyrings: ReadonlyMap<string, readonly string[]>;
  readonly imaBuf: ReadonlyMap<string, readonly string[]>;
  readonly isExcluded: ExcludeMatcher;
  /** `ima.ignored_keyrings`; `"*"` ignores every keyring. */
  readonly ignoredKeyrings: ReadonlySet<string>;
  readonly logHashAlg: LogHashAlgorithm;
  /** The policy's `verification-keys`, or `undefined` when it has none. */
  readonly verificationKeys: ImaKeyring | undefined;
}

/** Compiles a policy returned by `parseRuntimePolicy` (which already validated everything). */
export function compileRuntimePolicy(policy: RuntimePolicy): CompiledRuntimePolicy {
  const verificationKeys = policy['verification-keys'];
  const digests = new Map(Object.entries(policy.digests));
  return {
    policy,
    digests,
    imaNgIndex: new ImaNgPolicyIndex(digests),
    keyrings: new Map(Object.entries(policy.keyrings)),
    imaBuf: new Map(Object.entries(policy['ima-buf'])),
    isExcluded: compileExcludes(policy.excludes),
    ignoredKeyrings: new Set(policy.ima.ignored_keyrings),
    logHashAlg: policy.ima.log_hash_alg,
    verificationKeys: verificationKeys === '' ? undefined : ImaKeyring.fromJson(verificationKeys, 'verification-keys'),
  };
}

/**
 * The same policy, its excludes charged to `allowance` on every engine run: for one untrusted
 * request (POST /verify/evidence) or one attestation round, so that a policy within the compile
 * budget cannot make the paths of one list cost more than the request or round may spend. The
 * policy itself is not changed.
 */
export function withMatchAllowance(policy: CompiledRuntimePolicy, allowance: MatchAllowance): CompiledRuntimePolicy {
  return { ...policy, isExcluded: (path) => policy.isExcluded(path, allowance) };
}
