import { expect } from 'chai';
import fc from 'fast-check';
import { IntegrityQuoteQuery } from '../../lib/agent/agent-dtos.js';
import { INTEGRITY_QUOTE_QUERY } from '../../lib/agent/integrity-query-fast-path.js';

const fastIntegrityQuoteQuery = INTEGRITY_QUOTE_QUERY.fast;
import { validateDto } from '../../lib/http/dto-validation.js';

/** What a verifier asks every round. */
const VERIFIER_QUERY = { nonce: 'a1B2c3D4e5F6g7H8i9J0', mask: '0x408401', partial: '1', ima_ml_entry: '42' };

/** Values at and past every bound of the query's rules, other types, and shapes only the DTO decides. */
const EDGES: unknown[] = [
  undefined,
  null,
  '',
  '0',
  '1',
  '2',
  'x',
  ' 1',
  '1 ',
  '-1',
  '0x',
  '0X1',
  'ffffff',
  '0xffffff',
  '1000000',
  '0x1000000',
  'ffffffff',
  '0xfffffffff',
  'a'.repeat(64),
  'a'.repeat(65),
  'é',
  '9'.repeat(12),
  '9'.repeat(13),
  'abc\n',
  ['1'],
  ['1', '2'],
  {},
  7,
];

/** The members that have a value (the DTO instance holds an absent optional member as undefined). */
function members(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined));
}

/** The DTO's answer: the checked members, or "refused". */
function slowAnswer(plain: unknown): Record<string, unknown> | 'refused' {
  try {
    return members(validateDto(IntegrityQuoteQuery, plain, 'query'));
  } catch {
    return 'refused';
  }
}

describe('agent: fast path of the integrity quote query', function () {
  it("takes the verifier's query, with and without ima_ml_entry, and answers as the DTO does", function () {
    for (const query of [VERIFIER_QUERY, { nonce: 'n0', mask: '408400', partial: '0' }]) {
      const fast = fastIntegrityQuoteQuery(query);
      expect(fast, 'fast path taken').to.not.equal(undefined);
      expect(members(fast as object)).to.deep.equal(slowAnswer(query));
    }
  });

  const keys = ['nonce', 'mask', 'partial', 'ima_ml_entry', 'extra'] as const;

  it("answers as the DTO does for the verifier's query with any one member set to any edge value or removed", function () {
    for (const key of keys) {
      for (const value of EDGES) {
        const query: Record<string, unknown> = { ...VERIFIER_QUERY, [key]: value };
        if (value === undefined) delete query[key];
        const fast = fastIntegrityQuoteQuery(query);
        if (fast !== undefined) {
          expect(members(fast), JSON.stringify(query)).to.deep.equal(slowAnswer(query));
        }
      }
    }
  });

  it('accepts only what the DTO accepts, with the same fields (random members and extra keys)', function () {
    const member = fc.oneof(fc.constantFrom(...EDGES), fc.string({ maxLength: 70 }), fc.stringMatching(/^(0[xX])?[0-9a-fA-F]{0,9}$/));
    fc.assert(
      fc.property(fc.record(Object.fromEntries(keys.map((key) => [key, member])), { requiredKeys: [] }), fc.boolean(), (mutation, fromVerifier) => {
        const query: Record<string, unknown> = fromVerifier ? { ...VERIFIER_QUERY } : {};
        for (const [key, value] of Object.entries(mutation)) {
          if (value === undefined) delete query[key];
          else query[key] = value;
        }
        const fast = fastIntegrityQuoteQuery(query);
        if (fast !== undefined) {
          expect(members(fast), JSON.stringify(query)).to.deep.equal(slowAnswer(query));
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('leaves to the DTO what is not an object of strings', function () {
    for (const plain of [null, undefined, 'nonce=a', [VERIFIER_QUERY], { ...VERIFIER_QUERY, nonce: ['a', 'b'] }, { ...VERIFIER_QUERY, ima_ml_entry: null }]) {
      expect(fastIntegrityQuoteQuery(plain), JSON.stringify(plain)).to.equal(undefined);
    }
  });
});
