import type { ImaKeyring } from '../../ima/ima-keyring.js';
import { compileRuntimePolicy, withMatchAllowance, type CompiledRuntimePolicy } from '../../ima/compiled-policy.js';
import { emptyRuntimePolicy } from '../../ima/runtime-policy.js';
import { PCR_BANKS, type PcrBank } from '../../ima/hash-algorithms.js';
import { IMA_EVENTS } from '../../ima/ima-failure.js';
import { initialImaReplayState, type ImaReplayState } from '../../ima/ima-replay-state.js';
import { verifyImaListStepwise, type VerifyImaListResult } from '../../ima/verify-ima-list.js';
import type { Stepwise } from '../../ima/stepwise.js';
import { MatchAllowanceExceeded, type MatchAllowance } from '../../python-regex/match-allowance.js';
import type { QuoteHashAlg } from '../algorithms.js';
import type { FailureEvent } from './failure.js';

/** What the IMA step found, for the claims. */
export interface ImaClaims {
  readonly firstEntry: number;
  readonly entriesChecked: number;
  /** Entries up to the PCR 10 match: verified and not sent again. */
  readonly entriesVerified: number;
  readonly nextEntry: number;
}

export interface ImaCheckInput {
  readonly listText: string;
  readonly startEntry: number;
  readonly state: ImaReplayState;
  readonly quotedPcr10: Uint8Array;
  readonly hashAlg: QuoteHashAlg;
  readonly policy: CompiledRuntimePolicy | null;
  readonly keyring: ImaKeyring | undefined;
  readonly bootAggregates: readonly string[];
  readonly failOnTomtou: boolean;
  /** What the policy's exclude rules may spend this round; absent: not bounded. */
  readonly allowance?: MatchAllowance | undefined;
}

export interface ImaCheckOutcome {
  readonly events: readonly FailureEvent[];
  /** Advanced on success, the initial state after any failure (Keylime resets on every IMA failure). */
  readonly nextState: ImaReplayState;
  readonly claims: ImaClaims;
}

/**
 * IMA replay against the quoted PCR 10 and the runtime policy (Keylime `ima.process_measurement_list`;
 * spec §7.6) through lib/ima's `verifyImaList`. With IMA signature keys but no runtime policy, the
 * list is checked against Keylime's empty policy, as Keylime's verifier does. IMA events are recoverable, as in Keylime, and
 * carries the line and path of the entry in its context. A quote bank lib/ima cannot replay PCR 10 in
 * (sm3_256 is not implemented) fails closed with `ima.pcr_mismatch`. Exclude rules that
 * would pass the round's match allowance stop the replay: the list is not judged, and the round
 * fails with `ima.policy.match_allowance_exceeded` (the state goes back to entry 0, as on any failure).
 * Pauses between chunks of lines (`Stepwise`).
 */
export function* checkIma(input: ImaCheckInput): Stepwise<ImaCheckOutcome> {
  if (!(PCR_BANKS as readonly string[]).includes(input.hashAlg)) {
    return {
      events: [imaEvent(IMA_EVENTS.pcrMismatch, { message: `PCR 10 cannot be replayed in the ${input.hashAlg} bank` })],
      nextState: initialImaReplayState(),
      claims: { firstEntry: input.startEntry, entriesChecked: 0, entriesVerified: 0, nextEntry: 0 },
    };
  }
  const { allowance } = input;
  const policy = input.policy ?? (input.keyring === undefined ? null : keylimeEmptyPolicy());
  let result: VerifyImaListResult;
  try {
    result = yield* verifyImaListStepwise({
      listText: input.listText,
      startEntry: input.startEntry,
      state: input.state,
      quotedPcr10: { bank: input.hashAlg as PcrBank, value: input.quotedPcr10 },
      bootAggregates: input.bootAggregates,
      failOnTomtou: input.failOnTomtou,
      ...(policy === null ? {} : { policy: allowance === undefined || input.listText === '' ? policy : withMatchAllowance(policy, allowance) }),
      ...(input.keyring === undefined ? {} : { keyrings: input.keyring }),
    });
  } catch (error) {
    if (!(error instanceof MatchAllowanceExceeded)) {
      throw error;
    }
    return {
      events: [imaEvent(IMA_EVENTS.matchAllowanceExceeded, { message: `the runtime policy's excludes are too costly to evaluate for this round: ${error.message}` })],
      nextState: initialImaReplayState(),
      claims: { firstEntry: input.startEntry, entriesChecked: 0, entriesVerified: 0, nextEntry: 0 },
    };
  }
  return {
    events: result.failures.map((failure) =>
      imaEvent(failure.eventId, { ...failure.context, ...(failure.line > 0 ? { line: failure.line, path: failure.path } : {}) }),
    ),
    nextState: result.nextState,
    claims: {
      firstEntry: input.startEntry,
      entriesChecked: result.entriesChecked,
      entriesVerified: result.valid ? result.matchedEntries : 0,
      nextEntry: result.nextState.nextEntry,
    },
  };
}

let emptyPolicy: CompiledRuntimePolicy | undefined;

/**
 * Keylime's empty runtime policy, compiled once: what its verifier checks the list against when an
 * agent has IMA signature keys but no runtime policy (it never runs without a policy). A file neither
 * signed by a known key nor excluded then fails, as does a key an `ima-buf` line loads.
 */
function keylimeEmptyPolicy(): CompiledRuntimePolicy {
  return (emptyPolicy ??= compileRuntimePolicy(emptyRuntimePolicy()));
}

/** IMA events are recoverable in Keylime; the misplaced-entry event it files under quote validation is not. */
function imaEvent(eventId: string, context: Record<string, unknown>): FailureEvent {
  return { eventId, context, recoverable: eventId !== IMA_EVENTS.invalidEntryNumber };
}
