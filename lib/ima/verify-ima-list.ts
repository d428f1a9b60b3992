import { IronlimeError } from '../../interfaces/errors.js';
import type { CompiledRuntimePolicy } from './compiled-policy.js';
import type { LearnedKey, ValidationContext } from './internal/entry-validator.js';
import { imaHashByName, pcrBankSize, PCR_BANKS, type PcrBank } from './hash-algorithms.js';
import type { UntrustedImaEntry } from './internal/ima-entry.js';
import { IMA_EVENTS, type ImaFailure } from './ima-failure.js';
import { ImaKeyrings, type ImaKeyring } from './ima-keyring.js';
import { loadLearntKeys, storeLearntKeys } from './internal/learnt-keyrings.js';
import { initialImaReplayState, parseImaReplayState, type ImaReplayState, type Pcr10Values } from './ima-replay-state.js';
import { replayRound, type ReplayRoundOutcome } from './internal/replay-round.js';
import { loggedHashIsReplayed } from './internal/template-digests.js';
import { finish, type Stepwise } from './stepwise.js';

/**
 * Checks (part of) an IMA measurement list against a quoted PCR 10 and a runtime policy, and says
 * where the next round starts — Keylime's `ima.process_measurement_list`, incremental.
 *
 * For each entry, in order: PCR 10 is extended in the quoted bank (both banks without a quote) with
 * that bank's hash of the template data, recomputed; an entry whose logged hash is all zeros is a
 * violation (extended as all-ones, content not checked); the PCR index must be 10; the logged
 * template hash must equal the policy's `log_hash_alg` (sha1 by default) hash of the template data
 * on every line the quote does not bind (Keylime `ast.Entry.invalid`), and on those it binds when
 * that hash is the quoted bank's (no extra cost), or when the round does not match the quote (a
 * second pass then names the lines whose data disagree with their hash); the content rules of
 * internal/entry-validator.ts apply. A line that does not parse is reported and not
 * extended (Keylime does the same, so the PCR will not match either).
 *
 * PCR race: the node reads the log after the quote, so the log may be ahead of the quoted PCR 10.
 * The quoted value is compared with the running value before the first line and after every line;
 * the first match commits that many lines (`nextState.nextEntry`), later lines are still validated
 * but asked for again next round. No match at all is `ima.pcr_mismatch`. Quote progress: when the
 * previous round matched with `lagEntries` lines left over, this round's match must come after at
 * least those lines, or the failure is `ima.quote_progress`.
 *
 * Any failure makes the result invalid and `nextState` the initial state (replay everything next
 * time), as Keylime resets its attestation state on any IMA failure.
 *
 * Not checked here: the quote's signature and freshness (the caller verifies the quote first and
 * passes the PCR 10 value it attests), and that the first entry is `boot_aggregate`.
 */
export interface VerifyImaListInput {
  /** The ASCII list the node sent, starting at entry `startEntry`. Give this or `entries`. */
  readonly listText?: string;
  /** Already parsed entries (a binary list), starting at entry `startEntry`. */
  readonly entries?: readonly UntrustedImaEntry[];
  /** Index of the first entry sent; defaults to `state.nextEntry`. 0 restarts the replay. */
  readonly startEntry?: number;
  /** State from the previous round; the initial state when absent. */
  readonly state?: ImaReplayState;
  /** The runtime policy; without one only template hashes, PCR 10 and signatures are checked. */
  readonly policy?: CompiledRuntimePolicy;
  /** PCR 10 as attested by the (already verified) quote. Without it every entry is committed. */
  readonly quotedPcr10?: { readonly bank: PcrBank; readonly value: string | Uint8Array };
  /** Tenant IMA signature keys (Keylime's `tenant_keyring`), added to the policy's verification keys. */
  readonly keyrings?: ImaKeyring;
  /** Extra accepted `boot_aggregate` digests, e.g. computed from the node's UEFI event log. */
  readonly bootAggregates?: readonly string[];
  /** Report violation (ToMToU) entries as `ima.validation.tomtou` failures. Default false. */
  readonly failOnTomtou?: boolean;
}

