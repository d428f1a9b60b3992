import { expect } from 'chai';
import { BigEndianWriter, LittleEndianWriter } from '../../lib/bytes/byte-writer.js';

describe('byte writers', () => {
  it('keep writing integers correctly after the buffer grows', () => {
    const little = new LittleEndianWriter().bytes(new Uint8Array(254)).u32(0x01020304).u16(0x0506).u64(7n).finish();
    expect(little.length).to.equal(254 + 4 + 2 + 8);
    expect([...little.subarray(254, 260)]).to.deep.equal([4, 3, 2, 1, 6, 5]);
    const big = new BigEndianWriter().bytes(new Uint8Array(255)).u16(0x0102).u32(0x03040506).finish();
    expect([...big.subarray(255)]).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it('back-patches a TPM2B size across a growth of the buffer', () => {
    const out = new BigEndianWriter().sized16((w) => w.bytes(new Uint8Array(600).fill(9))).finish();
    expect(out.length).to.equal(602);
    expect((out[0]! << 8) | out[1]!).to.equal(600);
  });
});
