import { LittleEndianReader } from '../bytes/byte-reader.js';
import { EventLogParseError } from '../bytes/parse-errors.js';
import type { EventDigest, ParsedEventLog, SpecIdEvent, UntrustedEvent } from './event-log.js';
import { EV_NO_ACTION, eventTypeName } from './internal/event-types.js';
import { SHA1, type HashAlgorithm } from './internal/hash-algorithms.js';
import { PARSE_QUIRKS } from './internal/quirks.js';
import { classifySpecId, parseSpecIdEvent } from './internal/spec-id-event.js';
import { EVENTS_PER_STEP } from './internal/events-per-step.js';
import { startsWithAscii } from './internal/ascii-prefix.js';
import { finish, type Stepwise } from '../ima/stepwise.js';

/** PC Client TPMs have PCRs 0-23 (PFP §3.3.4, Table 1); any other index means the framing is wrong. */
const PCR_COUNT = 24;
/** PCR index -1, used by Windows for events that are not measured. */
const NOT_A_PCR = 0xffffffff;
/** `StartupLocality\0` (PFP §10.4.5.3), followed by one byte of locality. */
const STARTUP_LOCALITY_SIGNATURE = 'StartupLocality\0';

/**
 * The largest boot event log parsed, in bytes and in events. Real logs are tens of KB and a few hundred
 * events at most (the 25 real logs in the shared vectors: 15 to 160 events, up to 73 KB; firmware's log
 * area is commonly 64 KiB to 1 MiB). A hostile node may send tens of MiB of events that replay to its
 * own quote: 600,000 events cost some 25 s of CPU and 2 GB of heap to check, every round.
 */
export const MAX_EVENT_LOG_BYTES = 4 * 1024 * 1024;
export const MAX_EVENT_LOG_EVENTS = 10_000;

/** A log over `MAX_EVENT_LOG_BYTES` or `MAX_EVENT_LOG_EVENTS`: refused as it stands (no parse quirk is tried). */
export class EventLogTooLarge extends EventLogParseError {}

/**
 * Parses a binary TCG event log (what Linux exposes as `binary_bios_measurements`, what Keylime sends
 * base64-encoded as `mb_measurement_list`). Both formats are accepted:
 *
 * - SHA1 format: a sequence of `TCG_PCR_EVENT` = `pcrIndex u32 | eventType u32 | digest[20] |
 *   eventDataSize u32 | event[]` (PFP §10.2.1);
 * - crypto-agile: a first `TCG_PCR_EVENT` whose data is `Spec ID Event03` (which gives every bank and
 *   its digest size, unknown algorithms included), then `TCG_PCR_EVENT2` = `pcrIndex u32 |
 *   eventType u32 | TPML_DIGEST_VALUES {count u32, {hashAlg u16, digest[size]}[count]} |
 *   eventSize u32 | event[]` (PFP §10.2.2).
 *
 * Guarantees: every length is checked before it is used; a truncated, oversized or inconsistent log
 * throws `EventLogParseError` (with the offset and the structure); an empty input is refused, and so is
 * one over `MAX_EVENT_LOG_BYTES` or `MAX_EVENT_LOG_EVENTS` (`EventLogTooLarge`).
 * Parse quirks (`internal/quirks.ts`) are tried only after the strict parse failed; `quirksApplied` names them.
 * Does not check any digest, decode event data, or decide anything about trust.
 */
export function parseEventLog(bytes: Uint8Array): ParsedEventLog {
  return finish(parseEventLogStepwise(bytes));
}

/**
 * `parseEventLog`, pausing every `EVENTS_PER_STEP` events (`Stepwise`): a hostile log of tens of MiB
 * holds hundreds of thousands. The same log, or the same error.
 */
export function* parseEventLogStepwise(bytes: Uint8Array): Stepwise<ParsedEventLog> {
  if (bytes.length > MAX_EVENT_LOG_BYTES) {
    throw new EventLogTooLarge(`the event log is ${bytes.length} bytes, more than the ${MAX_EVENT_LOG_BYTES} a boot log may be`, 0, []);
  }
  try {
    return yield* parseStrict(bytes, []);
  } catch (error) {
    for (const quirk of PARSE_QUIRKS) {
      const patched = error instanceof EventLogParseError && !(error instanceof EventLogTooLarge) ? quirk.apply(bytes) : null;
      if (patched !== null) {
        return yield* parseStrict(patched, [quirk.id]);
      }
    }
    throw error;
  }
}

