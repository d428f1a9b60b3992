import { IronlimeError } from '../../../interfaces/errors.js';
import { ImaParseError } from '../../bytes/parse-errors.js';
import { parseImaAsciiLine } from '../ascii-list-parser.js';
import type { ImaHashAlgorithm, PcrBank } from '../hash-algorithms.js';
import { IMA_EVENTS, type ImaFailure } from '../ima-failure.js';
import type { Pcr10Values } from '../ima-replay-state.js';
import { validateEntryContent, type ValidationContext } from './entry-validator.js';
import type { UntrustedImaEntry } from './ima-entry.js';
import { ImaNgFastPath } from './ima-ng-fast-path.js';
import { Pcr10Replay } from './pcr10-replay.js';
import { TemplateDigests } from './template-digests.js';
import type { Stepwise } from '../stepwise.js';

export interface ReplayRoundInput {
  /** The ASCII list, or the parsed entries of a binary one (exactly one of the two). */
  readonly listText: string | undefined;
  readonly entries: readonly UntrustedImaEntry[];
  /** 1-based line number of the first line, in the whole list. */
  readonly firstLine: number;
  /** PCR 10 before the first line, in every bank of `banks`. */
  readonly start: Pcr10Values;
  readonly banks: readonly PcrBank[];
  /** The quoted PCR 10 (value as latin1); without it every line is committed. */
  readonly quoted: { readonly bank: PcrBank; readonly latin1: string } | undefined;
  readonly ctx: ValidationContext;
  readonly logHash: ImaHashAlgorithm;
  readonly failOnTomtou: boolean;
  /**
   * Hold every line to its logged template hash, even those the quote binds (which costs a hash
   * per line when the log's algorithm is not the quoted bank's): for the second pass of a round
   * that did not match the quote, which then names the lines whose data disagrees with their hash.
   */
  readonly holdEveryLine: boolean;
}

export interface ReplayRoundOutcome {
  /** The failures of the lines, in line order. */
  readonly failures: readonly ImaFailure[];
  readonly count: number;
  /** Lines up to the first point where the replay equals the quote (0: before the first line); -1 for none. */
  readonly matched: number;
  /** PCR 10 at that point (after every line when there is no quote). */
  readonly committed: Pcr10Values;
  /** How many of `ctx.learnedKeys` come from lines up to that point: the keys the quote vouches for. */
  readonly committedKeys: number;
  /** PCR 10 after every line. */
  readonly final: Pcr10Values;
}

/** Whether the next line is to be held to its logged template hash (set by the round as the replay goes). */
interface LoggedHashRule {
  holdToLogged: boolean;
}

interface Source {
  /**
   * Checks every line in order and extends `replay`; `after(index)` runs after each line. Returns the
   * number of lines; pauses between chunks of lines (`Stepwise`).
   */
  forEach(replay: Pcr10Replay, rule: LoggedHashRule, after: (index: number) => void): Stepwise<number>;
}

const NEWLINE = 0x0a;
/** Chars of the list encoded to UTF-8 at a time (at most 3 bytes each): a buffer that stays in cache. */
const CHUNK_CHARS = 16_384;
const UTF8_MAX = 3;
/** Entries of a parsed (binary) list checked between two pauses: about as many as in a chunk of an ASCII one. */
const ENTRIES_PER_STEP = 128;

type CheckOne = (entry: UntrustedImaEntry | ImaParseError, line: number, replay: Pcr10Replay, holdToLogged: boolean) => void;

/**
 * One walk over the lines of a round: each line checked and extended into PCR 10 in `banks`, and
 * the replay compared with the quote before the first line and after every line.
 *
 * A line the quote does not bind — past the first match, or every line without a quote — is held to
 * its logged template hash (the log's hash, `ima.log_hash_alg`, of the template data), as Keylime
 * holds every line (`ast.Entry.invalid`: `ima_hash`). A line before the match is held to it only
 * when that costs no hash of its own (the log's algorithm is the quoted bank's, or `holdEveryLine`):
 * the quote binds its template data, which is what the replay extends and the content rules read
 * (docs/ima.md, "Which lines are held to their logged template hash"). A logged all-zero hash is a
 * violation, either way: extended as all-ones, content not checked. The walk pauses between chunks
 * of lines (`Stepwise`), so a caller can judge a huge list a slice at a time.
 */
