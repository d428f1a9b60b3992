import { expect } from 'chai';
import fc from 'fast-check';
import { ImaParseError } from '../../lib/bytes/parse-errors.js';
import { parseImaAsciiLine, parseImaAsciiList, splitImaAsciiLines } from '../../lib/ima/ascii-list-parser.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { vectorText, verificationVector } from './ima-vectors.js';

/** Property tests: hostile input never crashes, never throws an untyped error, never hangs. */
describe('IMA parsing and checking under random input', () => {
  const valid = vectorText('keylime', 'ima', 'ast', 'valid_entries.ascii');
  const policy = compileRuntimePolicy(parseRuntimePolicy(verificationVector('runtime_policy_test.json')));
  const tokens = ['10', ' ', 'ima', 'ima-ng', 'ima-sig', 'ima-buf', 'ima-modsig', 'sha1:', 'sha256:', ':', '00', 'ab', 'zz', '/usr/bin/x', '\n', ''];

  it('parseImaAsciiLine throws only ImaParseError on random text and on token soup', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.constantFrom(...tokens), { maxLength: 30 }).map((t) => t.join(''))), (line) => {
        try {
          parseImaAsciiLine(line, 1);
        } catch (error) {
          expect(error).to.be.instanceOf(ImaParseError);
        }
      }),
      { numRuns: 4000 },
    );
  });

  it('parseImaAsciiList throws only ImaParseError on mutated valid lists', () => {
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.char(), (at, c) => {
        const mutated = valid.slice(0, at) + c + valid.slice(at + 1);
        try {
          parseImaAsciiList(mutated);
        } catch (error) {
          expect(error).to.be.instanceOf(ImaParseError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('verifyImaList never throws on random or mutated lists, and any mutation of a valid list fails', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.nat(valid.length - 1).map((at) => valid.slice(0, at) + 'X' + valid.slice(at + 1))), (text) => {
        const result = verifyImaList({ listText: text, startEntry: 0, quotedPcr10: { bank: 'sha1', value: '08be502a6587600eba07de8348cc45be85e43bbb' } });
        expect(result.valid).to.equal(text === valid);
        expect(result.failures.every((f) => typeof f.eventId === 'string' && f.line >= 0)).to.equal(true);
      }),
      { numRuns: 1500 },
    );
  });

  it('verifyImaList with a policy never throws on token soup', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...tokens), { maxLength: 40 }).map((t) => t.join('')), (text) => {
        const result = verifyImaList({ listText: text, startEntry: 0, policy });
        expect(result.entriesChecked).to.equal(splitImaAsciiLines(text).length);
        expect(result.valid).to.equal(result.failures.length === 0);
      }),
      { numRuns: 1500 },
    );
  });
});