export interface VerifyImaListResult {
  readonly valid: boolean;
  readonly failures: readonly ImaFailure[];
  /** What to store for the next round (the initial state when invalid). */
  readonly nextState: ImaReplayState;
  /** Lines processed this round (parsed or not). */
  readonly entriesChecked: number;
  /** Lines committed: up to and including the PCR match (all of them without a quoted value). */
  readonly matchedEntries: number;
  /**
   * PCR 10 after every line of this round, lowercase hex, in the banks replayed: the quoted one, or
   * without a quote those of the state (both from entry 0).
   */
  readonly pcr10: Readonly<Pcr10Values>;
}

function badInput(detail: string): never {
  throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', `verifyImaList: ${detail}`);
}

function quotedValue(input: VerifyImaListInput): { bank: PcrBank; value: Buffer } | undefined {
  const quoted = input.quotedPcr10;
  if (quoted === undefined) {
    return undefined;
  }
  const value = typeof quoted.value === 'string' ? Buffer.from(quoted.value, 'hex') : Buffer.from(quoted.value);
  if (value.length !== pcrBankSize(quoted.bank) || (typeof quoted.value === 'string' && quoted.value.length !== value.length * 2)) {
    badInput(`quotedPcr10 must be a ${quoted.bank} digest (${pcrBankSize(quoted.bank)} bytes)`);
  }
  return { bank: quoted.bank, value };
}

function buildKeyrings(input: VerifyImaListInput, learned: readonly LearnedKey[]): ImaKeyrings | undefined {
  if (input.keyrings === undefined && input.policy === undefined && learned.length === 0) {
    return undefined;
  }
  const keyrings = new ImaKeyrings();
  keyrings.ring('tenant_keyring');
  if (input.policy?.verificationKeys !== undefined) {
    keyrings.merge('tenant_keyring', input.policy.verificationKeys);
  }
  if (input.keyrings !== undefined) {
    keyrings.merge('tenant_keyring', input.keyrings);
  }
  for (const { key, keyId } of learned) {
    keyrings.learn(key, keyId);
  }
  return keyrings;
}

/** Checks one round of the measurement list; see the interface comment above for the rules. */
export function verifyImaList(input: VerifyImaListInput): VerifyImaListResult {
  return finish(verifyImaListStepwise(input));
}

