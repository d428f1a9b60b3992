import { expect } from 'chai';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { checkJsonText, DEFAULT_MAX_JSON_VALUES, MAX_JSON_DEPTH, parseJsonBody } from '../../lib/http/json-guard.js';

/** JSON values in a parsed value, counted the way `checkJsonText` counts them in text: keys not counted. */
function valuesIn(value: unknown): number {
  if (value === null || typeof value !== 'object') return 1;
  return 1 + (Object.values(value) as unknown[]).reduce<number>((sum, member) => sum + valuesIn(member), 0);
}

function refusal(check: () => unknown): string {
  try {
    check();
  } catch (error) {
    expect(error).to.be.instanceOf(RequestValidationError);
    return (error as Error).message;
  }
  return 'accepted';
}

describe('http: a body bounded by its number of JSON values before it is parsed (hunt H5)', () => {
  const documents = [
    '0',
    '"a string"',
    '[]',
    '{}',
    '[ ]',
    '{ \n }',
    '[[],{},[[]],{"a":{}}]',
    '{"a":1,"b":[1,2,3],"c":{"d":null,"e":[{"f":true}]}}',
    // Marks inside strings, escaped quotes and backslashes are not structure.
    '{"a,[{":"x,y]}[{","b":"\\"],{\\\\","c":["\\\\",",","\\"\\\\\\""]}',
    ' { "a" : [ 1 , 2 ] , "b" : { } } ',
    JSON.stringify({ data: { type: 'attestation', attributes: { evidence_collected: [{ data: { entries: 'ABC=' }, meta: { é: '→' } }] } } }),
  ];

  for (const text of documents) {
    it(`counts the values of ${text.slice(0, 50)} exactly`, () => {
      const values = valuesIn(JSON.parse(text));
      expect(refusal(() => checkJsonText(text, values))).to.equal('accepted');
      if (values > 1) expect(refusal(() => checkJsonText(text, values - 1))).to.equal(`body: holds more than ${values - 1} JSON values`);
    });
  }

  it('refuses before JSON.parse: the values past the bound come before text that is not JSON', () => {
    const text = `[${'{},'.repeat(DEFAULT_MAX_JSON_VALUES)} this is not JSON`;
    expect(refusal(() => parseJsonBody(text))).to.equal(`body: holds more than ${DEFAULT_MAX_JSON_VALUES} JSON values`);
    expect(refusal(() => parseJsonBody(`[${'{},'.repeat(DEFAULT_MAX_JSON_VALUES - 2)}{}]`))).to.equal('accepted');
  });

  it('refuses text with more marks than that many values can have, which is not JSON, without reading to its end', () => {
    // JSON.parse would say "must be JSON"; the scan stops at the 5 × 512 + 1st mark instead.
    for (const mark of ['[]', '""', ']', '{}']) {
      expect(refusal(() => parseJsonBody(mark.repeat(3000)))).to.equal(`body: holds more than ${DEFAULT_MAX_JSON_VALUES} JSON values`);
    }
    const widest = `{${Array.from({ length: 255 }, (_, i) => `"k${i}":"v"`).join(',')}}`;
    expect(valuesIn(JSON.parse(widest))).to.equal(256);
    expect(refusal(() => checkJsonText(widest, 256))).to.equal('accepted');
  });

  it('refuses nesting past the bound in the text, whatever the number of values', () => {
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    expect(refusal(() => checkJsonText(deep, 1_000_000))).to.equal(`body: nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(refusal(() => checkJsonText(deep.slice(1, -1), 1_000_000))).to.equal('accepted');
  });

  it('takes a string of 32 MiB as one value', () => {
    expect(refusal(() => parseJsonBody(JSON.stringify({ entries: 'A'.repeat(32 * 1024 * 1024) }), 2))).to.equal('accepted');
  });

});
