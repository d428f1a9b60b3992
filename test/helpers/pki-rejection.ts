import { expect } from 'chai';
import { PkiError } from '../../lib/pki/pki-error.js';

/** The `PkiError` that `promise` rejects with; any other outcome fails the test. */
export async function pkiRejection(promise: Promise<unknown>): Promise<PkiError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(PkiError);
    return error as PkiError;
  }
  throw new Error('expected a PkiError');
}
