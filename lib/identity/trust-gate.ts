import { TRUST_LEVELS, trustLevelAtLeast, type TrustLevel } from './trust-level.js';

/** The provisioning steps the gate guards. */
export type GatedStep = 'clean' | 'deploy';

/** Defaults of `attestation.minimumTrustLevel`: any identity may be cleaned, only a real TPM deployed. */
export const DEFAULT_MINIMUM_TRUST_LEVEL: Readonly<Record<GatedStep, TrustLevel>> = { clean: 'id-only', deploy: 'hardware-tpm' };

export interface TrustGateInput {
  readonly step: GatedStep;
  readonly nodeLevel: TrustLevel;
  /** `attestation.minimumTrustLevel[step]` from the configuration. */
  readonly configuredMinimum?: TrustLevel;
  /** `driver_info.keylime_minimum_trust_level`: the node's own minimum, when the operator set one. */
  readonly nodeMinimum?: TrustLevel;
}

export type TrustGateDecision =
  | { readonly allowed: true; readonly minimum: TrustLevel; readonly source: 'node' | 'config' | 'default' }
  | { readonly allowed: false; readonly minimum: TrustLevel; readonly source: 'node' | 'config' | 'default'; readonly reason: string };

/**
 * Decides whether a node's trust level is enough for a step. The node's own minimum (set by an
 * operator who accepted a lower level, or demanded a higher one) wins over the configuration, which
 * wins over the default. Pure: the caller records the decision and raises the typed error.
 */
export function decideTrustGate(input: TrustGateInput): TrustGateDecision {
  const [minimum, source] =
    input.nodeMinimum !== undefined
      ? [input.nodeMinimum, 'node' as const]
      : input.configuredMinimum !== undefined
        ? [input.configuredMinimum, 'config' as const]
        : [DEFAULT_MINIMUM_TRUST_LEVEL[input.step], 'default' as const];
  if (trustLevelAtLeast(input.nodeLevel, minimum)) return { allowed: true, minimum, source };
  return {
    allowed: false,
    minimum,
    source,
    reason: `${input.step} needs trust level ${acceptedLevels(minimum)}; this node is ${input.nodeLevel}`,
  };
}

/** The levels at or above `minimum`, strongest last: "emulated-tpm or hardware-tpm", or "hardware-tpm" alone. */
function acceptedLevels(minimum: TrustLevel): string {
  const levels = TRUST_LEVELS.slice(TRUST_LEVELS.indexOf(minimum));
  return levels.length === 1 ? minimum : `${levels.slice(0, -1).join(', ')} or ${levels[levels.length - 1]}`;
}
