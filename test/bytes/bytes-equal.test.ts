import { expect } from 'chai';
import { bytesEqual } from '../../lib/bytes/bytes-equal.js';

describe('bytesEqual (constant-time, STYLE 7)', () => {
  it('is true for the same bytes, whatever the view', () => {
    const backing = Uint8Array.from([9, 1, 2, 3]);
    expect(bytesEqual(backing.subarray(1), Buffer.from([1, 2, 3]))).to.equal(true);
    expect(bytesEqual(new Uint8Array(0), Buffer.alloc(0))).to.equal(true);
  });

  it('is false for a different byte, a prefix or a longer string, and never throws on a length mismatch', () => {
    expect(bytesEqual(Uint8Array.from([1, 2, 3]), Uint8Array.from([1, 2, 4]))).to.equal(false);
    expect(bytesEqual(Uint8Array.from([1, 2]), Uint8Array.from([1, 2, 3]))).to.equal(false);
    expect(bytesEqual(Uint8Array.from([1, 2, 3, 0]), Uint8Array.from([1, 2, 3]))).to.equal(false);
  });
});
