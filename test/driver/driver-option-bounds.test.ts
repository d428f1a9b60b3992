import { expect } from 'chai';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import type { TenantEkCheckMode } from '../../lib/tenant/ek-certificate-check.js';

describe('keylime driver: options checked when the driver is built', function () {
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
      expect(() => new KeylimeAttestation({ [name]: value })).to.throw(InvalidParameterValue, `keylime driver options.${name}: must be`);
    });
  }

  for (const [name, value] of [
    ['requestTimeoutMs', 1.5],
    ['requestTimeoutMs', 0.5],
    ['fetchTimeoutMs', 2500.5],
    ['maxDocumentBytes', 1024.25],
  ] as const) {
    it(`refuses ${name}: ${value} when the driver is built (the HTTP client and AbortSignal.timeout take whole numbers only)`, function () {
      expect(() => new KeylimeAttestation({ [name]: value })).to.throw(InvalidParameterValue, `keylime driver options.${name}: must be an integer from 1 to`);
    });
  }

  for (const ekCheck of ['required', 'Require', '', 'none']) {
    it(`refuses ekCheck ${JSON.stringify(ekCheck)} when the driver is built, instead of checking EK certificates as under warn`, function () {
      expect(() => new KeylimeAttestation({ ekCheck: ekCheck as TenantEkCheckMode })).to.throw(
        InvalidParameterValue,
        'keylime driver options.ekCheck: must be one of require, warn, off',
      );
    });
  }

  it('accepts finite positive bounds', function () {
    expect(() => new KeylimeAttestation({ staleAfterSeconds: 0.5, requestTimeoutMs: 1000, fetchTimeoutMs: 1000, maxDocumentBytes: 1024 })).to.not.throw();
    for (const ekCheck of ['require', 'warn', 'off'] as const) {
      expect(() => new KeylimeAttestation({ ekCheck })).to.not.throw();
    }
  });
});
