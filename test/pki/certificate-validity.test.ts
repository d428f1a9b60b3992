import { expect } from 'chai';
import { validityProblem } from '../../lib/pki/certificate-validity.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');
const DAY_MS = 24 * 60 * 60 * 1000;

describe('validityProblem', function () {
  it('is undefined inside the validity period and names the date outside it', function () {
    expect(validityProblem({ notBeforeMs: NOW - DAY_MS, notAfterMs: NOW + DAY_MS }, NOW)).to.equal(undefined);
    expect(validityProblem({ notBeforeMs: NOW + DAY_MS, notAfterMs: NOW + 2 * DAY_MS }, NOW)).to.equal('not valid before 2026-12-06T12:00:00.000Z');
    expect(validityProblem({ notBeforeMs: NOW - 2 * DAY_MS, notAfterMs: NOW - DAY_MS }, NOW)).to.equal('expired on 2026-12-04T12:00:00.000Z');
  });

  it('fails closed on a date that could not be read (Date.parse gave NaN)', function () {
    const unreadable = Date.parse('Dec 99 99:99:99 20x6 GMT');
    expect(unreadable).to.be.NaN;
    for (const validity of [
      { notBeforeMs: unreadable, notAfterMs: NOW + DAY_MS },
      { notBeforeMs: NOW - DAY_MS, notAfterMs: unreadable },
      { notBeforeMs: unreadable, notAfterMs: unreadable },
    ]) {
      expect(validityProblem(validity, NOW)).to.equal('not valid: its validity dates cannot be read');
    }
  });
});
