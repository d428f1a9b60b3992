import type { ImaRoundMode } from './internal/round-parts.js';

/**
 * What a push agent offers in phase 1 and what the verifier chose from it (keylime-protocol §10.3):
 * the types `choosePushEvidence` (push-decision.ts) reads and writes, stored with each attestation.
 */

/** One certification key an agent offers (`certification_keys[]`). */
export interface OfferedKey {
  readonly keyAlgorithm: string;
  readonly serverIdentifier: string | undefined;
  readonly public: string | undefined;
  readonly allowableSignatureSchemes: readonly string[] | undefined;
  readonly allowableHashAlgorithms: readonly string[] | undefined;
  /** The item as received, echoed in `chosen_parameters.certification_key`. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Phase 1: what the agent says it can send (already shape-checked by the route's DTOs). */
export interface PushCapabilities {
  /** Unix seconds of `system_info.boot_time`, or null when absent. */
  readonly bootTime: number | null;
  readonly quote: {
    readonly componentVersion: string;
    readonly signatureSchemes: readonly string[];
    readonly hashAlgorithms: readonly string[];
    /** bank → PCR indices (`available_subjects`). */
    readonly availableSubjects: Readonly<Record<string, readonly number[]>>;
    readonly certificationKeys: readonly OfferedKey[];
  };
  /** `uefi_log` offered, with its `entry_count`. */
  readonly uefiLog: { readonly entryCount: number } | undefined;
  /** `ima_log` offered, with its current `entry_count`. */
  readonly imaLog: { readonly entryCount: number } | undefined;
  /** Each evidence type's `capabilities` as received, kept to be repeated in the 202 (as Keylime does). */
  readonly received: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** What the verifier asks for, stored with the attestation until the evidence comes. */
export interface PushChoice {
  readonly hashAlg: string;
  readonly signatureScheme: string;
  /** PCRs the quote must cover, ascending, in the `hashAlg` bank. */
  readonly pcrs: readonly number[];
  /** `selected_subjects`: bank → PCR list, null for the banks not used. */
  readonly selectedSubjects: Readonly<Record<string, readonly number[] | null>>;
  readonly certificationKey: Readonly<Record<string, unknown>>;
  /** `PushCapabilities.received`, stored with the attestation; absent from attestations created before it was kept. */
  readonly capabilities?: PushCapabilities['received'];
  readonly uefiLog: boolean;
  /** The `uefi_log` was left out: the process that chose holds the log verified for this boot (`push-boot-log.ts`). */
  readonly uefiLogHeld?: boolean;
  /** IMA entries from this offset, or null when no IMA log is asked for. */
  readonly imaStartingOffset: number | null;
  /** The agent's `entry_count` at capabilities time (the evidence must reach it). */
  readonly imaEntryCount: number | null;
  /** How the stored IMA state is used with the evidence. */
  readonly imaMode: ImaRoundMode;
  readonly bootTime: number | null;
}
