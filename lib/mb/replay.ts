import type { ParsedEventLog, UntrustedEvent } from './event-log.js';
import { EV_NO_ACTION } from './internal/event-types.js';
import { extendInPlace, type HashAlgorithm } from './internal/hash-algorithms.js';
import { EVENTS_PER_STEP } from './internal/events-per-step.js';
import { finish, type Stepwise } from '../ima/stepwise.js';

/** PCR index → value, for one bank. */
export type PcrBank = ReadonlyMap<number, Uint8Array>;

/** The replay of one bank. */
export interface BankReplay {
  readonly alg: HashAlgorithm;
  /** Final value of every PCR that at least one event extends. */
  readonly pcrs: PcrBank;
}

/** A bank the log names but that cannot be replayed, and why. */
export interface UnreplayableBank {
  readonly bank: string;
  readonly reason: string;
}

export interface EventLogReplay {
  /** Replayed banks by name (`sha1`, `sha256`, …). */
  readonly banks: ReadonlyMap<string, BankReplay>;
  readonly unreplayable: readonly UnreplayableBank[];
}

/**
 * Replays every bank of the log: each PCR starts at zero — PCR 0 at `00…0<locality>` when a
 * StartupLocality event is present (PC Client PFP §3.3.4.1, §10.4.5.3) — and every event except
 * EV_NO_ACTION (which is never extended, PFP §10.4.1) extends `pcr = H(pcr ‖ digest)`.
 * A bank is left out, with the reason, when this Node has no implementation of its hash or when
 * an extended event carries no digest for it.
 *
 * This computes what the log claims; it proves nothing until compared with quoted PCR values.
 */
export function replayEventLog(log: ParsedEventLog): EventLogReplay {
  return finish(replayEventLogStepwise(log));
}

/** `replayEventLog`, pausing every `EVENTS_PER_STEP` events of each bank (`Stepwise`): the same replay. */
export function* replayEventLogStepwise(log: ParsedEventLog): Stepwise<EventLogReplay> {
  const banks = new Map<string, BankReplay>();
  const unreplayable: UnreplayableBank[] = [];
  for (const alg of log.algorithms) {
    const result = yield* replayBank(log, alg);
    if (typeof result === 'string') {
      unreplayable.push({ bank: alg.name, reason: result });
    } else {
      banks.set(alg.name, { alg, pcrs: result });
    }
  }
  return { banks, unreplayable };
}

/** True for events that are extended into their PCR (all but EV_NO_ACTION). */
export function isExtended(event: UntrustedEvent): boolean {
  return event.untrustedType !== EV_NO_ACTION;
}

/** The initial value of `pcrIndex` in a bank of `size` bytes. */
export function initialPcrValue(pcrIndex: number, size: number, startupLocality: number | null): Uint8Array {
  const value = new Uint8Array(size);
  if (pcrIndex === 0 && startupLocality !== null) {
    value[size - 1] = startupLocality;
  }
  return value;
}

/**
 * Each PCR is kept as `value ‖ digest`, the extend's input: an event's digest is copied after the
 * value and the value extended in place (no input to concatenate, no Buffer per event).
 */
function* replayBank(log: ParsedEventLog, alg: HashAlgorithm): Stepwise<Map<number, Uint8Array> | string> {
  if (alg.nodeName === null) {
    return `no implementation of ${alg.name} is available`;
  }
  const size = alg.digestSize;
  const inputs = new Map<number, Uint8Array>();
  for (const event of log.events) {
    if (event.sequence % EVENTS_PER_STEP === EVENTS_PER_STEP - 1) yield;
    if (!isExtended(event)) {
      continue;
    }
    const digest = event.digests.find((d) => d.alg === alg);
    if (digest === undefined) {
      return `event ${event.sequence} (PCR ${event.pcrIndex}) has no ${alg.name} digest`;
    }
    let input = inputs.get(event.pcrIndex);
    if (input === undefined) {
      input = new Uint8Array(2 * size);
      input.set(initialPcrValue(event.pcrIndex, size, log.startupLocality));
      inputs.set(event.pcrIndex, input);
    }
    input.set(digest.digest, size);
    extendInPlace(alg, input);
  }
  return new Map([...inputs].map(([pcr, input]) => [pcr, input.slice(0, size)]));
}

/** `{bank: {index: hex}}`, PCRs in ascending order: the JSON form used by the CLI and tests. */
export function pcrBanksToJson(banks: ReadonlyMap<string, BankReplay>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [name, bank] of banks) {
    const entries = [...bank.pcrs.entries()].sort(([a], [b]) => a - b);
    out[name] = Object.fromEntries(entries.map(([index, value]) => [String(index), Buffer.from(value).toString('hex')]));
  }
  return out;
}