/** `verifyImaList`, pausing between chunks of lines: the same result, for a caller that judges a huge list a slice at a time. */
export function* verifyImaListStepwise(input: VerifyImaListInput): Stepwise<VerifyImaListResult> {
  if ((input.listText === undefined) === (input.entries === undefined)) {
    badInput('give exactly one of listText and entries');
  }
  let state = input.state === undefined ? initialImaReplayState() : parseImaReplayState(input.state);
  const startEntry = input.startEntry ?? state.nextEntry;
  if (!Number.isSafeInteger(startEntry) || startEntry < 0) {
    badInput('startEntry must be a non-negative integer');
  }
  const failures: ImaFailure[] = [];
  if (startEntry === 0 && state.nextEntry !== 0) {
    state = initialImaReplayState();
  } else if (startEntry !== state.nextEntry) {
    failures.push({
      line: 0,
      path: '',
      eventId: IMA_EVENTS.invalidEntryNumber,
      context: { message: `the list starts at entry ${startEntry}, entry ${state.nextEntry} was asked for` },
    });
  }

  const quoted = quotedValue(input);
  // From entry 0 nothing was replayed yet: every bank starts at zero, whether the state names it or not
  // (the initial state holds sha1 and sha256 only, which is all a replay without a quote needs).
  if (quoted !== undefined && startEntry === 0 && state.nextEntry === 0 && state.pcr10[quoted.bank] === undefined) {
    state = { ...state, pcr10: { ...state.pcr10, [quoted.bank]: '00'.repeat(pcrBankSize(quoted.bank)) } };
  }
  // Only the quoted bank is replayed (Keylime replays the quote's `hash_alg` only); without a quote,
  // the banks the state holds.
  const banks: readonly PcrBank[] = quoted === undefined ? PCR_BANKS.filter((bank) => state.pcr10[bank] !== undefined) : [quoted.bank];
  // Without a quote every bank replayed is one the state holds; with one, the state may lack its bank.
  if (quoted !== undefined && state.pcr10[quoted.bank] === undefined) {
    failures.push({
      line: 0,
      path: '',
      eventId: IMA_EVENTS.pcrMismatch,
      context: { message: `the replay state holds no ${quoted.bank} value of PCR 10 to continue from (the quoted bank changed)`, bank: quoted.bank },
    });
    return { valid: false, failures, nextState: initialImaReplayState(), entriesChecked: 0, matchedEntries: 0, pcr10: {} };
  }
  const policy = input.policy;
  const logHash = imaHashByName(policy?.logHashAlg ?? 'sha1') ?? badInput('unknown log hash algorithm');
  // A fresh context per pass: the validator learns keys into it.
  const learned = loadLearntKeys(state.learnedKeyrings, policy);
  const newContext = (): ValidationContext => ({
    policy,
    keyrings: buildKeyrings(input, learned),
    learnedKeys: [],
    bootAggregates: input.bootAggregates ?? [],
  });
  let ctx = newContext();
  const round = (holdEveryLine: boolean): Stepwise<ReplayRoundOutcome> =>
    replayRound({
      listText: input.listText,
      entries: input.entries ?? [],
      firstLine: startEntry + 1,
      start: state.pcr10,
      banks,
      quoted: quoted === undefined ? undefined : { bank: quoted.bank, latin1: quoted.value.toString('latin1') },
      ctx,
      logHash,
      failOnTomtou: input.failOnTomtou === true,
      holdEveryLine,
    });
  let outcome = yield* round(false);
  // No match: the round fails whatever else is found. Lines not held to their logged hash (the
  // quote would have bound them) are checked again, so that the failures name a line whose data
  // was changed and its hash left as it was, as when every line is held to it.
  if (quoted !== undefined && outcome.matched < 0 && outcome.count > 0 && !loggedHashIsReplayed(logHash, banks)) {
    ctx = newContext();
    outcome = yield* round(true);
  }
  // A loop, not `push(...)`: one failure per line, and a list of some 120,000 lines or more passed as
  // arguments overflowed the stack (a RangeError that failed the round as a verifier exception).
  for (const failure of outcome.failures) failures.push(failure);
  const { matched, count } = outcome;
  if (quoted !== undefined && matched < 0) {
    failures.push({
      line: 0,
      path: '',
      eventId: IMA_EVENTS.pcrMismatch,
      context: {
        message: `IMA measurement list does not match TPM PCR ${quoted.value.toString('hex')}`,
        bank: quoted.bank,
        quoted: quoted.value.toString('hex'),
        replayed: outcome.final[quoted.bank],
      },
    });
  } else if (matched < state.lagEntries) {
    failures.push({
      line: 0,
      path: '',
      eventId: IMA_EVENTS.quoteProgress,
      context: {
        message: 'PCR quote did not make progress to catch up with log',
        previousLag: state.lagEntries,
        matchedEntries: matched,
      },
    });
  }

  const valid = failures.length === 0;
  // The next round starts from the keys of earlier rounds and those of this round's lines up to the
  // quote's match: a line after it is not bound by the quote (it is asked for again, and may then
  // differ), so a key it loaded verifies this round's later lines only.
  const learnedKeyrings = valid ? storeLearntKeys([...learned, ...ctx.learnedKeys.slice(0, outcome.committedKeys)]) : {};
  return {
    valid,
    failures,
    nextState: valid ? { nextEntry: startEntry + matched, pcr10: outcome.committed, learnedKeyrings, lagEntries: count - matched } : initialImaReplayState(),
    entriesChecked: count,
    matchedEntries: Math.max(matched, 0),
    pcr10: outcome.final,
  };
}
