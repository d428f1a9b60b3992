import { hash } from 'node:crypto';
import { IronlimeError } from '../../../interfaces/errors.js';
import { ImaParseError } from '../../bytes/parse-errors.js';
import { bytesEqual } from '../../bytes/bytes-equal.js';
import { parseImaAsciiLine } from '../ascii-list-parser.js';
import type { ImaHashAlgorithm, PcrBank } from '../hash-algorithms.js';
import { IMA_EVENTS, type ImaFailure } from '../ima-failure.js';
import type { Pcr10Values } from '../ima-replay-state.js';
import { validateEntryContent, type ValidationContext } from './entry-validator.js';
import type { UntrustedImaEntry } from './ima-entry.js';
import { ImaNgFastPath } from './ima-ng-fast-path.js';
import { Pcr10Replay } from './pcr10-replay.js';

export interface ReplayRoundInput {
  /** The ASCII list, or the parsed entries of a binary one (exactly one of the two). */
  readonly listText: string | undefined;
  readonly entries: readonly UntrustedImaEntry[];
  /** 1-based line number of the first line, in the whole list. */
  readonly firstLine: number;
  /** PCR 10 before the first line, in every bank of `banks`. */
  readonly start: Pcr10Values;
  readonly banks: readonly PcrBank[];
  /** The quoted PCR 10 (value as latin1); without it no line is bound by a quote. */
  readonly quoted: { readonly bank: PcrBank; readonly latin1: string } | undefined;
  /** Hold every line to its logged template hash, even those the quote binds. */
  readonly holdAll: boolean;
  readonly ctx: ValidationContext;
  readonly logHash: ImaHashAlgorithm;
  readonly failOnTomtou: boolean;
}

export interface ReplayRoundOutcome {
  /** The failures of the lines, in line order. */
  readonly failures: readonly ImaFailure[];
  readonly count: number;
  /** Lines up to the first point where the replay equals the quote (0: before the first line); -1 for none. */
  readonly matched: number;
  /** PCR 10 at that point (after every line when there is no quote). */
  readonly committed: Pcr10Values;
  /** PCR 10 after every line. */
  readonly final: Pcr10Values;
}

interface Source {
  readonly count: number;
  /**
   * Checks every line in order and extends `replay`, holding the first line to its logged template
   * hash when `holdFirst`; `after(index)` runs after each line and says whether the next lines are.
   */
  forEach(replay: Pcr10Replay, holdFirst: boolean, after: (index: number) => boolean): void;
}

type CheckOne = (entry: UntrustedImaEntry | ImaParseError, line: number, replay: Pcr10Replay, holdToLoggedHash: boolean) => void;

/**
 * One walk over the lines of a round: each line checked and extended into PCR 10 in `banks`, and
 * the replay compared with the quote before the first line and after every line.
 *
 * Which lines are held to their logged template hash: a logged template hash is the log's hash
 * (`ima.log_hash_alg`) of the template data, unkeyed — whoever changes an entry can write the
 * matching hash beside it — and the replay recomputes the quoted bank's hash of the template data
 * of every line itself. So the lines up to the quote's match are bound to the TPM by the replay, and
 * their logged hash adds nothing; it is compared only where it costs no extra hash (the log's
 * algorithm is the quoted bank). Lines the quote does not bind — after the match, or every line
 * without a quote or with `holdAll` — are held to it, as Keylime holds every line
 * (`ast.Entry.invalid`: `ima_hash`). A logged all-zero hash (a violation) is honoured in any case,
 * and is bound too: it makes the replay extend all-ones instead of the template data's hash.
 */
