import { createHash } from 'node:crypto';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { MEASUREDBOOT_PCRS } from '../tpm/keylime-profile.js';
import type { MbCheckInput, MbCheckOutcome } from './internal/mb-check.js';
import type { Stepwise } from '../ima/stepwise.js';

/** Distinct boot logs kept per refstate: a fleet shares a handful, each agent re-sends its own every round. */
const LOGS_PER_REFSTATE = 64;
/**
 * Characters of log text kept per refstate (a real UEFI log is 30–80 KB of base64): without it, one
 * node whose quotes verify could pin 64 logs of the largest size accepted (the broker's 4 MiB) under
 * its refstate, 256 MiB, by sending junk logs. The least recently used logs go first.
 */
export const LOG_TEXT_PER_REFSTATE = 16 * 1024 * 1024;
/**
 * The longest log (characters of text, or bytes) the memo keeps. A longer one, which only a hostile node
 * sends, is checked afresh each time (a step at a time) and never kept: looking it up would compare it
 * with the one kept, a fresh copy of tens of MiB every round (60–300 ms on the event loop for 61 MiB),
 * or hash it, and keeping it would hold it.
 */
export const LONGEST_LOG_KEPT = 4 * 1024 * 1024;

/** Stands for "no refstate" as a WeakMap key. */
const NO_REFSTATE: object = {};

/**
 * Memoises the measured-boot check — an explicit object the verifier service owns and hands to the
 * engine (`EvaluateQuoteOptions.mbMemo`); the engine keeps no hidden state. A node sends the same
 * boot log every round until it reboots, and parsing and replaying it (tens of KiB, hundreds of
 * events) was a third of a round's time at fleet scale.
 *
 * The outcome is a pure function of the log, the quote's bank, the quoted boot PCR values, the
 * refstate and the two policy switches; the key is exactly those. The log is keyed by its own text
 * (a `Map` string key: V8 compares a long string by length and contents, with no digest to compute
 * each round — the old key hashed the whole 38 KB log with SHA-256 every round); a raw byte log, a
 * rare input, by its SHA-256 in a map of its own. The refstate is keyed by identity (a changed policy is a new object).
 * Outcomes are read-only and shared between agents with the same key; least recently used logs go first.
 */
export class MeasuredBootMemo {
  private readonly byRefstate = new WeakMap<object, RefstateLogs>();
  private hits = 0;
  private misses = 0;

  /**
   * The outcome kept for `input` (a base64 text), or undefined: the usual round's lookup, as `check`
   * makes it, without a generator to make. A miss leaves the memo as it was, for `check` to look again.
   */
  recall(input: MbCheckInput): MbCheckOutcome | undefined {
    if (typeof input.eventLog !== 'string' || input.eventLog.length > LONGEST_LOG_KEPT) {
      return undefined;
    }
    const owner = this.logsFor(input.refstate);
    const logs = owner.texts;
    const logKey = input.eventLog;
    const newest = owner.newest;
    const outcomes = newest !== undefined && newest.logs === logs && newest.logKey === logKey ? newest.outcomes : logs.get(logKey);
    const hit = outcomes?.find((entry) => sameRest(entry, input));
    if (outcomes === undefined || hit === undefined) {
      return undefined;
    }
    if (outcomes !== newest?.outcomes) {
      logs.delete(logKey);
      logs.set(logKey, outcomes);
      owner.newest = { logs, logKey, outcomes };
    }
    this.hits += 1;
    return hit.outcome;
  }

  /**
   * The memoised outcome of `check(input)`, which on a miss runs a step at a time (`Stepwise`: a
   * hostile log of tens of MiB). Other rounds may use the memo between its steps: the outcome is added
   * to the entry its lookup found or made, whatever happened to the entry meanwhile.
   */
  *check(input: MbCheckInput, check: (input: MbCheckInput) => Stepwise<MbCheckOutcome>): Stepwise<MbCheckOutcome> {
    if (input.eventLog !== null && input.eventLog !== undefined && input.eventLog.length > LONGEST_LOG_KEPT) {
      this.misses += 1;
      return yield* check(input);
    }
    const owner = this.logsFor(input.refstate);
    const { logs, logKey } = logEntryOf(owner, input.eventLog);
    const newest = owner.newest;
    // The common round: the log the last lookup used, already the most recent — one comparison of the
    // text and no reordering (each `Map` operation on a long key compares the whole text again).
    let outcomes = newest !== undefined && newest.logs === logs && newest.logKey === logKey ? newest.outcomes : logs.get(logKey);
    if (outcomes !== undefined) {
      const hit = outcomes.find((entry) => sameRest(entry, input));
      if (outcomes !== newest?.outcomes) {
        logs.delete(logKey);
        logs.set(logKey, outcomes);
        owner.newest = { logs, logKey, outcomes };
      }
      if (hit !== undefined) {
        this.hits += 1;
        return hit.outcome;
      }
    } else {
      outcomes = [];
      logs.set(logKey, outcomes);
      owner.newest = { logs, logKey, outcomes };
      if (logs === owner.texts) {
        owner.textChars += logKey.length;
      }
      while (logs.size > LOGS_PER_REFSTATE || (logs === owner.texts && owner.textChars > LOG_TEXT_PER_REFSTATE && logs.size > 1)) {
        const oldest = logs.keys().next();
        if (oldest.done === true) {
          break;
        }
        logs.delete(oldest.value);
        if (logs === owner.texts) {
          owner.textChars -= oldest.value.length;
        }
      }
    }
    this.misses += 1;
    // The key is copied before the check runs, so it holds the values the outcome was computed on.
    const rest = restOf(input);
    const outcome = yield* check(input);
    // A handful of PCR sets per log (one per bank and quote selection); bounded all the same.
    if (outcomes.length >= 16) {
      outcomes.length = 0;
    }
    outcomes.push({ ...rest, outcome });
    return outcome;
  }

