import { LittleEndianReader } from '../../bytes/byte-reader.js';
import { EventLogParseError } from '../../bytes/parse-errors.js';
import type { EventDigest, ParsedEventLog, UntrustedEvent } from '../event-log.js';
import { EV_EFI_ACTION, EV_NO_ACTION, eventTypeName } from './event-types.js';
import { digestOf } from './hash-algorithms.js';
import { withoutTrailingNuls } from './trailing-nuls.js';

/**
 * Known deviations of real logs from the TCG PC Client PFP, each named, isolated and tied to a vector
 * (STYLE 8). The strict path always runs first; a quirk is only tried after it failed, and every
 * result says which quirks it needed (`quirksApplied`). The main parser and replay are never loosened.
 */

/** A quirk applied to the raw bytes when strict parsing fails. */
export interface ParseQuirk {
  readonly id: string;
  readonly affects: 'framing';
  /** Where the deviation is explained. */
  readonly source: string;
  /** Patched bytes to parse strictly instead, or null when the quirk does not apply. */
  apply(bytes: Uint8Array): Uint8Array | null;
}

/** A quirk applied to a parsed log when its replay does not match the quoted PCRs. */
export interface ReplayQuirk {
  readonly id: string;
  /** The PCRs the quirk changes; it is tried only when one of them mismatched. */
  readonly affects: readonly number[];
  readonly source: string;
  /** A corrected copy of the log, or null when the quirk does not apply to this log. */
  apply(log: ParsedEventLog): ParsedEventLog | null;
}

const EBS_INVOCATION = 'Exit Boot Services Invocation';
const EBS_SUCCESS = 'Exit Boot Services Returned with Success';

/**
 * Some firmware extends PCR 5 with the two ExitBootServices EV_EFI_ACTION events (PFP §10.4.4, PCR 5)
 * but never writes them to the log, so the replayed PCR 5 misses them. Appending the two events
 * (digest = H(action string)) reproduces the TPM's value. Vector:
 * `go-attestation/ebs_event_missing_eventlog`.
 */
export const EBS_EVENTS_MISSING: ReplayQuirk = {
  id: 'ebs-events-missing',
  affects: [5],
  source: 'https://github.com/google/go-attestation/blob/master/attest/eventlog_workarounds.go',
  apply(log) {
    const logged = log.events.some(
      (e) => e.pcrIndex === 5 && e.untrustedType === EV_EFI_ACTION && asciiEquals(e.untrustedData, EBS_INVOCATION),
    );
    if (logged) {
      return null;
    }
    const added = [EBS_INVOCATION, EBS_SUCCESS].map((text, i) => actionEvent(log, log.events.length + i, text));
    // `concat`, not a spread: a hostile log's hundreds of thousands of events are copied at once, not one by one.
    return { ...log, events: log.events.concat(added) };
  },
};

/**
 * tpm2-tools finds the first TCG_PCR_EVENT2 right after the Spec ID event's `vendorInfo`, whatever
 * the header's `eventDataSize` says; its fixture `specid-vendordata.bin` declares 37 bytes of Spec ID
 * data while 4 bytes of vendor info follow them. When the declared size stops exactly before the
 * vendor info and the vendor info is there, the size is corrected to include it.
 */
export const SPEC_ID_VENDOR_INFO_OUTSIDE_EVENT: ParseQuirk = {
  id: 'spec-id-vendor-info-outside-event',
  affects: 'framing',
  source: 'https://github.com/tpm2-software/tpm2-tools/blob/master/lib/tpm2_eventlog.c (specid_event)',
  apply(bytes) {
    try {
      const r = new LittleEndianReader(bytes, EventLogParseError);
      r.skip(4);
      const type = r.u32();
      r.skip(20);
      const sizeOffset = r.offset;
      const declared = r.u32();
      r.skip(24);
      const algorithms = r.u32();
      if (type !== EV_NO_ACTION || algorithms > 32) {
        return null;
      }
      r.skip(algorithms * 4);
      const withoutVendorInfo = r.offset - sizeOffset - 4 + 1;
      const vendorInfoSize = r.u8();
      if (declared !== withoutVendorInfo || vendorInfoSize === 0 || r.remaining < vendorInfoSize) {
        return null;
      }
      const patched = bytes.slice();
      new DataView(patched.buffer).setUint32(sizeOffset, declared + vendorInfoSize, true);
      return patched;
    } catch (error) {
      if (error instanceof EventLogParseError) {
        return null;
      }
      throw error;
    }
  },
};

/** Parse quirks, tried in order after strict parsing failed. */
export const PARSE_QUIRKS: readonly ParseQuirk[] = [SPEC_ID_VENDOR_INFO_OUTSIDE_EVENT];

/** Replay quirks, tried one at a time after the strict replay mismatched. */
export const REPLAY_QUIRKS: readonly ReplayQuirk[] = [EBS_EVENTS_MISSING];

function actionEvent(log: ParsedEventLog, sequence: number, text: string): UntrustedEvent {
  const data = new Uint8Array(Buffer.from(text, 'ascii'));
  const digests: EventDigest[] = log.algorithms
    .filter((alg) => alg.nodeName !== null)
    .map((alg) => ({ alg, digest: digestOf(alg, data) }));
  return {
    sequence,
    offset: -1,
    pcrIndex: 5,
    untrustedType: EV_EFI_ACTION,
    untrustedTypeName: eventTypeName(EV_EFI_ACTION),
    digests,
    untrustedData: data,
  };
}

function asciiEquals(data: Uint8Array, text: string): boolean {
  return withoutTrailingNuls(Buffer.from(data).toString('latin1')) === text;
}
