import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { parseImaAsciiList, splitImaAsciiLines } from '../../lib/ima/ascii-list-parser.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { initialImaReplayState, parseImaReplayState } from '../../lib/ima/ima-replay-state.js';
import { verifyImaList, type VerifyImaListInput, type VerifyImaListResult } from '../../lib/ima/verify-ima-list.js';
import { rustKeylimeLog } from './ima-vectors.js';

const lines = splitImaAsciiLines(rustKeylimeLog()).slice(0, 40);
const entries = parseImaAsciiList(`${lines.join('\n')}\n`);

/** PCR 10 after the first `n` lines in `bank`, replayed independently from the parsed template data. */
function pcrAfter(n: number, bank: 'sha1' | 'sha256'): string {
  let pcr = Buffer.alloc(bank === 'sha1' ? 20 : 32);
  for (const entry of entries.slice(0, n)) {
    pcr = createHash(bank).update(pcr).update(createHash(bank).update(entry.templateData).digest()).digest();
  }
  return pcr.toString('hex');
}

/** The list with line `index` (0-based) changed. */
function changed(index: number, change: (line: string) => string): string[] {
  return lines.map((line, i) => (i === index ? change(line) : line));
}

/** Only the logged template hash of a line changed: its template data, and so PCR 10, are genuine. */
const otherLoggedHash = (line: string): string => line.replace(/^10 (.)/, (_m, first: string) => `10 ${first === 'f' ? '0' : 'f'}`);

/** The template data changed (a path), the logged template hash left as it was. */
const otherPath = (line: string): string => line.replace(/ (\S+)$/, ' /tampered$1');

/** The same round through the ASCII text (ima-ng fast path first) and through parsed entries (full validator only). */
function bothRoutes(list: readonly string[], input: Omit<VerifyImaListInput, 'listText' | 'entries'>): VerifyImaListResult[] {
  const text = `${list.join('\n')}\n`;
  return [verifyImaList({ ...input, listText: text }), verifyImaList({ ...input, entries: parseImaAsciiList(text) })];
}

function failuresOf(result: VerifyImaListResult): Array<[number, string]> {
  return result.failures.map((f) => [f.line, f.eventId]);
}