  /** Lookups answered from the memo and computed, since creation. */
  get stats(): { hits: number; misses: number } {
    return { hits: this.hits, misses: this.misses };
  }

  private logsFor(refstate: MbRefstate | null): RefstateLogs {
    const owner = refstate ?? NO_REFSTATE;
    let logs = this.byRefstate.get(owner);
    if (logs === undefined) {
      logs = { texts: new Map(), bytes: new Map(), textChars: 0, newest: undefined };
      this.byRefstate.set(owner, logs);
    }
    return logs;
  }
}

/**
 * One outcome with the rest of its key: bank, policy switches and each quoted boot PCR's value (copied:
 * the quote's values are views into the reply), by position in MEASUREDBOOT_PCRS.
 */
interface RestEntry {
  readonly hashAlg: string;
  readonly evaluatePolicy: boolean;
  readonly policyName: string;
  readonly bootPcrs: readonly (Uint8Array | undefined)[];
  readonly outcome: MbCheckOutcome;
}

/** Outcomes per log, compared field by field (no key string to build and hash each round). */
type LogOutcomes = Map<string, RestEntry[]>;

/**
 * One refstate's logs, in two maps so that no key of one kind can equal a key of the other: base64
 * texts keyed by the text itself (no prefix: a prefixed key would be a fresh 51 KB string to build
 * and compare every round), raw byte logs and "no log" by a digest.
 */
interface RefstateLogs {
  readonly texts: LogOutcomes;
  readonly bytes: LogOutcomes;
  /** Characters of the texts' keys, held under `LOG_TEXT_PER_REFSTATE`. */
  textChars: number;
  /** The entry the last lookup used (the most recent in its map). */
  newest: { readonly logs: LogOutcomes; readonly logKey: string; readonly outcomes: RestEntry[] } | undefined;
}

function logEntryOf(owner: RefstateLogs, eventLog: MbCheckInput['eventLog']): { logs: LogOutcomes; logKey: string } {
  if (typeof eventLog === 'string') {
    return { logs: owner.texts, logKey: eventLog };
  }
  if (eventLog instanceof Uint8Array) {
    return { logs: owner.bytes, logKey: createHash('sha256').update(eventLog).digest('hex') };
  }
  return { logs: owner.bytes, logKey: 'none' };
}

function restOf(input: MbCheckInput): Omit<RestEntry, 'outcome'> {
  const bootPcrs = MEASUREDBOOT_PCRS.map((pcr) => {
    const value = input.pcrs.get(pcr);
    return value === undefined ? undefined : Uint8Array.from(value);
  });
  return { hashAlg: input.hashAlg, evaluatePolicy: input.evaluatePolicy, policyName: input.policyName, bootPcrs };
}

/** True when `entry` was checked with `input`'s bank, switches and quoted boot PCR values. */
function sameRest(entry: RestEntry, input: MbCheckInput): boolean {
  if (entry.hashAlg !== input.hashAlg || entry.evaluatePolicy !== input.evaluatePolicy || entry.policyName !== input.policyName) {
    return false;
  }
  for (let i = 0; i < MEASUREDBOOT_PCRS.length; i += 1) {
    const value = input.pcrs.get(MEASUREDBOOT_PCRS[i] as number);
    const kept = entry.bootPcrs[i];
    if (value === undefined || kept === undefined ? value !== kept : !samePublicBytes(value, kept)) {
      return false;
    }
  }
  return true;
}

/** Plain byte equality: PCR values are public (quoted in the clear), so no constant-time compare is needed. */
function samePublicBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    return false;
  }
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] !== b[i]) {
      return false;
    }
  }
  return true;
}
