import { expect } from 'chai';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';

describe('keylime driver: numeric options', function () {
  for (const [name, value] of [
    ['staleAfterSeconds', Number.NaN],
    ['staleAfterSeconds', Number.POSITIVE_INFINITY],
    ['staleAfterSeconds', -1],
    ['staleAfterSeconds', 0],
    ['requestTimeoutMs', Number.NaN],
    ['fetchTimeoutMs', -5],
    ['maxDocumentBytes', Number.POSITIVE_INFINITY],
  ] as const) {
    it(`refuses ${name}: ${value} when the driver is built`, function () {
      expect(() => new KeylimeAttestation({ [name]: value })).to.throw(InvalidParameterValue, `keylime driver options.${name}: must be a number above 0`);
    });
  }

  it('accepts finite positive bounds', function () {
    expect(() => new KeylimeAttestation({ staleAfterSeconds: 0.5, requestTimeoutMs: 1000, fetchTimeoutMs: 1000, maxDocumentBytes: 1024 })).to.not.throw();
  });
});
