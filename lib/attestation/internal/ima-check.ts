import type { ImaKeyring } from '../../ima/ima-keyring.js';
import type { CompiledRuntimePolicy } from '../../ima/compiled-policy.js';
import { PCR_BANKS, type PcrBank } from '../../ima/hash-algorithms.js';
import { IMA_EVENTS } from '../../ima/ima-failure.js';
import { initialImaReplayState, type ImaReplayState } from '../../ima/ima-replay-state.js';
import { verifyImaList } from '../../ima/verify-ima-list.js';
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
}

export interface ImaCheckOutcome {
  readonly events: readonly FailureEvent[];
  /** Advanced on success, the initial state after any failure (Keylime resets on every IMA failure). */
  readonly nextState: ImaReplayState;
  readonly claims: ImaClaims;
}

/**
 * IMA replay against the quoted PCR 10 and the runtime policy (Keylime `ima.process_measurement_list`;
 * spec §7.6) through lib/ima's `verifyImaList`. IMA events are recoverable, as in Keylime, and
 * carries the line and path of the entry in its context. A quote bank lib/ima cannot replay PCR 10 in
 * (only sha1 and sha256 are implemented) fails closed with `ima.pcr_mismatch`.
 */
export function checkIma(input: ImaCheckInput): ImaCheckOutcome {
  if (!(PCR_BANKS as readonly string[]).includes(input.hashAlg)) {
    return {
      events: [imaEvent(IMA_EVENTS.pcrMismatch, { message: `PCR 10 cannot be replayed in the ${input.hashAlg} bank` })],
      nextState: initialImaReplayState(),
      claims: { firstEntry: input.startEntry, entriesChecked: 0, entriesVerified: 0, nextEntry: 0 },
    };
  }
  const result = verifyImaList({
    listText: input.listText,
    startEntry: input.startEntry,
    state: input.state,
    quotedPcr10: { bank: input.hashAlg as PcrBank, value: input.quotedPcr10 },
    bootAggregates: input.bootAggregates,
    failOnTomtou: input.failOnTomtou,
    ...(input.policy === null ? {} : { policy: input.policy }),
    ...(input.keyring === undefined ? {} : { keyrings: input.keyring }),
  });
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

/** IMA events are recoverable in Keylime; the misplaced-entry event it files under quote validation is not. */
function imaEvent(eventId: string, context: Record<string, unknown>): FailureEvent {
  return { eventId, context, recoverable: eventId !== IMA_EVENTS.invalidEntryNumber };
}
