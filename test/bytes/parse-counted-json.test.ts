import { expect } from 'chai';
import { parseCountedJson, type CountedJsonErrors } from '../../lib/bytes/parse-counted-json.js';

/** A caller's own typed error: which of its two refusals it is, and what the helper gave it. */
class CallerError extends Error {
  constructor(
    readonly kind: 'excess' | 'notJson',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const callerErrors: CountedJsonErrors = {
  excess: (reason) => new CallerError('excess', `field: ${reason}`),
  notJson: (cause) => new CallerError('notJson', `field: is not JSON (${cause.message})`, { cause }),
};

/** What `parseCountedJson` throws for `text` (it must throw). */
function refusalOf(text: string, maxValues: number): CallerError {
  try {
    parseCountedJson(text, maxValues, callerErrors);
  } catch (error) {
    expect(error).to.be.instanceOf(CallerError);
    return error as CallerError;
  }
  expect.fail(`parseCountedJson accepted ${text.slice(0, 40)}`);
}

describe('parseCountedJson (lib/bytes/parse-counted-json.ts)', function () {
  this.timeout(60_000);

  it('gives the parsed value of a text within the bound', () => {
    // 7 values: the top object, the list and its 3 items, `b`'s and `c`'s values.
    const seven = '{"a":[1,2,{"b":null}],"c":"}]"}';
    expect(parseCountedJson(seven, 7, callerErrors)).to.deep.equal({ a: [1, 2, { b: null }], c: '}]' });
    expect(refusalOf(seven, 6).message).to.equal('field: holds more than 6 JSON values');
    expect(parseCountedJson('"x"', 1, callerErrors)).to.equal('x');
  });

  it("throws the caller's excess error for a text past the bound, counted before JSON.parse sees the text", () => {
    // 30 MiB of `{},` that JSON.parse would refuse only at its very last character (a `}` closing the `[`):
    // the excess error, not the not-JSON one, shows the text was refused before it was parsed.
    const huge = `[${'{},'.repeat(10 * 1024 * 1024)}{}}`;
    const refusal = refusalOf(huge, 1000);
    expect(refusal.kind).to.equal('excess');
    expect(refusal.message).to.equal('field: holds more than 1000 JSON values');
    expect(refusal.cause).to.equal(undefined);
  });

  it("throws the caller's excess error for a text nested too deep", () => {
    const refusal = refusalOf(`${'['.repeat(33)}${']'.repeat(33)}`, 1000);
    expect(refusal.kind).to.equal('excess');
    expect(refusal.message).to.equal('field: nested deeper than 32 levels');
  });

  it("throws the caller's not-JSON error, with JSON.parse's SyntaxError as its cause, for a text within the bound that is not JSON", () => {
    const refusal = refusalOf('{"a":1,}', 10);
    expect(refusal.kind).to.equal('notJson');
    expect(refusal.cause).to.be.instanceOf(SyntaxError);
    expect(refusal.message).to.equal(`field: is not JSON (${(refusal.cause as SyntaxError).message})`);
  });
});
