import { expect } from 'chai';
import { MAX_JSON_DEPTH } from '../../lib/bytes/json-text-bound.js';
import { checkJsonValue } from '../../lib/http/json-guard.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { cpuTimed } from '../helpers/cpu-time.js';

function refusal(value: unknown, maxDepth?: number): string {
  try {
    checkJsonValue(value, 'body', maxDepth);
  } catch (error) {
    expect(error).to.be.instanceOf(RequestValidationError);
    return (error as Error).message;
  }
  return 'accepted';
}

describe('http: the JSON guard (checkJsonValue)', () => {
  it('names the location of a prototype key, through objects and arrays', () => {
    expect(refusal({ a: { b: [{ c: 1 }, { constructor: {} }] } })).to.equal('body.a.b.constructor: key not allowed');
    expect(refusal(JSON.parse('[{"__proto__": 1}]'))).to.equal('body.__proto__: key not allowed');
    expect(refusal({ prototype: 1 })).to.equal('body.prototype: key not allowed');
  });

  it('counts depth over objects and arrays, primitives not', () => {
    let deep: unknown = 0;
    for (let i = 0; i < MAX_JSON_DEPTH; i += 1) deep = i % 2 === 0 ? [deep] : { a: deep };
    expect(refusal(deep)).to.equal('accepted');
    expect(refusal([deep])).to.equal(`body: nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(refusal({ a: [1] }, 1)).to.equal('body: nested deeper than 1 levels');
    expect(refusal({ a: 1 }, 1)).to.equal('accepted');
    expect(refusal(7)).to.equal('accepted');
  });

  it('checks an array of 4 million numbers in one cheap pass (it took one stack entry per element: seconds and a GB)', () => {
    const numbers: unknown = JSON.parse(`[${'0,'.repeat(4_000_000 - 1)}0]`);
    // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
    const { ms } = cpuTimed(() => checkJsonValue(numbers, 'body'));
    expect(ms).to.be.below(300);
  });
});
