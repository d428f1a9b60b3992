import { decodeEventContent, type EventContent } from './event-content.js';
import type { ParsedEventLog, UntrustedEvent } from '../event-log.js';
import * as ev from './event-types.js';
import { grubPrefixLength } from './grub-strings.js';
import { digestEquals, type HashAlgorithm } from './hash-algorithms.js';
import { isExtended } from '../replay.js';
import { EVENTS_PER_STEP } from './events-per-step.js';
import { finish, type Stepwise } from '../../ima/stepwise.js';

/** Bytes of event data hashed between pauses: one event's data may be MiB long, each hashed up to four times. */
const DATA_BYTES_PER_STEP = 1024 * 1024;

/**
 * An event of a log whose replay matched quoted PCR values. Its digest is trusted (it went into a
 * PCR the quote vouches for); its type and data are still only what the log claims, unless the digest
 * is proven to be the hash of the data, in which case `verifiedContent` holds the decoded data.
 */
export interface VerifiedEvent {
  readonly sequence: number;
  readonly pcrIndex: number;
  /** The event's digest in `VerifiedEventLog.bank`. */
  readonly digest: Uint8Array;
  readonly untrustedType: number;
  readonly untrustedTypeName: string;
  readonly untrustedData: Uint8Array;
  /** The data decoded by the claimed type; not proven by the digest. */
  readonly untrustedContent: EventContent;
  /**
   * The decoded data when the digest binds it: `digest = H(data)`, or H of the data without trailing
   * NULs, or for GRUB's PCR 8 strings (`grub-strings.ts`) H of the text after the prefix, with or
   * without its NUL (GRUB measures the text and logs it with the prefix).
   * Null otherwise.
   */
  readonly verifiedContent: EventContent | null;
}

/**
 * The part of a log that a quote vouches for: the events of the PCRs whose replay matched in `bank`.
 * Only `verifyReplay` builds one; a policy evaluator takes nothing else.
 */
export interface VerifiedEventLog {
  readonly bank: HashAlgorithm;
  /** PCRs whose replayed value equals the quoted one, ascending. */
  readonly pcrs: readonly number[];
  /** Extended events of those PCRs, in log order (EV_NO_ACTION events are not extended). */
  readonly events: readonly VerifiedEvent[];
  /** Parse and replay quirks the log needed (`quirks.ts`). */
  readonly quirksApplied: readonly string[];
}

/** Restricts `log` to the events of `pcrs` and checks which event data the digests bind. */
export function buildVerifiedEventLog(
  log: ParsedEventLog,
  bank: HashAlgorithm,
  pcrs: readonly number[],
  quirksApplied: readonly string[],
): VerifiedEventLog {
  return finish(buildVerifiedEventLogStepwise(log, bank, pcrs, quirksApplied));
}

/** `buildVerifiedEventLog`, pausing between chunks of events or of data hashed (`Stepwise`): the same log. */
export function* buildVerifiedEventLogStepwise(
  log: ParsedEventLog,
  bank: HashAlgorithm,
  pcrs: readonly number[],
  quirksApplied: readonly string[],
): Stepwise<VerifiedEventLog> {
  const wanted = new Set(pcrs);
  const events: VerifiedEvent[] = [];
  let dataBytes = 0;
  for (const event of log.events) {
    if (event.sequence % EVENTS_PER_STEP === EVENTS_PER_STEP - 1 || dataBytes >= DATA_BYTES_PER_STEP) {
      dataBytes = 0;
      yield;
    }
    if (!wanted.has(event.pcrIndex) || !isExtended(event)) {
      continue;
    }
    const digest = event.digests.find((d) => d.alg === bank)?.digest;
    if (digest === undefined) {
      continue;
    }
    events.push(verifiedEvent(event, bank, digest));
    dataBytes += event.untrustedData.length;
  }
  return { bank, pcrs: [...pcrs].sort((a, b) => a - b), events, quirksApplied };
}

function verifiedEvent(event: UntrustedEvent, bank: HashAlgorithm, digest: Uint8Array): VerifiedEvent {
  const untrustedContent = decodeEventContent(event.untrustedType, event.untrustedData);
  const bound = digestBindsData(bank, event.untrustedType, event.untrustedData, digest);
  return {
    sequence: event.sequence,
    pcrIndex: event.pcrIndex,
    digest,
    untrustedType: event.untrustedType,
    untrustedTypeName: event.untrustedTypeName,
    untrustedData: event.untrustedData,
    untrustedContent,
    verifiedContent: bound ? untrustedContent : null,
  };
}

/**
 * Whether `digest` is the hash of `data` under one of the measuring rules described above. Each
 * candidate is hashed only when the ones before it did not match (an event the rules bind is
 * usually bound by its data as it stands: one hash), and the GRUB prefix is read from the bytes.
 */
export function digestBindsData(alg: HashAlgorithm, type: number, data: Uint8Array, digest: Uint8Array): boolean {
  if (digestEquals(alg, data, digest)) {
    return true;
  }
  const end = endWithoutTrailingNuls(data);
  const trimmed = end === data.length ? data : data.subarray(0, end);
  if (trimmed !== data && digestEquals(alg, trimmed, digest)) {
    return true;
  }
  const prefix = type === ev.EV_IPL ? grubPrefixLength(trimmed) : 0;
  if (prefix === 0) {
    return false;
  }
  return digestEquals(alg, trimmed.subarray(prefix), digest) || (trimmed !== data && digestEquals(alg, data.subarray(prefix), digest));
}

function endWithoutTrailingNuls(data: Uint8Array): number {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) {
    end--;
  }
  return end;
}
