import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { parseQuoteString } from '../../lib/tpm/quote-string.js';

/** The rule the quote string's parts are held to: standard padded base64, as Python's `b64encode` writes it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** What a part decodes to by the rule alone: its bytes when non-empty and BASE64 matches, else nothing. */
function byRule(part: string): Buffer | undefined {
  return part.length > 0 && BASE64.test(part) ? Buffer.from(part, 'base64') : undefined;
}

/**
 * Characters a hostile agent could put in a part: the alphabet, the padding, what Node's decoder skips
 * (whitespace, NUL, `*`, Latin-1 letters), the URL alphabet it reads, and characters past U+00FF that it
 * reads by their low byte (U+0143 as "C", U+012B as "+", U+013D as "="), a lone surrogate and an astral one.
 */
const HOSTILE = ['A', 'z', '9', '+', '/', '=', '-', '_', ' ', '\t', '\n', '\0', '*', '.', 'Á', 'ÿ', '\u0143', '\u012b', '\u013d', '\u0141', '\ud800', '😀'];

function mutate(part: string, seed: Buffer): string {
  let text = part;
  const edits = 1 + ((seed[0] ?? 0) % 3);
  for (let e = 0; e < edits; e += 1) {
    const at = (seed[1 + e] ?? 0) % (text.length + 1);
    const char = HOSTILE[(seed[4 + e] ?? 0) % HOSTILE.length] ?? 'A';
    const kind = (seed[7 + e] ?? 0) % 3;
    // Replace, insert or delete one character, near the end half of the time (where the padding lies).
    const where = (seed[10] ?? 0) % 2 === 0 ? at : Math.max(0, text.length - 1 - (at % 3));
    text = kind === 0 ? text.slice(0, where) + char + text.slice(where + 1) : kind === 1 ? text.slice(0, where) + char + text.slice(where) : text.slice(0, where) + text.slice(where + 1);
  }
  return text;
}

/**
 * `parseQuoteString` checks each part without re-encoding it (no new string per part and round). Held
 * to the plain rule on valid parts of every length, on parts that spell the last group with unused
 * bits set, and on many hostile edits of valid parts: the same parts accepted, the same bytes.
 */
describe('quote string: each part accepted exactly when it is standard padded base64', function () {
  this.timeout(60_000);

  it('accepts and refuses the same parts as the pattern, with the same bytes, on 30,000 edited parts', () => {
    const tail = randomBytes(2).toString('base64');
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 30_000; i += 1) {
      const seed = randomBytes(12);
      const valid = randomBytes(i % 40).toString('base64');
      // Unused bits set in the last group ("QR==" for "QQ=="): the pattern and Python take it.
      const unusedBits = valid.endsWith('==') ? `${valid.slice(0, -3)}R==` : valid;
      const part = i % 5 === 0 ? valid : i % 5 === 1 ? unusedBits : mutate(valid, seed);
      const expected = byRule(part);
      let got: Uint8Array | undefined;
      try {
        got = parseQuoteString(`r${part}:${tail}:${tail}`).attest;
      } catch {
        got = undefined;
      }
      expect(got === undefined ? undefined : Buffer.from(got).toString('hex'), JSON.stringify(part)).to.equal(expected?.toString('hex'));
      if (expected === undefined) refused += 1;
      else accepted += 1;
    }
    // Both sides of the rule were exercised, not only one.
    expect(accepted).to.be.greaterThan(10_000);
    expect(refused).to.be.greaterThan(5_000);
  });

  it('refuses a part whose only fault is a character the decoder reads by its low byte', () => {
    for (const part of ['QUJ\u0143', 'QU\u012bD', 'QUJ\u013d', 'QUJD\u0141\u0141==']) {
      expect(() => parseQuoteString(`r${part}:QUJD:QUJD`), JSON.stringify(part)).to.throw('not canonical base64');
    }
  });
});