export function* replayRound(input: ReplayRoundInput): Stepwise<ReplayRoundOutcome> {
  const failures: ImaFailure[] = [];
  // Built for the first line that needs them: most pull rounds bring no new line.
  let digests: TemplateDigests | undefined;
  const checkOne: CheckOne = (entry, line, replay, holdToLogged) => {
    if (entry instanceof ImaParseError) {
      failures.push({ line, path: '', eventId: IMA_EVENTS.parserEntry, context: { message: entry.message } });
      return;
    }
    checkEntry(entry, line, replay, (digests ??= new TemplateDigests(input.logHash, input.banks, false)), holdToLogged, failures, input);
  };
  const source: Source =
    input.listText !== undefined
      ? asciiSource(input.listText, input.firstLine, () => new ImaNgFastPath(input.logHash, input.banks, input.ctx.policy, input.ctx.bootAggregates.length > 0), checkOne)
      : entriesSource(input.entries, input.firstLine, checkOne);

  const replay = new Pcr10Replay(input.start, input.banks);
  const quoted = input.quoted;
  let matched = quoted !== undefined && replay.matches(quoted.bank, quoted.latin1) ? 0 : -1;
  let committed = replay.snapshot();
  let committedKeys = input.ctx.learnedKeys.length;
  // Until the quote matches, the lines seen are those it will bind if it does match.
  const rule: LoggedHashRule = { holdToLogged: input.holdEveryLine || quoted === undefined || matched >= 0 };
  const count = yield* source.forEach(replay, rule, (index) => {
    if (quoted !== undefined && matched < 0 && replay.matches(quoted.bank, quoted.latin1)) {
      matched = index + 1;
      committed = replay.snapshot();
      committedKeys = input.ctx.learnedKeys.length;
      rule.holdToLogged = true;
    }
  });
  // No line, no change: the values are those before the first line.
  const final = count === 0 ? committed : replay.snapshot();
  return quoted === undefined
    ? { failures, count, matched: count, committed: final, committedKeys: input.ctx.learnedKeys.length, final }
    : { failures, count, matched, committed, committedKeys, final };
}

/**
 * An ASCII list, walked line by line: each line goes through the ima-ng fast path first, on the
 * list's UTF-8 bytes, and through the full parser and validator, on the line's text, only when the
 * fast path does not accept it. The text is encoded a chunk of whole lines at a time into one
 * reused buffer: encoding a whole 50,000-line list at once cost as much again in page faults as the
 * copy itself. Each chunk is walked with a char offset in the text and a byte offset in the bytes:
 * a newline is the byte 0x0a and no other character's UTF-8 holds it, and a line the fast path
 * accepts is ASCII, as long in bytes as in chars. A final newline ends the last line; any other
 * empty line is a line (which the parser refuses). An empty list builds no fast path (its buffers
 * and hashes' holders cost most of a pull round's IMA check, which usually brings no new line).
 */
function asciiSource(text: string, startLine: number, fastPath: () => ImaNgFastPath, checkOne: CheckOne): Source {
  return {
    *forEach(replay, rule, after) {
      if (text.length === 0) {
        return 0;
      }
      const fast = fastPath();
      let index = 0;
      for (let chunkStart = 0; chunkStart < text.length; ) {
        const chunkEnd = endOfChunk(text, chunkStart);
        const buffer = chunkBuffer(UTF8_MAX * (chunkEnd - chunkStart));
        const bytes = buffer.subarray(0, buffer.write(text.slice(chunkStart, chunkEnd), 'utf8'));
        for (let start = chunkStart, byteStart = 0; start < chunkEnd; index++) {
          let byteEnd = fast.accept(bytes, byteStart, replay, rule.holdToLogged);
          let end: number;
          if (byteEnd >= 0) {
            end = start + (byteEnd - byteStart);
          } else {
            byteEnd = lineEnd(bytes.indexOf(NEWLINE, byteStart), bytes.length);
            end = lineEnd(text.indexOf('\n', start), text.length);
            const line = startLine + index;
            checkOne(parseLine(text.slice(start, end), line), line, replay, rule.holdToLogged);
          }
          after(index);
          start = end + 1;
          byteStart = byteEnd + 1;
        }
        chunkStart = chunkEnd;
        // Between chunks only: the chunk's bytes live in the shared scratch buffer until it is walked.
        yield;
      }
      return index;
    },
  };
}

