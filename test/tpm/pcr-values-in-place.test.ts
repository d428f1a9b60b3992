import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { HASH_ALGORITHMS, TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512 } from '../../lib/tpm/constants.js';
import { TpmParseError } from '../../lib/bytes/parse-errors.js';
import { PcrValues } from '../../lib/tpm/internal/pcr-values.js';
import { marshalPcrBlobBanks, parsePcrBlob, parsePcrBlobInPlace } from '../../lib/tpm/pcr-blob.js';

const BANKS = [
  { hashAlg: TPM_ALG_SHA1, size: 20 },
  { hashAlg: TPM_ALG_SHA256, size: 32 },
  { hashAlg: TPM_ALG_SHA384, size: 48 },
  { hashAlg: TPM_ALG_SHA512, size: 64 },
] as const;

/** Everything a reader of a PCR map can see, in the order it sees it, values as hex (`Buffer` and `Uint8Array` views alike). */
function observed(map: ReadonlyMap<number, Uint8Array>): unknown {
  const hex = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : Buffer.from(value).toString('hex'));
  const each: unknown[] = [];
  const thisArg = { marker: true };
  map.forEach(function (this: unknown, value, pcr, self) {
    each.push([pcr, hex(value), self === map, this === thisArg]);
  }, thisArg);
  return {
    size: map.size,
    entries: [...map.entries()].map(([pcr, value]) => [pcr, hex(value)]),
    iterated: [...map].map(([pcr, value]) => [pcr, hex(value)]),
    keys: [...map.keys()],
    values: [...map.values()].map(hex),
    each,
    got: Array.from({ length: 34 }, (_, i) => i - 1).map((pcr) => [hex(map.get(pcr)), map.has(pcr)]),
  };
}

/** 1 to 3 banks of distinct hashes, each with a random set of PCRs 0–31 (empty included), random values. */
function randomBanks(): { hashAlg: number; pcrs: Map<number, Uint8Array> }[] {
  const count = 1 + Math.floor(Math.random() * 3);
  return [...BANKS]
    .sort(() => Math.random() - 0.5)
    .slice(0, count)
    .map(({ hashAlg, size }) => {
      const pcrs = new Map<number, Uint8Array>();
      for (let pcr = 0; pcr < 32; pcr += 1) if (Math.random() < 0.6) pcrs.set(pcr, randomBytes(size));
      return { hashAlg, pcrs };
    });
}

/**
 * The blob of `banks` with its digests split into lists of `counts` digests (fewer than 8 with more lists
 * after them, as TPM2_PCR_Read answers may come), in the layout `marshalPcrBlobBanks` writes otherwise.
 */
function blobWithLists(banks: readonly { hashAlg: number; pcrs: Map<number, Uint8Array> }[], counts: readonly number[]): Uint8Array {
  const selection = marshalPcrBlobBanks(banks).subarray(0, 132);
  const values = banks.flatMap(({ pcrs }) => [...pcrs.values()]);
  const out = Buffer.alloc(132 + 4 + counts.length * 532);
  out.set(selection, 0);
  out.writeUInt32LE(counts.length, 132);
  let next = 0;
  counts.forEach((count, l) => {
    const list = 136 + l * 532;
    out.writeUInt32LE(count, list);
    for (let i = 0; i < count; i += 1) {
      const value = values[next] as Uint8Array;
      out.writeUInt16LE(value.length, list + 4 + i * 66);
      out.set(value, list + 4 + i * 66 + 2);
      next += 1;
    }
  });
  return out;
}

/**
 * The in-place parse (`parsePcrBlobInPlace`, every quote the verifier checks) reads each bank's values where
 * they lie in the blob (`PcrValues`) instead of a `Map` of a view per PCR (docs/fleet.md, twenty-second
 * pass). Held to the map it replaced on random blobs of several banks, whose digests cross TPML_DIGEST
 * lists: every reader, the values' bytes, that they alias the blob, and the joined copy the quote's digest hashes.
 */
