import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Sha1Pcr } from '../../lib/ima/internal/sha1-pcr.js';

/** The sha1 bank extended in JavaScript must give what node:crypto gives for `SHA-1(PCR ‖ digest)`. */
describe('IMA sha1 PCR extended in JavaScript', () => {
  function reference(pcr: Buffer, digest: Buffer): Buffer {
    return createHash('sha1').update(Buffer.concat([pcr, digest])).digest();
  }

  it('matches node:crypto over a chain of random digests, from zeros and from a random start', () => {
    for (const start of [Buffer.alloc(20), randomBytes(20)]) {
      const pcr = new Sha1Pcr(start.toString('hex'));
      let expected: Buffer = start;
      for (let i = 0; i < 300; i++) {
        const digest = i % 7 === 0 ? Buffer.alloc(20, 0xff) : randomBytes(20);
        if (i % 2 === 0) {
          pcr.extendLatin1(digest.toString('latin1'));
        } else {
          pcr.extendBytes(digest);
        }
        expected = reference(expected, digest);
        expect(pcr.toHex()).to.equal(expected.toString('hex'));
      }
      expect(pcr.equalsLatin1(expected.toString('latin1'))).to.equal(true);
    }
  });

  it('compares with a quoted value of the right size, every byte counting', () => {
    const value = randomBytes(20);
    const pcr = new Sha1Pcr(value.toString('hex'));
    expect(pcr.equalsLatin1(value.toString('latin1'))).to.equal(true);
    for (const at of [0, 7, 19]) {
      const other = Buffer.from(value);
      other[at] = (other[at] as number) ^ 0x80;
      expect(pcr.equalsLatin1(other.toString('latin1'))).to.equal(false);
    }
    expect(pcr.equalsLatin1(Buffer.concat([value, Buffer.alloc(1)]).toString('latin1'))).to.equal(false);
  });
});
