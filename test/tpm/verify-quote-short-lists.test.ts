import { expect } from 'chai';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { TPM_ALG_ECDSA } from '../../lib/tpm/constants.js';
import { parsePcrBlob } from '../../lib/tpm/pcr-blob.js';
import { buildQuote } from '../../lib/tpm-access/software/sign-quote.js';
import { verifyQuote } from '../../lib/tpm/verify-quote.js';

/** Offset of digest slot `slot` of TPML_DIGEST `list` in a tpm2-tools PCR blob (selection 132 B, list count 4 B, lists 532 B). */
const slotAt = (list: number, slot: number): number => 136 + list * 532 + 4 + slot * 66;

/** `blob`'s digests, in order, laid out again in lists of `counts` digests (short lists followed by others, as a TPM2_PCR_Read may answer). */
function splitLists(blob: Uint8Array, counts: readonly number[]): Buffer {
  const values = parsePcrBlob(blob).untrustedBanks.flatMap((bank) => [...bank.pcrs.values()]);
  const out = Buffer.alloc(136 + counts.length * 532);
  out.set(blob.subarray(0, 132), 0);
  out.writeUInt32LE(counts.length, 132);
  let next = 0;
  counts.forEach((count, l) => {
    out.writeUInt32LE(count, 136 + l * 532);
    for (let i = 0; i < count; i += 1) {
      const value = values[next] as Uint8Array;
      out.writeUInt16LE(value.length, slotAt(l, i));
      out.set(value, slotAt(l, i) + 2);
      next += 1;
    }
  });
  return out;
}

/**
 * The quote's digest over PCR values read in place (`PcrValues.copyValuesTo`) when the blob's digests cross
 * TPML_DIGEST lists short of 8: a signed quote over PCRs 0-23 still verifies with its digests split 5+8+8+3,
 * with the same values; a value changed in any list fails the digest; the slots' padding is not hashed.
 */
describe('verifyQuote: PCR blobs whose digests cross short TPML_DIGEST lists', function () {
  const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const nonce = new Uint8Array(Buffer.from('n0nce', 'ascii'));
  const pcrs = new Map(Array.from({ length: 24 }, (_, pcr) => [pcr, new Uint8Array(randomBytes(32))] as const));
  const parts = buildQuote({
    akPrivateKey: ecc.privateKey, akName: new Uint8Array(34), sigAlg: TPM_ALG_ECDSA, hashAlg: 'sha256', pcrs, nonce,
    clockInfo: { clock: 1000n, resetCount: 1, restartCount: 0, safe: true },
  });
  const counts = [5, 8, 8, 3];
  const verify = (pcrBlob: Uint8Array) => verifyQuote({ akPublic: ecc.publicKey, attest: parts.attest, signature: parts.signature, pcrBlob, nonce, hashAlg: 'sha256' });

  it('verifies and gives every value as quoted', function () {
    const verdict = verify(splitLists(parts.pcrBlob, counts));
    expect(verdict.valid).to.equal(true);
    if (verdict.valid) {
      expect([...verdict.pcrs].map(([pcr, value]) => [pcr, Buffer.from(value).toString('hex')])).to.deep.equal(
        [...pcrs].map(([pcr, value]) => [pcr, Buffer.from(value).toString('hex')]),
      );
    }
  });

  it('fails the digest for a value changed in any list, at its first, middle or last byte', function () {
    const split = splitLists(parts.pcrBlob, counts);
    counts.forEach((count, list) => {
      for (let slot = 0; slot < count; slot += 1) {
        for (const byte of [0, 17, 31]) {
          const tampered = Buffer.from(split);
          tampered.writeUInt8((tampered.readUInt8(slotAt(list, slot) + 2 + byte) ^ 0x01), slotAt(list, slot) + 2 + byte);
          const verdict = verify(tampered);
          expect(verdict.valid ? 'valid' : verdict.failedCheck, `list ${list} slot ${slot} byte ${byte}`).to.equal('pcr-digest');
        }
      }
    });
  });

  it('does not hash the slots past a value (padding), as tpm2-tools leaves them', function () {
    const padded = splitLists(parts.pcrBlob, counts);
    for (let list = 0; list < counts.length; list += 1) padded.fill(0xee, slotAt(list, 0) + 2 + 32, slotAt(list, 1));
    expect(verify(padded).valid).to.equal(true);
  });
});
