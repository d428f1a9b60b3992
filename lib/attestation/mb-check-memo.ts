import { createHash } from 'node:crypto';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { MEASURED_BOOT_PCRS } from '../mb/verify-replay.js';
import { toHex } from './digest.js';
import type { MbCheckInput, MbCheckOutcome } from './mb-check.js';

/** Outcomes kept per refstate: a fleet shares a handful of boot logs, each agent re-sends its own. */
const ENTRIES_PER_REFSTATE = 256;

/** Stands for "no refstate" as a WeakMap key. */
const NO_REFSTATE: object = {};

const memos = new WeakMap<object, Map<string, MbCheckOutcome>>();

/**
 * Memoises the measured-boot check. A node sends the same boot log every round until it reboots, and
 * parsing and replaying it (tens of KiB, hundreds of events) was a third of the verifier's time per
 * round at fleet scale. The outcome is a pure function of the log bytes, the quote's bank, the quoted
 * boot PCR values, the refstate object and the two policy switches, so the key is exactly those: the
 * log by its SHA-256, the refstate by identity (a changed policy is a new object). Outcomes are
 * read-only and shared between agents with the same key.
 */
export function memoisedMbCheck(input: MbCheckInput, check: (input: MbCheckInput) => MbCheckOutcome): MbCheckOutcome {
  const key = memoKey(input);
  const memo = memoFor(input.refstate);
  const hit = memo.get(key);
  if (hit !== undefined) {
    memo.delete(key);
    memo.set(key, hit);
    return hit;
  }
  const outcome = check(input);
  memo.set(key, outcome);
  if (memo.size > ENTRIES_PER_REFSTATE) {
    const oldest = memo.keys().next();
    if (oldest.done !== true) {
      memo.delete(oldest.value);
    }
  }
  return outcome;
}

function memoFor(refstate: MbRefstate | null): Map<string, MbCheckOutcome> {
  const owner = refstate ?? NO_REFSTATE;
  let memo = memos.get(owner);
  if (memo === undefined) {
    memo = new Map();
    memos.set(owner, memo);
  }
  return memo;
}

function memoKey(input: MbCheckInput): string {
  const log = createHash('sha256');
  if (typeof input.eventLog === 'string') {
    log.update('text:').update(input.eventLog, 'utf8');
  } else if (input.eventLog instanceof Uint8Array) {
    log.update('bytes:').update(input.eventLog);
  } else {
    log.update('none');
  }
  const pcrs = MEASURED_BOOT_PCRS.filter((pcr) => input.pcrs.has(pcr))
    .map((pcr) => `${pcr}=${toHex(input.pcrs.get(pcr) as Uint8Array)}`)
    .join(',');
  return [log.digest('hex'), input.hashAlg, pcrs, input.evaluatePolicy, input.policyName].join('|');
}
