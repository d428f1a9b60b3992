import { parseImaAsciiList } from './ascii-list-parser.js';
import { parseExcludeList } from './exclude-matcher.js';
import { imaHashByName, imaHashesByHexLength } from './hash-algorithms.js';
import { readPublicKeyBlob, UnsupportedImaKey } from './ima-keyring.js';
import { parseFlatAllowlist, policyTimestamp, sortedMap } from './internal/legacy-allowlist.js';
import { appendTo } from './internal/name-map.js';
import { RuntimePolicyError } from './internal/runtime-policy-error.js';
import { emptyRuntimePolicy, parseRuntimePolicy, POLICY_GENERATOR, type RuntimePolicy } from './runtime-policy.js';

/**
 * Runtime policy creation from a known-good node, as Keylime's `keylime-policy create runtime`
 * (`keylime/policy/create_runtime_policy.py`) does from its non-filesystem sources:
 *
 * - digests of every `ima-ng`, `ima-sig` entry of an ASCII measurement list (we also take `ima`
 *   and `ima-modsig` entries, which `verifyImaList` checks against the same digests), including
 *   `boot_aggregate`; of a flat allowlist; and of a base policy;
 * - excludes of a legacy exclude list and of the base policy;
 * - with `keyrings` / `imaBuf`, the digests of `ima-buf` entries: keys into `keyrings[name]`
 *   (unless the keyring is ignored), other buffers into `ima-buf[name]`;
 * - every list sorted and deduplicated; `meta.generator` 3 (`LegacyAllowList`), as Keylime writes.
 *
 * The file-digest algorithm must agree between sources, as Keylime checks it: from the base
 * policy's and the allowlist's first digest length (64 hex digits may be sha256 or sm3_256) and from
 * the algorithm of the list's `boot_aggregate` entry (which must be its first line). An unknown
 * algorithm, or a disagreement, refuses the creation.
 *
 * Template hashes are not checked here (use `verifyImaList` for that): the list is read for its
 * digests only, like Keylime.
 */
export interface CreateRuntimePolicyInput {
  readonly imaListText?: string;
  readonly allowlistText?: string;
  readonly excludeListText?: string;
  readonly basePolicyText?: string;
  /** Add keyring entries from the list's `ima-buf` key entries. */
  readonly keyrings?: boolean;
  /** Add `ima-buf` entries other than keys. */
  readonly imaBuf?: boolean;
  readonly ignoredKeyrings?: readonly string[];
  readonly now?: Date;
  /** Called as the measurement list's entries are added (`policy create` draws progress with it). */
  readonly onImaEntry?: (done: number, total: number) => void;
}

export interface CreatedRuntimePolicy {
  readonly policy: RuntimePolicy;
  /** File-digest algorithm the sources agree on (`sha256_or_sm3_256` when only lengths said so). */
  readonly digestAlgorithm: string;
}

const AMBIGUOUS = 'sha256_or_sm3_256';

/** Keylime's guess from a digest's length; sha256 becomes the ambiguous sha256-or-sm3_256. */
function guessFromMap(map: Record<string, string[]>, source: string): string | undefined {
  const first = Object.values(map)[0]?.[0];
  if (first === undefined) {
    return undefined;
  }
  const [candidate] = imaHashesByHexLength(first.length);
  if (candidate === undefined) {
    throw new RuntimePolicyError(source, `cannot tell the digest algorithm of "${first}" from its length`);
  }
  return candidate.name === 'sha256' ? AMBIGUOUS : candidate.name;
}

function agree(current: string | undefined, next: string | undefined, source: string): string | undefined {
  if (next === undefined || current === undefined || current === next) {
    return current ?? next;
  }
  if (current === AMBIGUOUS && (next === 'sha256' || next === 'sm3_256')) {
    return next;
  }
  if (next === AMBIGUOUS && (current === 'sha256' || current === 'sm3_256')) {
    return current;
  }
  throw new RuntimePolicyError(source, `digests use ${next}, but the other sources use ${current}`);
}

/**
 * Creates a runtime policy; see above.
 *
 * @throws RuntimePolicyError when a source is malformed or the sources disagree on the algorithm;
 *   ImaParseError when the measurement list is malformed.
 */
export function createRuntimePolicy(input: CreateRuntimePolicyInput): CreatedRuntimePolicy {
  const policy = emptyRuntimePolicy();
  let algorithm: string | undefined;
  const ignored = new Set(input.ignoredKeyrings ?? []);

  if (input.basePolicyText !== undefined) {
    const base = parseRuntimePolicy(input.basePolicyText);
    algorithm = guessFromMap(base.digests, 'base policy');
    policy.digests = base.digests;
    policy.excludes = base.excludes;
    policy.keyrings = base.keyrings;
    policy['ima-buf'] = base['ima-buf'];
    policy.ima.log_hash_alg = base.ima.log_hash_alg;
    base.ima.ignored_keyrings.forEach((name) => ignored.add(name));
    policy['verification-keys'] = base['verification-keys'];
  }
  if (input.allowlistText !== undefined) {
    const allowlist = parseFlatAllowlist(input.allowlistText);
    algorithm = agree(algorithm, guessFromMap(allowlist.digests, 'allowlist'), 'allowlist');
    Object.entries(allowlist.digests).forEach(([path, list]) => list.forEach((d) => appendTo(policy.digests, path, d)));
    Object.entries(allowlist.keyrings).forEach(([name, list]) => list.forEach((d) => appendTo(policy.keyrings, name, d)));
  }
  if (input.imaListText !== undefined) {
    const entries = parseImaAsciiList(input.imaListText);
    const first = entries[0];
    if (first?.path !== 'boot_aggregate' || imaHashByName(first.digest.algorithm) === undefined) {
      throw new RuntimePolicyError(
        'IMA measurement list line 1',
        `must be a boot_aggregate entry with a known algorithm, got ${first?.digest.algorithm ?? '?'}:… ${first?.path ?? ''}`,
      );
    }
    algorithm = agree(algorithm, first.digest.algorithm, 'IMA measurement list');
    for (const [index, entry] of entries.entries()) {
      input.onImaEntry?.(index + 1, entries.length);
      if (entry.templateName !== 'ima-buf') {
        appendTo(policy.digests, entry.path, entry.digest.hex);
        continue;
      }
      let isKey: boolean;
      try {
        isKey = readPublicKeyBlob(entry.buffer) !== undefined;
      } catch (error) {
        if (!(error instanceof UnsupportedImaKey)) {
          throw error;
        }
        isKey = true;
      }
      if (isKey && input.keyrings === true && !ignored.has(entry.path)) {
        appendTo(policy.keyrings, entry.path, entry.digest.hex);
      } else if (!isKey && input.imaBuf === true) {
        appendTo(policy['ima-buf'], entry.path, entry.digest.hex);
      }
    }
  }
  if (input.excludeListText !== undefined) {
    policy.excludes = [...policy.excludes, ...parseExcludeList(input.excludeListText)];
  }

  policy.meta = {
    version: policy.meta.version,
    generator: POLICY_GENERATOR.LegacyAllowList,
    timestamp: policyTimestamp(input.now ?? new Date()),
  };
  policy.digests = sortedMap(policy.digests);
  policy.keyrings = sortedMap(policy.keyrings);
  policy['ima-buf'] = sortedMap(policy['ima-buf']);
  policy.excludes = [...new Set(policy.excludes)].sort();
  policy.ima.ignored_keyrings = [...ignored].sort();
  return { policy: parseRuntimePolicy(policy), digestAlgorithm: algorithm ?? 'sha256' };
}