describe('PCR values read in place', function () {
  it('read as the map of the blob it was written from, for every reader, on 400 random blobs', function () {
    for (let round = 0; round < 400; round += 1) {
      const expected = randomBanks();
      const blob = marshalPcrBlobBanks(expected);
      const inPlace = parsePcrBlobInPlace(blob);
      const copied = parsePcrBlob(blob);
      expect(inPlace.untrustedBanks.map((bank) => bank.hashAlg)).to.deep.equal(expected.map((bank) => bank.hashAlg));
      expected.forEach(({ pcrs }, b) => {
        const values = inPlace.untrustedBanks[b]?.pcrs as ReadonlyMap<number, Uint8Array>;
        expect(values).to.be.instanceOf(PcrValues);
        expect(observed(values), `blob ${round}, bank ${b}`).to.deep.equal(observed(pcrs));
        // parsePcrBlob (its own copy) still gives a plain Map, equal to the one written.
        expect(copied.untrustedBanks[b]?.pcrs).to.be.instanceOf(Map);
        expect(observed(copied.untrustedBanks[b]?.pcrs as ReadonlyMap<number, Uint8Array>)).to.deep.equal(observed(pcrs));
      });
    }
  });

  it('reads the values of lists short of 8 digests followed by others, on 300 random splits', function () {
    for (let round = 0; round < 300; round += 1) {
      const expected = randomBanks();
      const total = expected.reduce((sum, { pcrs }) => sum + pcrs.size, 0);
      const counts: number[] = [];
      for (let left = total; left > 0; ) {
        const count = Math.min(left, Math.floor(Math.random() * 9));
        counts.push(count);
        left -= count;
      }
      const blob = blobWithLists(expected, counts);
      const banks = parsePcrBlobInPlace(blob).untrustedBanks;
      expected.forEach(({ pcrs }, b) => {
        expect(observed(banks[b]?.pcrs as ReadonlyMap<number, Uint8Array>), `lists ${counts.join(',')}, bank ${b}`).to.deep.equal(observed(pcrs));
      });
      const want = Buffer.concat(expected.flatMap(({ pcrs }) => [...pcrs.values()]));
      const joined = Buffer.alloc(want.length);
      let at = 0;
      for (const bank of banks) at = (bank.pcrs as PcrValues).copyValuesTo(joined, at);
      expect(joined.equals(want), `lists ${counts.join(',')}`).to.equal(true);
    }
  });

  it('gives the same view on every read of a value, a view of the blob itself', function () {
    const pcrs = new Map(Array.from({ length: 24 }, (_, i) => [i, randomBytes(32)] as const));
    // A first bank of 5, so the second's values start mid-list and cross into the next ones.
    const sha1 = new Map(Array.from({ length: 5 }, (_, i) => [i, randomBytes(20)] as const));
    const blob = marshalPcrBlobBanks([{ hashAlg: TPM_ALG_SHA1, pcrs: sha1 }, { hashAlg: TPM_ALG_SHA256, pcrs }]);
    const values = parsePcrBlobInPlace(blob).untrustedBanks[1]?.pcrs as ReadonlyMap<number, Uint8Array>;
    const first = values.get(17);
    expect(values.get(17)).to.equal(first);
    expect([...values.values()][17]).to.equal(first);
    expect(first?.buffer).to.equal(blob.buffer);
    (first as Uint8Array)[0] = ((first as Uint8Array)[0] as number) ^ 0xff;
    expect(Buffer.from(values.get(17) as Uint8Array).equals(pcrs.get(17) as Uint8Array)).to.equal(false);
  });

  it('copies four bytes at a time, which every known digest size allows', function () {
    expect(HASH_ALGORITHMS.map((hash) => hash.digestSize % 4)).to.deep.equal(HASH_ALGORITHMS.map(() => 0));
  });

  it('copies its values in order for the digest, from a Buffer or a plain Uint8Array, at any offset', function () {
    for (let round = 0; round < 100; round += 1) {
      const expected = randomBanks();
      const blob = marshalPcrBlobBanks(expected);
      const plain = new Uint8Array(blob.length + 7).subarray(7);
      plain.set(blob);
      for (const bytes of [Buffer.from(blob), plain]) {
        const banks = parsePcrBlobInPlace(bytes).untrustedBanks;
        const want = Buffer.concat(expected.flatMap(({ pcrs }) => [...pcrs.values()]));
        const joined = Buffer.alloc(want.length + 3, 0xee);
        let at = 3;
        for (const bank of banks) at = (bank.pcrs as PcrValues).copyValuesTo(joined, at);
        expect(at).to.equal(joined.length);
        expect(joined.subarray(3).equals(want), `blob ${round}`).to.equal(true);
        expect(joined.subarray(0, 3).toString('hex')).to.equal('eeeeee');
      }
    }
  });

  it('refuses a digest of the wrong size in a list after a short one, read at its own slot', function () {
    // sha1 × 3 then sha256 × 13 in lists of 5 and 8 and 3: the sha256 values start in the first list.
    const sha1 = new Map(Array.from({ length: 3 }, (_, i) => [i, randomBytes(20)] as const));
    const sha256 = new Map(Array.from({ length: 13 }, (_, i) => [i, randomBytes(32)] as const));
    const banks = [{ hashAlg: TPM_ALG_SHA1, pcrs: sha1 }, { hashAlg: TPM_ALG_SHA256, pcrs: sha256 }];
    const blob = Buffer.from(blobWithLists(banks, [5, 8, 3]));
    expect(observed(parsePcrBlobInPlace(blob).untrustedBanks[1]?.pcrs as ReadonlyMap<number, Uint8Array>)).to.deep.equal(observed(sha256));
    // Each slot of the second and third lists in turn given sha1's size: a sha256 PCR's value of 20 bytes.
    for (const [list, slot] of [[1, 0], [1, 4], [1, 7], [2, 0], [2, 2]] as const) {
      const tampered = Buffer.from(blob);
      tampered.writeUInt16LE(20, 136 + list * 532 + 4 + slot * 66);
      expect(() => parsePcrBlobInPlace(tampered), `list ${list} slot ${slot}`).to.throw(TpmParseError, /sha256 PCR \d+ value has 20 byte\(s\), expected 32/);
    }
    // A sha1 digest (in the first list) given sha256's size.
    const tampered = Buffer.from(blob);
    tampered.writeUInt16LE(32, 136 + 4 + 2 * 66);
    expect(() => parsePcrBlobInPlace(tampered)).to.throw(TpmParseError, /sha1 PCR 2 value has 32 byte\(s\), expected 20/);
  });

  it('skips a bank of no PCR, of a hash it does not know, between banks whose digests cross a short list', function () {
    const sha1 = new Map(Array.from({ length: 6 }, (_, i) => [i + 2, randomBytes(20)] as const));
    const sha384 = new Map(Array.from({ length: 9 }, (_, i) => [i * 3, randomBytes(48)] as const));
    const blob = Buffer.from(blobWithLists([{ hashAlg: TPM_ALG_SHA1, pcrs: sha1 }, { hashAlg: TPM_ALG_SHA256, pcrs: new Map() }, { hashAlg: TPM_ALG_SHA384, pcrs: sha384 }], [7, 1, 7]));
    // The empty middle bank's hash made one nobody knows (0x0099).
    blob.writeUInt16LE(0x0099, 4 + 8);
    const parsed = parsePcrBlobInPlace(blob).untrustedBanks;
    expect(parsed.map((bank) => [bank.hashAlg, bank.pcrs.size])).to.deep.equal([[TPM_ALG_SHA1, 6], [0x0099, 0], [TPM_ALG_SHA384, 9]]);
    expect(observed(parsed[0]?.pcrs as ReadonlyMap<number, Uint8Array>)).to.deep.equal(observed(sha1));
    expect(observed(parsed[2]?.pcrs as ReadonlyMap<number, Uint8Array>)).to.deep.equal(observed(sha384));
  });
});
