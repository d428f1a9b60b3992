import type { TrustLevel } from '../lib/identity/trust-level.js';

/**
 * The node model: one bare-metal machine as the provisioning orchestrator and the attestation drivers
 * see it. Mirrors the Ironic node fields the attestation spec relies on (`attestation_interface`,
 * `driver_info`, `instance_info`) plus the last attestation result the spec asks Ironic to keep.
 */

/** The verdict of the last attestation; `null` before the node was ever attested. */
export type AttestationStatus = 'passed' | 'failed' | 'unavailable';

/** The outcome of the last attestation a hook recorded for the node. */
export interface LastAttestation {
  /** `passed`: trusted; `failed`: untrusted; `unavailable`: the service could not decide. */
  readonly status: AttestationStatus | null;
  /** Why it failed or was unavailable (findings joined by "; "); `null` when it passed. */
  readonly reason: string | null;
  /** Keylime event ids the verifier reported (e.g. `ima.validation.ima-ng.not_in_allowlist`). */
  readonly eventIds: readonly string[];
  /** When the outcome was recorded; `null` before the first attestation. */
  readonly at: Date | null;
}

/** The node's identity as the provisioning gate last saw it (docs/identity.md). */
export interface NodeTrust {
  /** The level the attestation service reported at the last gated step; null before the first. */
  readonly level: TrustLevel | null;
  /** A lower level an operator accepted for this node (`NodeStore.acceptTrustLevel`), with when and why. */
  readonly accepted: { readonly level: TrustLevel; readonly note: string; readonly at: Date } | null;
}

/** Free-form per-node driver settings (`keylime_agent_uuid`, …); drivers parse them in `validate`. */
export type DriverInfo = Readonly<Record<string, unknown>>;

/** A node as stored by the node store. */
export interface Node {
  readonly uuid: string;
  readonly name: string | null;
  /** The orchestrator's provision state (`enroll`, `cleaning`, `deploying`, `active`, …), opaque to us. */
  readonly provisionState: string;
  /** The attestation interface of this node; `null` means the configured default. */
  readonly attestationInterface: string | null;
  readonly driverInfo: DriverInfo;
  readonly instanceInfo: Readonly<Record<string, unknown>>;
  readonly lastAttestation: LastAttestation;
  /** Absent only on nodes built by hand (tests); the node store always fills it. */
  readonly trust?: NodeTrust;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}