describe('verifyImaList: the lines held to their logged template hash (docs/ima.md: every line the quote does not bind)', () => {
  const sha256Quote = { bank: 'sha256' as const, value: pcrAfter(40, 'sha256') };

  it('the genuine list passes a sha256 quote, replaying only that bank', () => {
    for (const result of bothRoutes(lines, { startEntry: 0, quotedPcr10: sha256Quote })) {
      expect(result.valid).to.equal(true);
      expect(result.pcr10).to.deep.equal({ sha256: sha256Quote.value });
      expect(result.nextState.pcr10).to.deep.equal({ sha256: sha256Quote.value });
    }
  });

  describe('changed template data, the logged hash left as it was: always fails', () => {
    it('under the quote: the line is named by its template hash, and ima.pcr_mismatch', () => {
      for (const result of bothRoutes(changed(12, otherPath), { startEntry: 0, quotedPcr10: sha256Quote })) {
        expect(failuresOf(result)).to.deep.equal([
          [13, IMA_EVENTS.imaHash],
          [0, IMA_EVENTS.pcrMismatch],
        ]);
        expect(result.nextState).to.deep.equal(initialImaReplayState());
      }
    });

    it('past the quote (the log is ahead of the TPM): its template hash fails', () => {
      const quote = { bank: 'sha256' as const, value: pcrAfter(30, 'sha256') };
      for (const result of bothRoutes(changed(35, otherPath), { startEntry: 0, quotedPcr10: quote })) {
        expect(failuresOf(result)).to.deep.equal([[36, IMA_EVENTS.imaHash]]);
        expect(result.nextState).to.deep.equal(initialImaReplayState());
      }
    });
  });

  describe('only the logged SHA-1 template hash changed (the template data, and so PCR 10, genuine)', () => {
    it('under a sha256 quote, which binds the template data: not compared (no SHA-1 per line), the round passes with the genuine PCR 10', () => {
      for (const result of bothRoutes(changed(12, otherLoggedHash), { startEntry: 0, quotedPcr10: sha256Quote })) {
        expect(failuresOf(result)).to.deep.equal([]);
        expect(result.valid).to.equal(true);
        expect(result.matchedEntries).to.equal(40);
        expect(result.nextState.pcr10).to.deep.equal({ sha256: sha256Quote.value });
      }
    });

    it('in one round: before the sha256 quote\'s match it passes, past it the line fails', () => {
      const quote = { bank: 'sha256' as const, value: pcrAfter(30, 'sha256') };
      const list = changed(35, otherLoggedHash).map((line, i) => (i === 12 ? otherLoggedHash(line) : line));
      for (const result of bothRoutes(list, { startEntry: 0, quotedPcr10: quote })) {
        expect(failuresOf(result)).to.deep.equal([[36, IMA_EVENTS.imaHash]]);
      }
    });

    it('a logged hash of another size is compared, and refused, even under the sha256 quote', () => {
      const list = changed(12, (line) => line.replace(/^10 ([0-9a-f]{40})/, '10 $1abcd'));
      for (const result of bothRoutes(list, { startEntry: 0, quotedPcr10: sha256Quote })) {
        expect(failuresOf(result)).to.deep.equal([[13, IMA_EVENTS.imaHash]]);
        expect(result.nextState).to.deep.equal(initialImaReplayState());
      }
    });

    it('under a sha1 quote (the logged hash is the replayed bank\'s, compared at no cost): fails', () => {
      const quote = { bank: 'sha1' as const, value: pcrAfter(40, 'sha1') };
      for (const result of bothRoutes(changed(12, otherLoggedHash), { startEntry: 0, quotedPcr10: quote })) {
        expect(failuresOf(result)).to.deep.equal([[13, IMA_EVENTS.imaHash]]);
      }
    });

    it('past the quote, or with no quote at all (nothing binds the line): fails', () => {
      const quote = { bank: 'sha256' as const, value: pcrAfter(30, 'sha256') };
      for (const input of [{ startEntry: 0, quotedPcr10: quote }, { startEntry: 0 }]) {
        for (const result of bothRoutes(changed(35, otherLoggedHash), input)) {
          expect(failuresOf(result)).to.deep.equal([[36, IMA_EVENTS.imaHash]]);
        }
      }
    });
  });

  it('a logged hash that is not hex is still a parse error under the quote (the line is not extended)', () => {
    const list = changed(12, (line) => line.replace(/^10 ./, '10 g'));
    const result = verifyImaList({ listText: `${list.join('\n')}\n`, startEntry: 0, quotedPcr10: sha256Quote });
    expect(failuresOf(result)).to.deep.equal([
      [13, IMA_EVENTS.parserEntry],
      [0, IMA_EVENTS.pcrMismatch],
    ]);
  });

  it('a genuine line rewritten as a violation (all-zero logged hash) is extended with all-ones and breaks the quote', () => {
    for (const result of bothRoutes(changed(12, (line) => line.replace(/^10 [0-9a-f]{40}/, `10 ${'0'.repeat(40)}`)), { startEntry: 0, quotedPcr10: sha256Quote })) {
      expect(failuresOf(result)).to.deep.equal([[0, IMA_EVENTS.pcrMismatch]]);
    }
  });

  describe('the replay state holds the quoted bank only', () => {
    it('a later round quoted in another bank fails and resets; replayed from entry 0 it passes', () => {
      const first = verifyImaList({ listText: `${lines.slice(0, 20).join('\n')}\n`, startEntry: 0, quotedPcr10: { bank: 'sha1', value: pcrAfter(20, 'sha1') } });
      expect(first.nextState.pcr10).to.deep.equal({ sha1: pcrAfter(20, 'sha1') });
      const stored = parseImaReplayState(JSON.parse(JSON.stringify(first.nextState)));
      const switched = verifyImaList({ listText: `${lines.slice(20).join('\n')}\n`, state: stored, quotedPcr10: sha256Quote });
      expect(failuresOf(switched)).to.deep.equal([[0, IMA_EVENTS.pcrMismatch]]);
      expect(switched.failures[0]?.context.message).to.match(/holds no sha256 value of PCR 10/);
      expect(switched.nextState).to.deep.equal(initialImaReplayState());
      expect(verifyImaList({ listText: `${lines.join('\n')}\n`, startEntry: 0, state: switched.nextState, quotedPcr10: sha256Quote }).valid).to.equal(true);
    });

    it('a stored state needs at least one bank', () => {
      expect(parseImaReplayState({ nextEntry: 3, pcr10: { sha256: 'ab'.repeat(32) } }).pcr10).to.deep.equal({ sha256: 'ab'.repeat(32) });
      expect(() => parseImaReplayState({ nextEntry: 3, pcr10: {} })).to.throw(/pcr10 must hold at least one of sha1, sha256, sha384, sha512/);
      expect(() => parseImaReplayState({ nextEntry: 3, pcr10: { sha256: 'AB'.repeat(32) } })).to.throw(/pcr10\.sha256 must be 64 lowercase hex digits/);
    });
  });
});
