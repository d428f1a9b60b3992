import { IronlimeError } from '../../interfaces/errors.js';
import { MEASUREDBOOT_PCRS } from '../tpm/keylime-profile.js';
import type { ParsedEventLog } from './event-log.js';
import { hashAlgorithmByName, type HashAlgorithm } from './internal/hash-algorithms.js';
import { mbFailure, type MbFailure } from './mb-failure.js';
import { REPLAY_QUIRKS } from './internal/quirks.js';
import { initialPcrValue, replayEventLogStepwise } from './replay.js';
import { buildVerifiedEventLogStepwise, type VerifiedEventLog } from './internal/verified-event-log.js';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { finish, type Stepwise } from '../ima/stepwise.js';

/** Quoted PCR values: `{bank: {index: digest}}`, digests as hex (optionally `0x`-prefixed) or bytes. */
export type QuotedPcrs = Readonly<Record<string, Readonly<Record<string, string | Uint8Array>>>>;

/** One quoted PCR compared with the log's replay, digests in lowercase hex. */
export interface PcrComparison {
  readonly bank: string;
  readonly pcrIndex: number;
  readonly quoted: string;
  readonly replayed: string;
}

export interface ReplayVerification {
  /** True when at least one quoted PCR was compared and none differed. */
  readonly ok: boolean;
  readonly matched: readonly PcrComparison[];
  readonly mismatched: readonly PcrComparison[];
  /** Quoted banks the log cannot replay (no digests for them, or no hash implementation). */
  readonly unverifiable: readonly { readonly bank: string; readonly reason: string }[];
  /** Parse and replay quirks needed to reach this result (empty on the strict path). */
  readonly quirksApplied: readonly string[];
  /** `measured_boot.invalid_pcr_<n>` for each mismatch. */
  readonly failures: readonly MbFailure[];
  /**
   * The events of the PCRs that matched, in the preferred matched bank (sha256, then sha384, sha512,
   * sm3_256, sha1); null when nothing matched. PCRs that differ in any bank are left out.
   */
  readonly verifiedLog: VerifiedEventLog | null;
}

export interface VerifyReplayOptions {
  /** PCRs to compare when quoted (default `MEASUREDBOOT_PCRS`); other quoted PCRs are ignored. */
  readonly pcrs?: readonly number[];
}

const BANK_PREFERENCE = ['sha256', 'sha384', 'sha512', 'sm3_256', 'sha3_256', 'sha3_384', 'sha3_512', 'sha1'];

/**
 * Replays `log` and compares it with PCR values taken from a verified quote: this is what turns the
 * log's digests into evidence. A quoted PCR that the log never extends is compared with its initial
 * value. The strict replay runs first; only if it mismatches are the replay quirks whose PCRs
 * mismatched tried, one at a time, and a quirk is kept only if it makes every compared PCR match.
 *
 * Throws `IronlimeError(ERR_INVALID_PARAMETER_VALUE)` when `quotedPcrs` names an unknown bank, a PCR
 * index outside 0..23 or a digest that is not hex. A digest of the wrong length is a mismatch.
 */
export function verifyReplay(
  log: ParsedEventLog,
  quotedPcrs: QuotedPcrs,
  options: VerifyReplayOptions = {},
): ReplayVerification {
  return finish(verifyReplayStepwise(log, quotedPcrs, options));
}

/** `verifyReplay`, pausing between chunks of events (`Stepwise`): the same verification, or the same error. */
export function* verifyReplayStepwise(
  log: ParsedEventLog,
  quotedPcrs: QuotedPcrs,
  options: VerifyReplayOptions = {},
): Stepwise<ReplayVerification> {
  const quoted = normaliseQuoted(quotedPcrs, new Set(options.pcrs ?? MEASUREDBOOT_PCRS));
  let outcome = yield* compare(log, quoted);
  let patchedLog = log;
  let applied: string[] = [];
  if (outcome.mismatched.length > 0) {
    const mismatchedPcrs = new Set(outcome.mismatched.map((m) => m.pcrIndex));
    for (const quirk of REPLAY_QUIRKS) {
      const patched = quirk.affects.some((pcr) => mismatchedPcrs.has(pcr)) ? quirk.apply(log) : null;
      const retry = patched === null ? null : yield* compare(patched, quoted);
      if (patched !== null && retry !== null && retry.mismatched.length === 0) {
        outcome = retry;
        patchedLog = patched;
        applied = [quirk.id];
        break;
      }
    }
  }
  const quirksApplied = [...log.quirksApplied, ...applied];
  return {
    ok: outcome.matched.length > 0 && outcome.mismatched.length === 0,
    ...outcome,
    quirksApplied,
    failures: outcome.mismatched.map(pcrFailure),
    verifiedLog: yield* verifiedPart(patchedLog, outcome, quirksApplied),
  };
}

