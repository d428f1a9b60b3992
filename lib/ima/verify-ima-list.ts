import { hash } from 'node:crypto';
import { IronlimeError } from '../../interfaces/errors.js';
import { ImaParseError } from '../bytes/parse-errors.js';
import { parseImaAsciiLine } from './ascii-list-parser.js';
import type { CompiledRuntimePolicy } from './compiled-policy.js';
import { validateEntryContent, type ValidationContext } from './internal/entry-validator.js';
import { imaHashByName, pcrBankSize, type ImaHashAlgorithm, type PcrBank } from './hash-algorithms.js';
import type { UntrustedImaEntry } from './internal/ima-entry.js';
import { IMA_EVENTS, type ImaFailure } from './ima-failure.js';
import { ImaKeyring, ImaKeyrings } from './ima-keyring.js';
import { ImaNgFastPath } from './internal/ima-ng-fast-path.js';
import { initialImaReplayState, parseImaReplayState, type ImaReplayState } from './ima-replay-state.js';
import { Pcr10Replay } from './internal/pcr10-replay.js';
import { bytesEqual } from '../bytes/bytes-equal.js';

/**
 * Checks (part of) an IMA measurement list against a quoted PCR 10 and a runtime policy, and says
 * where the next round starts — Keylime's `ima.process_measurement_list`, incremental.
 *
 * For each entry, in order: the template hash is recomputed over the template data with the
 * policy's `log_hash_alg` (sha1 by default) and compared; an entry whose logged hash is all zeros is
 * a violation (extended as all-ones, content not checked); the PCR index must be 10; the content
 * rules of internal/entry-validator.ts apply; both banks of PCR 10 are extended. A line that does not parse
 * is reported and not extended (Keylime does the same, so the PCR will not match either).
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
  /** PCR 10 after every line of this round, both banks, lowercase hex. */
  readonly pcr10: { readonly sha1: string; readonly sha256: string };
}

interface Source {
  readonly count: number;
  /** Checks every line in order and extends `replay`, calling `after` with the line's index after each. */
  forEach(replay: Pcr10Replay, after: (index: number) => void): void;
}

/**
 * An ASCII list, walked line by line in place: each line goes through the ima-ng fast path first,
 * and through the full parser and validator only when the fast path does not accept it. A final
 * newline ends the last line; any other empty line is a line (which the parser refuses).
 */
function asciiSource(text: string, startLine: number, fast: ImaNgFastPath, checkOne: (entry: UntrustedImaEntry | ImaParseError, line: number, replay: Pcr10Replay) => void): Source {
  let count = 0;
  for (let at = 0; at < text.length; count++) {
    const newline = text.indexOf('\n', at);
    at = newline < 0 ? text.length : newline + 1;
  }
  return {
    count,
    forEach(replay, after) {
      for (let index = 0, start = 0; index < count; index++) {
        const newline = text.indexOf('\n', start);
        const end = newline < 0 ? text.length : newline;
        if (!fast.accept(text, start, end, replay)) {
          const line = startLine + index;
          checkOne(parseLine(text.slice(start, end), line), line, replay);
        }
        after(index);
        start = end + 1;
      }
    },
  };
}