function* parseStrict(bytes: Uint8Array, quirksApplied: readonly string[]): Stepwise<ParsedEventLog> {
  if (bytes.length === 0) {
    throw new EventLogParseError('the event log is empty', 0, []);
  }
  const r = new LittleEndianReader(bytes, EventLogParseError);
  const first = readSha1Event(r, 0);
  const kind = first.untrustedType === EV_NO_ACTION && first.pcrIndex === 0
    ? classifySpecId(first.untrustedData, first.offset)
    : 'none';
  let specId: SpecIdEvent | null = null;
  let algorithms: readonly HashAlgorithm[] = [SHA1];
  if (kind === 'crypto-agile') {
    specId = parseSpecIdEvent(first.untrustedData);
    algorithms = specId.algorithms;
  }
  const events: UntrustedEvent[] = [first];
  while (r.remaining > 0) {
    const sequence = events.length;
    if (sequence === MAX_EVENT_LOG_EVENTS) {
      throw new EventLogTooLarge(`the event log holds more than the ${MAX_EVENT_LOG_EVENTS} events a boot log may hold`, r.offset, []);
    }
    events.push(specId === null ? readSha1Event(r, sequence) : readCryptoAgileEvent(r, sequence, specId.algorithms));
    if (sequence % EVENTS_PER_STEP === 0) yield;
  }
  return {
    format: specId === null ? 'sha1' : 'crypto-agile',
    specId,
    algorithms,
    events,
    startupLocality: yield* findStartupLocality(events),
    quirksApplied,
  };
}

function readSha1Event(r: LittleEndianReader, sequence: number): UntrustedEvent {
  return r.struct(`TCG_PCR_EVENT[${sequence}]`, () => {
    const offset = r.offset;
    const pcrIndex = r.u32();
    const type = r.u32();
    checkPcrIndex(r, pcrIndex, type);
    const digest = r.bytesOf(SHA1.digestSize);
    const data = r.bytesOf(r.u32());
    return event(sequence, offset, pcrIndex, type, [{ alg: SHA1, digest }], data);
  });
}

function readCryptoAgileEvent(
  r: LittleEndianReader,
  sequence: number,
  algorithms: readonly HashAlgorithm[],
): UntrustedEvent {
  return r.struct(`TCG_PCR_EVENT2[${sequence}]`, () => {
    const offset = r.offset;
    const pcrIndex = r.u32();
    const type = r.u32();
    checkPcrIndex(r, pcrIndex, type);
    const count = r.u32();
    if (count > algorithms.length) {
      throw r.error(`${count} digests, but the Spec ID event lists ${algorithms.length} algorithm(s)`);
    }
    const digests: EventDigest[] = [];
    for (let i = 0; i < count; i++) {
      const algId = r.u16();
      const alg = algorithms.find((candidate) => candidate.algId === algId);
      if (alg === undefined) {
        throw r.error(`digest algorithm 0x${algId.toString(16)} is not in the Spec ID event`);
      }
      if (digests.some((d) => d.alg === alg)) {
        throw r.error(`two ${alg.name} digests in one event`);
      }
      digests.push({ alg, digest: r.bytesOf(alg.digestSize) });
    }
    const data = r.bytesOf(r.u32());
    return event(sequence, offset, pcrIndex, type, digests, data);
  });
}

/**
 * A PCR index must name a PC Client PCR. The one exception is Windows' informational EV_NO_ACTION
 * events, which use PCR index -1 (0xFFFFFFFF): they are never extended, so they are framed and kept.
 */
function checkPcrIndex(r: LittleEndianReader, pcrIndex: number, type: number): void {
  if (pcrIndex < PCR_COUNT || (pcrIndex === NOT_A_PCR && type === EV_NO_ACTION)) {
    return;
  }
  throw r.error(`PCR index ${pcrIndex} is not in 0..${PCR_COUNT - 1}`);
}

function event(
  sequence: number,
  offset: number,
  pcrIndex: number,
  untrustedType: number,
  digests: readonly EventDigest[],
  untrustedData: Uint8Array,
): UntrustedEvent {
  return {
    sequence,
    offset,
    pcrIndex,
    untrustedType,
    untrustedTypeName: eventTypeName(untrustedType),
    digests,
    untrustedData,
  };
}

/**
 * The locality of the `StartupLocality` EV_NO_ACTION event in PCR 0 (PFP §10.4.5.3): 0, or 3 when the
 * S-CRTM ran at locality 3, or 4 for an H-CRTM. A second such event, or a malformed one, is refused:
 * it would make the initial value of PCR 0 ambiguous.
 */
function* findStartupLocality(events: readonly UntrustedEvent[]): Stepwise<number | null> {
  let locality: number | null = null;
  for (const e of events) {
    if (e.sequence % EVENTS_PER_STEP === EVENTS_PER_STEP - 1) yield;
    if (e.untrustedType !== EV_NO_ACTION || !startsWithAscii(e.untrustedData, STARTUP_LOCALITY_SIGNATURE)) {
      continue;
    }
    const where = [`event[${e.sequence}]`, 'StartupLocality'];
    if (e.pcrIndex !== 0 || e.untrustedData.length !== STARTUP_LOCALITY_SIGNATURE.length + 1) {
      throw new EventLogParseError('StartupLocality event must be in PCR 0 with 17 bytes of data', e.offset, where);
    }
    if (locality !== null) {
      throw new EventLogParseError('more than one StartupLocality event', e.offset, where);
    }
    const value = e.untrustedData[STARTUP_LOCALITY_SIGNATURE.length] ?? 0;
    if (value !== 0 && value !== 3 && value !== 4) {
      throw new EventLogParseError(`startup locality ${value} is not 0, 3 or 4`, e.offset, where);
    }
    locality = value;
  }
  return locality;
}