/**
 * The chunks' buffer, kept from round to round (one per thread: a chunk is walked synchronously, a
 * round pausing only between chunks, so no two use it at once): a buffer allocated per round cost an
 * incremental round of 100 lines about a fifth more (`npm run bench -- ima`: 2.4–2.6 against 1.9 µs/entry before the chunks, 1.5 with this).
 * Only scratch: every chunk is written before it is read. A chunk longer than a usual one (a single
 * huge line) gets a buffer of its own, so a hostile list cannot leave a large one behind.
 */
const KEPT_CHUNK_BYTES = UTF8_MAX * CHUNK_CHARS;
const chunkScratch = Buffer.allocUnsafe(KEPT_CHUNK_BYTES);

function chunkBuffer(size: number): Buffer {
  return size <= KEPT_CHUNK_BYTES ? chunkScratch : Buffer.allocUnsafe(size);
}

/** Where the chunk of `text` from `start` ends: just after the last newline within CHUNK_CHARS, or after its first line if that is longer, or at the end of `text`. */
function endOfChunk(text: string, start: number): number {
  if (text.length - start <= CHUNK_CHARS) {
    return text.length;
  }
  const last = text.lastIndexOf('\n', start + CHUNK_CHARS - 1);
  if (last >= start) {
    return last + 1;
  }
  return lineEnd(text.indexOf('\n', start + CHUNK_CHARS), text.length - 1) + 1;
}

/** Where a line ends: at its newline, or at the end of the list. */
function lineEnd(newline: number, length: number): number {
  return newline < 0 ? length : newline;
}

function entriesSource(entries: readonly UntrustedImaEntry[], startLine: number, checkOne: CheckOne): Source {
  return {
    *forEach(replay, rule, after) {
      for (let index = 0; index < entries.length; index++) {
        const entry = entries[index];
        if (entry === undefined) {
          throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', 'verifyImaList: missing entry');
        }
        checkOne(entry, startLine + index, replay, rule.holdToLogged);
        after(index);
        if ((index + 1) % ENTRIES_PER_STEP === 0) yield;
      }
      return entries.length;
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
 * PCR index, template hash and content of one parsed entry; extends the replay. The template data's
 * hashes are those of TemplateDigests, as on the fast path: the log's one, when computed, compared
 * with the logged one, the replayed banks' extended. A logged hash of the wrong size is always
 * compared (and so refused): no cost to the usual line, and no odd field let through.
 */
function checkEntry(entry: UntrustedImaEntry, line: number, replay: Pcr10Replay, digests: TemplateDigests, holdToLogged: boolean, failures: ImaFailure[], input: ReplayRoundInput): void {
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
  digests.compute(data, holdToLogged || logged.length !== logHash.digestSize);
  replay.extend(digests);
  const computed = digests.logged;
  if (computed !== '' && logged.toString('latin1') !== computed) {
    failures.push({
      ...where,
      eventId: IMA_EVENTS.imaHash,
      context: {
        message: 'IMA template hash does not match the calculated hash.',
        expected: logged.toString('hex'),
        got: Buffer.from(computed, 'latin1').toString('hex'),
      },
    });
    return;
  }
  const outcome = validateEntryContent(input.ctx, entry);
  if (outcome !== undefined) {
    failures.push({ line, ...outcome });
  }
}
