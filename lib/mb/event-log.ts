import type { HashAlgorithm } from './internal/hash-algorithms.js';

/**
 * The parsed shape of a TCG PC Client / UEFI event log. Parsing only frames the log and reads its
 * header; nothing here is trusted. Digests become trustworthy once a replay matches PCR values from a
 * verified quote (`verifyReplay`); event types and event data never are, except where a digest is
 * proven to be the hash of the data (`VerifiedEvent.verifiedContent`).
 */

/** One digest of an event in one bank. */
export interface EventDigest {
  readonly alg: HashAlgorithm;
  readonly digest: Uint8Array;
}

/**
 * `TCG_EfiSpecIDEventStruct` (TCG PC Client PFP §10.4.5.1, "Spec ID Event03"): the data of the first
 * event of a crypto-agile log. It lists the banks and the digest size of each.
 */
export interface SpecIdEvent {
  /** `Spec ID Event03`. */
  readonly signature: string;
  readonly platformClass: number;
  readonly specVersionMajor: number;
  readonly specVersionMinor: number;
  readonly specErrata: number;
  /** 1 = 32-bit UINTN, 2 = 64-bit UINTN. */
  readonly uintnSize: number;
  /** `digestSizes[]`, in log order; unknown algorithms keep the size the log declares. */
  readonly algorithms: readonly HashAlgorithm[];
  readonly vendorInfo: Uint8Array;
}

/** One event, exactly as the log states it. */
export interface UntrustedEvent {
  /** Position in the log, 0 for the first event (the Spec ID header of a crypto-agile log). */
  readonly sequence: number;
  /** Byte offset of the event in the log; -1 for an event a replay quirk added (`internal/quirks.ts`). */
  readonly offset: number;
  readonly pcrIndex: number;
  /** `eventType` as logged: not covered by the PCR extend, so never a basis for trust on its own. */
  readonly untrustedType: number;
  /** Spec name of `untrustedType` (`EV_IPL`), or `EV_UNKNOWN_0x…`. */
  readonly untrustedTypeName: string;
  /** One digest per bank the event carries (a SHA1-format event carries only SHA-1). */
  readonly digests: readonly EventDigest[];
  /** The event data as logged. */
  readonly untrustedData: Uint8Array;
}

/** A parsed log. `events` holds every event in file order, the Spec ID header included. */
export interface ParsedEventLog {
  /** `sha1`: TCG_PCR_EVENT only (TPM 1.2 style); `crypto-agile`: Spec ID Event03 + TCG_PCR_EVENT2. */
  readonly format: 'sha1' | 'crypto-agile';
  readonly specId: SpecIdEvent | null;
  /** The banks the log carries: the Spec ID algorithms, or SHA-1 alone for a SHA1-format log. */
  readonly algorithms: readonly HashAlgorithm[];
  readonly events: readonly UntrustedEvent[];
  /**
   * Locality from the `StartupLocality` EV_NO_ACTION event (PFP §10.4.5.3), or null when absent.
   * PCR 0 then starts at `00…0<locality>` instead of zeros (PFP §3.3.4.1).
   */
  readonly startupLocality: number | null;
  /** Ids of the parse quirks (`internal/quirks.ts`) this log needed; empty for a log that parsed strictly. */
  readonly quirksApplied: readonly string[];
}