interface Outcome {
  matched: PcrComparison[];
  mismatched: PcrComparison[];
  unverifiable: { bank: string; reason: string }[];
}

type NormalisedQuote = Map<HashAlgorithm, Map<number, Uint8Array>>;

function* compare(log: ParsedEventLog, quoted: NormalisedQuote): Stepwise<Outcome> {
  const replay = yield* replayEventLogStepwise(log);
  const outcome: Outcome = { matched: [], mismatched: [], unverifiable: [] };
  for (const [alg, pcrs] of quoted) {
    const bank = replay.banks.get(alg.name);
    if (bank === undefined) {
      const reason = replay.unreplayable.find((u) => u.bank === alg.name)?.reason ?? `the log has no ${alg.name} digests`;
      outcome.unverifiable.push({ bank: alg.name, reason });
      continue;
    }
    for (const [pcrIndex, value] of pcrs) {
      const replayed = bank.pcrs.get(pcrIndex) ?? initialPcrValue(pcrIndex, alg.digestSize, log.startupLocality);
      const same = bytesEqual(replayed, value);
      const comparison = { bank: alg.name, pcrIndex, quoted: hex(value), replayed: hex(replayed) };
      (same ? outcome.matched : outcome.mismatched).push(comparison);
    }
  }
  return outcome;
}

function* verifiedPart(log: ParsedEventLog, outcome: Outcome, quirksApplied: readonly string[]): Stepwise<VerifiedEventLog | null> {
  const bad = new Set(outcome.mismatched.map((m) => m.pcrIndex));
  for (const name of BANK_PREFERENCE) {
    const pcrs = outcome.matched.filter((m) => m.bank === name && !bad.has(m.pcrIndex)).map((m) => m.pcrIndex);
    const alg = hashAlgorithmByName(name);
    if (pcrs.length > 0 && alg !== undefined) {
      return yield* buildVerifiedEventLogStepwise(log, alg, pcrs, quirksApplied);
    }
  }
  return null;
}

function pcrFailure(m: PcrComparison): MbFailure {
  return mbFailure(`measured_boot.invalid_pcr_${m.pcrIndex}`, {
    context: `${m.bank.toUpperCase()} PCR ${m.pcrIndex} replayed from the boot event log does not match the quote`,
    bank: m.bank,
    pcr: m.pcrIndex,
    got: m.quoted,
    expected: m.replayed,
  });
}

function normaliseQuoted(quotedPcrs: QuotedPcrs, wanted: ReadonlySet<number>): NormalisedQuote {
  const out: NormalisedQuote = new Map();
  for (const [bankName, pcrs] of Object.entries(quotedPcrs)) {
    const alg = hashAlgorithmByName(bankName);
    if (alg === undefined) {
      throw invalid(`quotedPcrs.${bankName}`, 'unknown PCR bank');
    }
    const values = new Map<number, Uint8Array>();
    for (const [key, value] of Object.entries(pcrs)) {
      const index = Number(key);
      if (!/^\d{1,2}$/.test(key) || index > 23) {
        throw invalid(`quotedPcrs.${bankName}.${key}`, 'PCR index must be an integer from 0 to 23');
      }
      if (wanted.has(index)) {
        values.set(index, digestBytes(value, `quotedPcrs.${bankName}.${key}`));
      }
    }
    out.set(alg, values);
  }
  return out;
}

function digestBytes(value: string | Uint8Array, where: string): Uint8Array {
  if (value instanceof Uint8Array) {
    return value;
  }
  const body = typeof value === 'string' ? value.replace(/^0x/i, '') : '';
  if (typeof value !== 'string' || body.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(body)) {
    throw invalid(where, 'digest must be a hex string');
  }
  return new Uint8Array(Buffer.from(body, 'hex'));
}

function invalid(field: string, detail: string): IronlimeError {
  return new IronlimeError('ERR_INVALID_PARAMETER_VALUE', `${field}: ${detail}`);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