function parseLine(text: string, line: number): UntrustedImaEntry | ImaParseError {
  try {
    return parseImaAsciiLine(text, line);
  } catch (error) {
    if (error instanceof ImaParseError) {
      return error;
    }
    throw error;
  }
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

function buildKeyrings(input: VerifyImaListInput, state: ImaReplayState): ImaKeyrings | undefined {
  const learned = Object.entries(state.learnedKeyrings);
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
  for (const [name, json] of learned) {
    keyrings.merge(name, ImaKeyring.fromJson(json, `state.learnedKeyrings[${JSON.stringify(name)}]`));
  }
  return keyrings;
}

function isAllZero(bytes: Buffer): boolean {
  for (const byte of bytes) {
    if (byte !== 0) {
      return false;
    }
  }
  return true;
}

/** Checks one round of the measurement list; see the interface comment above for the rules. */
export function verifyImaList(input: VerifyImaListInput): VerifyImaListResult {
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
  const policy = input.policy;
  const logHash = imaHashByName(policy?.logHashAlg ?? 'sha1') ?? badInput('unknown log hash algorithm');
  const ctx: ValidationContext = {
    policy,
    keyrings: buildKeyrings(input, state),
    learnedNames: new Set(Object.keys(state.learnedKeyrings)),
    bootAggregates: input.bootAggregates ?? [],
  };
  const failOnTomtou = input.failOnTomtou === true;
  const checkOne = (entry: UntrustedImaEntry | ImaParseError, line: number, replay: Pcr10Replay): void => {
    if (entry instanceof ImaParseError) {
      failures.push({ line, path: '', eventId: IMA_EVENTS.parserEntry, context: { message: entry.message } });
      return;
    }
    checkEntry(entry, line, replay, failures, ctx, logHash, failOnTomtou);
  };
  const firstLine = startEntry + 1;
  const entries = input.entries ?? [];
  const source: Source =
    input.listText !== undefined
      ? asciiSource(input.listText, firstLine, new ImaNgFastPath(logHash, policy, ctx.bootAggregates.length > 0), checkOne)
      : {
          count: entries.length,
          forEach(replay, after) {
            for (let index = 0; index < entries.length; index++) {
              checkOne(entries[index] ?? badInput('missing entry'), firstLine + index, replay);
              after(index);
            }
          },
        };

  const replay = new Pcr10Replay(state.pcr10);
  const quotedLatin1 = quoted?.value.toString('latin1') ?? '';
  let matched = quoted === undefined ? -1 : replay.matches(quoted.bank, quotedLatin1) ? 0 : -1;
  let committed = replay.snapshot();
  source.forEach(replay, (index) => {
    if (quoted !== undefined && matched < 0 && replay.matches(quoted.bank, quotedLatin1)) {
      matched = index + 1;
      committed = replay.snapshot();
    }
  });

  const final = replay.snapshot();
  if (quoted === undefined) {
    matched = source.count;
    committed = final;
  } else if (matched < 0) {
    failures.push({
      line: 0,
      path: '',
      eventId: IMA_EVENTS.pcrMismatch,
      context: {
        message: `IMA measurement list does not match TPM PCR ${quoted.value.toString('hex')}`,
        bank: quoted.bank,
        quoted: quoted.value.toString('hex'),
        replayed: final[quoted.bank],
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
  const learnedKeyrings = ctx.keyrings === undefined ? {} : ctx.keyrings.toJson(ctx.learnedNames);
  return {
    valid,
    failures,
    nextState: valid
      ? { nextEntry: startEntry + matched, pcr10: committed, learnedKeyrings, lagEntries: source.count - matched }
      : initialImaReplayState(),
    entriesChecked: source.count,
    matchedEntries: Math.max(matched, 0),
    pcr10: final,
  };
}

/** Template hash, PCR index and content of one parsed entry; extends the replay. */
function checkEntry(
  entry: UntrustedImaEntry,
  line: number,
  replay: Pcr10Replay,
  failures: ImaFailure[],
  ctx: ValidationContext,
  logHash: ImaHashAlgorithm,
  failOnTomtou: boolean,
): void {
  const data = entry.templateData;
  const where = { line, path: entry.path };
  if (entry.pcr !== 10) {
    failures.push({
      ...where,
      eventId: IMA_EVENTS.imaPcr,
      context: { message: 'IMA PCR is not the configured one', expected: '10', got: String(entry.pcr) },
    });
  }
  const logged = entry.templateHash;
  if (logged.length === logHash.digestSize && isAllZero(logged)) {
    replay.extendViolation();
    if (failOnTomtou) {
      failures.push({ ...where, eventId: IMA_EVENTS.tomtou, context: { message: 'hash validation was skipped' } });
    }
    return;
  }
  const sha1 = hash('sha1', data, 'buffer');
  const sha256 = hash('sha256', data, 'buffer');
  replay.extend(sha1, sha256);
  const computed = logHash.name === 'sha1' ? sha1 : logHash.name === 'sha256' ? sha256 : hash(logHash.nodeName, data, 'buffer');
  if (!bytesEqual(logged, computed)) {
    failures.push({
      ...where,
      eventId: IMA_EVENTS.imaHash,
      context: {
        message: 'IMA template hash does not match the calculated hash.',
        expected: logged.toString('hex'),
        got: computed.toString('hex'),
      },
    });
    return;
  }
  const outcome = validateEntryContent(ctx, entry);
  if (outcome !== undefined) {
    failures.push({ line, ...outcome });
  }
}
