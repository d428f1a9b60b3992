/**
 * How much a node's identity is worth, weakest first (docs/identity.md):
 * - `id-only`: a host id (SMBIOS UUID or MAC) and nothing else; anyone can claim it;
 * - `id-secret`: a host id plus a 256-bit secret the host made at first registration; proves it is
 *   the same installation, not which hardware;
 * - `emulated-tpm`: a TPM in software (swtpm or the software TPM) with random state on the host's
 *   disk: quotes and measured evidence, but the keys can be copied and no vendor vouches for the EK;
 * - `hardware-tpm`: a real TPM whose EK certificate chains to a vendor CA.
 */
export const TRUST_LEVELS = ['id-only', 'id-secret', 'emulated-tpm', 'hardware-tpm'] as const;
export type TrustLevel = (typeof TRUST_LEVELS)[number];

/** How an agent registers: the `--identity` of `ironlime agent`. */
export const IDENTITY_MODES = ['tpm', 'emulated-tpm', 'id-secret', 'id-only'] as const;
export type IdentityMode = (typeof IDENTITY_MODES)[number];

const LEVEL_OF_MODE: Readonly<Record<IdentityMode, TrustLevel>> = {
  tpm: 'hardware-tpm',
  'emulated-tpm': 'emulated-tpm',
  'id-secret': 'id-secret',
  'id-only': 'id-only',
};

export function isTrustLevel(value: unknown): value is TrustLevel {
  return typeof value === 'string' && (TRUST_LEVELS as readonly string[]).includes(value);
}

export function isIdentityMode(value: unknown): value is IdentityMode {
  return typeof value === 'string' && (IDENTITY_MODES as readonly string[]).includes(value);
}

export function trustLevelOfMode(mode: IdentityMode): TrustLevel {
  return LEVEL_OF_MODE[mode];
}

/** True when `level` is at least as strong as `minimum`. */
export function trustLevelAtLeast(level: TrustLevel, minimum: TrustLevel): boolean {
  return TRUST_LEVELS.indexOf(level) >= TRUST_LEVELS.indexOf(minimum);
}

/** Whether a node may integrity-attest at all: only TPM levels have quotes, IMA and measured boot. */
export function trustLevelHasEvidence(level: TrustLevel): boolean {
  return level === 'hardware-tpm' || level === 'emulated-tpm';
}
