import { createHash } from 'node:crypto';
import { ImaParseError } from '../../lib/bytes/parse-errors.js';
import { parseImaAsciiLine } from '../../lib/ima/ascii-list-parser.js';
import type { CompiledRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import type { PcrBank } from '../../lib/ima/hash-algorithms.js';
import { IMA_EVENTS, type ImaFailure } from '../../lib/ima/ima-failure.js';
import { initialImaReplayState, type Pcr10Values } from '../../lib/ima/ima-replay-state.js';
import type { UntrustedImaEntry } from '../../lib/ima/internal/ima-entry.js';
import { verifyImaList, type VerifyImaListResult } from '../../lib/ima/verify-ima-list.js';

/**
 * The expected outcome of an ASCII round, computed without the ima-ng fast path: each line through
 * the full parser, each parsed entry's failures from the full validator (the entry alone, as parsed
 * entries), and PCR 10 replayed here with node:crypto over the parsed template data.
 */

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** The ima-ng template data for a sha256 file digest and a path (Linux ima_template_lib.c: `d-ng`, `n-ng`). */
export function imaNgData(digest: Buffer, path: string): Buffer {
  const name = Buffer.from(path, 'utf8');
  return Buffer.concat([u32(40), Buffer.from('sha256:\0', 'latin1'), digest, u32(name.length + 1), name, Buffer.alloc(1)]);
}

/** An ima-ng line (sha1 template hash) for a sha256 file digest and a path, built here. */
export function imaNgLineOf(digest: Buffer, path: string): string {
  return `10 ${createHash('sha1').update(imaNgData(digest, path)).digest('hex')} ima-ng sha256:${digest.toString('hex')} ${path}`;
}

/** The line with the first digit of its template hash changed: ASCII, parses, fails `ima_hash`. */
export function tamperedTemplateHash(line: string): string {
  return `10 ${line[3] === 'f' ? 'e' : 'f'}${line.slice(4)}`;
}

/** PCR 10 in `bank` after extending zeros with each template data's hash (a violation as all-ones). */
export function replayPcr10(bank: PcrBank, entries: readonly UntrustedImaEntry[]): string[] {
  const size = createHash(bank).digest().length;
  let pcr = Buffer.alloc(size);
  const values = [pcr.toString('hex')];
  for (const entry of entries) {
    const violation = entry.templateHash.every((byte) => byte === 0);
    const measured = violation ? Buffer.alloc(size, 0xff) : createHash(bank).update(entry.templateData).digest();
    pcr = createHash(bank).update(pcr).update(measured).digest();
    values.push(pcr.toString('hex'));
  }
  return values;
}

function parse(line: string, at: number): UntrustedImaEntry | ImaParseError {
  try {
    return parseImaAsciiLine(line, at);
  } catch (error) {
    if (error instanceof ImaParseError) {
      return error;
    }
    throw error;
  }
}

/**
 * The entry as validated when its logged template hash is not compared (a line a sha256 quote
 * binds, under a sha1 log): a SHA-1 logged hash that is not all zeros (a violation) replaced by
 * the template data's own; any other logged hash left as it is (a wrong size is always compared).
 */
function withLoggedHashNotCompared(entry: UntrustedImaEntry): UntrustedImaEntry {
  const logged = entry.templateHash;
  if (logged.length !== 20 || logged.every((byte) => byte === 0)) {
    return entry;
  }
  return { ...entry, templateHash: createHash('sha1').update(entry.templateData).digest() };
}

/**
 * The lines that parse, and the failures of every line (line order); the lines up to
 * `boundLines` (1-based, those a sha256 quote binds) with their logged hash not compared.
 */
export function expectedFailures(lines: readonly string[], policy: CompiledRuntimePolicy | undefined, boundLines = 0): { entries: UntrustedImaEntry[]; failures: ImaFailure[] } {
  const entries: UntrustedImaEntry[] = [];
  const failures: ImaFailure[] = [];
  lines.forEach((line, i) => {
    const parsed = parse(line, i + 1);
    if (parsed instanceof ImaParseError) {
      failures.push({ line: i + 1, path: '', eventId: IMA_EVENTS.parserEntry, context: { message: parsed.message } });
      return;
    }
    entries.push(parsed);
    const validated = i < boundLines ? withLoggedHashNotCompared(parsed) : parsed;
    for (const failure of verifyImaList({ entries: [validated], policy }).failures) {
      failures.push({ ...failure, line: i + 1 });
    }
  });
  return { entries, failures };
}

/** The quote that binds every line that parses: PCR 10 (sha256) after them. */
export function quoteOf(lines: readonly string[]): string {
  const values = replayPcr10('sha256', expectedFailures(lines, undefined).entries);
  return values[values.length - 1] as string;
}

/**
 * The whole result of `verifyImaList` over the text of `lines` from the initial state, with
 * `policy` (sha1 log), and either no quote (both banks replayed, every line committed, every line
 * held to its logged hash) or a sha256 quote (the lines up to its match not held to their logged
 * hash; every line when it does not match).
 */
export function expectedRound(lines: readonly string[], policy: CompiledRuntimePolicy | undefined, quote: string | undefined): VerifyImaListResult {
  const { entries } = expectedFailures(lines, policy);
  const lineOfEntry: number[] = [];
  lines.forEach((line, i) => {
    if (!(parse(line, i + 1) instanceof ImaParseError)) {
      lineOfEntry.push(i + 1);
    }
  });
  const count = lines.length;
  const sha256 = replayPcr10('sha256', entries);
  if (quote === undefined) {
    const { failures } = expectedFailures(lines, policy);
    const sha1 = replayPcr10('sha1', entries);
    const pcr10: Pcr10Values = { sha1: sha1[sha1.length - 1] as string, sha256: sha256[sha256.length - 1] as string };
    const valid = failures.length === 0;
    const nextState = valid ? { nextEntry: count, pcr10, learnedKeyrings: {}, lagEntries: 0 } : initialImaReplayState();
    return { valid, failures, nextState, entriesChecked: count, matchedEntries: count, pcr10 };
  }
  // The replay is compared before the first line and after every line, parsed or not.
  const matchAt = sha256.indexOf(quote);
  const matched = matchAt <= 0 ? matchAt : (lineOfEntry[matchAt - 1] as number);
  const final = sha256[sha256.length - 1] as string;
  const all = [...expectedFailures(lines, policy, Math.max(matched, 0)).failures];
  if (matched < 0) {
    all.push({
      line: 0,
      path: '',
      eventId: IMA_EVENTS.pcrMismatch,
      context: { message: `IMA measurement list does not match TPM PCR ${quote}`, bank: 'sha256', quoted: quote, replayed: final },
    });
  }
  const valid = all.length === 0;
  const nextState = valid ? { nextEntry: matched, pcr10: { sha256: quote }, learnedKeyrings: {}, lagEntries: count - matched } : initialImaReplayState();
  return { valid, failures: all, nextState, entriesChecked: count, matchedEntries: Math.max(matched, 0), pcr10: { sha256: final } };
}
