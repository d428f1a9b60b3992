import { decodeEventContent, type EventContent } from './internal/event-content.js';
import type { ParsedEventLog } from './event-log.js';
import { hashAlgorithmByName, type HashAlgorithm } from './internal/hash-algorithms.js';
import { isExtended } from './replay.js';
import { digestBindsData, type VerifiedEventLog } from './internal/verified-event-log.js';
import { EVENTS_PER_STEP } from './internal/events-per-step.js';
import { finish, type Stepwise } from '../ima/stepwise.js';

/**
 * One extended event as the boot-state readers see it, whether it comes from a verified log (for a
 * policy decision) or straight from a parsed one (to create a refstate or to show what a log claims).
 * `dataMatchesDigest` says whether `content` is proven by `digest` (see `VerifiedEvent`).
 */
export interface BootEvent {
  readonly sequence: number;
  readonly pcrIndex: number;
  readonly untrustedType: number;
  readonly untrustedTypeName: string;
  readonly digest: Uint8Array;
  /** The event data as logged; `content` is it decoded by the claimed type. */
  readonly untrustedData: Uint8Array;
  readonly content: EventContent;
  readonly dataMatchesDigest: boolean;
}

/** The events of a verified log: digests proven by the quote, content proven where it matches. */
export function bootEventsOfVerifiedLog(log: VerifiedEventLog): BootEvent[] {
  return finish(bootEventsOfVerifiedLogStepwise(log));
}

/** `bootEventsOfVerifiedLog`, pausing every `EVENTS_PER_STEP` events (`Stepwise`). */
export function* bootEventsOfVerifiedLogStepwise(log: VerifiedEventLog): Stepwise<BootEvent[]> {
  const out: BootEvent[] = [];
  for (const e of log.events) {
    out.push({
      sequence: e.sequence,
      pcrIndex: e.pcrIndex,
      untrustedType: e.untrustedType,
      untrustedTypeName: e.untrustedTypeName,
      digest: e.digest,
      untrustedData: e.untrustedData,
      content: e.verifiedContent ?? e.untrustedContent,
      dataMatchesDigest: e.verifiedContent !== null,
    });
    if (out.length % EVENTS_PER_STEP === 0) yield;
  }
  return out;
}

/**
 * The extended events of a parsed log in `bank` — nothing here is verified, so only for creating a
 * refstate from a log the operator trusts, or for showing what a log claims. Events without a digest
 * in `bank` are skipped.
 */
export function untrustedBootEvents(log: ParsedEventLog, bank: HashAlgorithm): BootEvent[] {
  const out: BootEvent[] = [];
  for (const e of log.events) {
    const digest = e.digests.find((d) => d.alg === bank)?.digest;
    if (!isExtended(e) || digest === undefined) {
      continue;
    }
    out.push({
      sequence: e.sequence,
      pcrIndex: e.pcrIndex,
      untrustedType: e.untrustedType,
      untrustedTypeName: e.untrustedTypeName,
      digest,
      untrustedData: e.untrustedData,
      content: decodeEventContent(e.untrustedType, e.untrustedData),
      dataMatchesDigest: bank.nodeName !== null && digestBindsData(bank, e.untrustedType, e.untrustedData, digest),
    });
  }
  return out;
}

/** The bank of `log` named `bankName` (`sha256`), or undefined when the log does not carry it. */
export function findLogBank(log: ParsedEventLog, bankName: string): HashAlgorithm | undefined {
  const alg = hashAlgorithmByName(bankName);
  return log.algorithms.find((a) => a === alg);
}
