/**
 * Compatibility quirks of runtime policies, each named, with where it comes from. The strict rule
 * (Keylime `RUNTIME_POLICY_SCHEMA`: digests are `^[0-9a-f]{40,128}$`) is applied first; a quirk only
 * rescues input that real Keylime deployments are known to hold.
 */
export interface PolicyQuirk {
  readonly id: string;
  readonly affects: string;
  readonly source: string;
  /** The repaired value, or `undefined` when the quirk does not apply. */
  apply(digest: string): string | undefined;
}

const STRICT_DIGEST = /^[0-9a-f]{40,128}$/;
const PREFIXED_DIGEST = /^(?:sha1|sha256|sha384|sha512|sm3_256|sm3):([0-9a-f]{40,128})$/;

export const POLICY_QUIRKS: readonly PolicyQuirk[] = [
  {
    id: 'digest-algorithm-prefix',
    affects: 'digests written as "<alg>:<hex>", as the boot_aggregate line of legacy flat allowlists is',
    source:
      'keylime test/data/runtime-policy-test.json and ima-allowlist-short.txt ("sha256:4309…  boot_aggregate"); ' +
      'Keylime keeps the prefixed string, which then never matches',
    apply(digest) {
      return PREFIXED_DIGEST.exec(digest)?.[1];
    },
  },
];

/**
 * A policy digest as lowercase hex, or `undefined` when it is not one. The prefix quirk strips
 * `sha256:` and the like, so such an entry accepts the digest its author meant.
 */
export function normalisePolicyDigest(digest: string): string | undefined {
  if (STRICT_DIGEST.test(digest)) {
    return digest;
  }
  for (const quirk of POLICY_QUIRKS) {
    const repaired = quirk.apply(digest);
    if (repaired !== undefined) {
      return repaired;
    }
  }
  return undefined;
}