export function replayRound(input: ReplayRoundInput): ReplayRoundOutcome {
  const failures: ImaFailure[] = [];
  const checkOne: CheckOne = (entry, line, replay, holdToLoggedHash) => {
    if (entry instanceof ImaParseError) {
      failures.push({ line, path: '', eventId: IMA_EVENTS.parserEntry, context: { message: entry.message } });
      return;
    }
    checkEntry(entry, line, replay, failures, input, holdToLoggedHash);
  };
  const source: Source =
    input.listText !== undefined
      ? asciiSource(input.listText, input.firstLine, new ImaNgFastPath(input.logHash, input.ctx.policy, input.ctx.bootAggregates.length > 0), checkOne)
      : entriesSource(input.entries, input.firstLine, checkOne);

  const replay = new Pcr10Replay(input.start, input.banks);
  const quoted = input.quoted;
  let matched = quoted !== undefined && replay.matches(quoted.bank, quoted.latin1) ? 0 : -1;
  let committed = replay.snapshot();
  const held = (): boolean => input.holdAll || matched >= 0;
  source.forEach(replay, held(), (index) => {
    if (quoted !== undefined && matched < 0 && replay.matches(quoted.bank, quoted.latin1)) {
      matched = index + 1;
      committed = replay.snapshot();
    }
    return held();
  });
  const final = replay.snapshot();
  return quoted === undefined
    ? { failures, count: source.count, matched: source.count, committed: final, final }
    : { failures, count: source.count, matched, committed, final };
}

/**
 * An ASCII list, walked line by line in place: each line goes through the ima-ng fast path first,
 * and through the full parser and validator only when the fast path does not accept it. A final
 * newline ends the last line; any other empty line is a line (which the parser refuses).
 */
function asciiSource(text: string, startLine: number, fast: ImaNgFastPath, checkOne: CheckOne): Source {
  let count = 0;
  for (let at = 0; at < text.length; count++) {
    const newline = text.indexOf('\n', at);
    at = newline < 0 ? text.length : newline + 1;
  }
  return {
    count,
    forEach(replay, holdFirst, after) {
      let hold = holdFirst;
      for (let index = 0, start = 0; index < count; index++) {
        const newline = text.indexOf('\n', start);
        const end = newline < 0 ? text.length : newline;
        if (!fast.accept(text, start, end, replay, hold)) {
          const line = startLine + index;
          checkOne(parseLine(text.slice(start, end), line), line, replay, hold);
        }
        hold = after(index);
        start = end + 1;
      }
    },
  };
}

function entriesSource(entries: readonly UntrustedImaEntry[], startLine: number, checkOne: CheckOne): Source {
  return {
    count: entries.length,
    forEach(replay, holdFirst, after) {
      let hold = holdFirst;
      for (let index = 0; index < entries.length; index++) {
        const entry = entries[index];
        if (entry === undefined) {
          throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', 'verifyImaList: missing entry');
        }
        checkOne(entry, startLine + index, replay, hold);
        hold = after(index);
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

function isAllZero(bytes: Buffer): boolean {
  for (const byte of bytes) {
    if (byte !== 0) {
      return false;
    }
  }
  return true;
}

/**
 * PCR index, template hash and content of one parsed entry; extends the replay. The logged template
 * hash is compared under the fast path's rule (ima-ng-fast-path.ts `accept`): when the line is held
 * to it or the log's algorithm is a replayed bank — and always when its size is not the log
 * algorithm's (no hash of the template data can match it).
 */
function checkEntry(
  entry: UntrustedImaEntry,
  line: number,
  replay: Pcr10Replay,
  failures: ImaFailure[],
  input: ReplayRoundInput,
  holdToLoggedHash: boolean,
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
  const logHash = input.logHash;
  if (logged.length === logHash.digestSize && isAllZero(logged)) {
    replay.extendViolation();
    if (input.failOnTomtou) {
      failures.push({ ...where, eventId: IMA_EVENTS.tomtou, context: { message: 'hash validation was skipped' } });
    }
    return;
  }
  replay.extendTemplateData(data);
  if (holdToLoggedHash || replay.replays(logHash.name) || logged.length !== logHash.digestSize) {
    const computed = hash(logHash.nodeName, data, 'buffer');
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
  }
  const outcome = validateEntryContent(input.ctx, entry);
  if (outcome !== undefined) {
    failures.push({ line, ...outcome });
  }
}
