import { createHash, getHashes } from 'node:crypto';
import { expect } from 'chai';
import { digestLength } from '../../lib/attestation/internal/digest.js';
import { QUOTE_HASH_ALGS } from '../../lib/attestation/algorithms.js';
import { imaHashByLinuxId, imaHashByName, imaHashesByHexLength, pcrBankSize } from '../../lib/ima/hash-algorithms.js';
import { hashAlgorithmByName, knownHashAlgorithm } from '../../lib/mb/internal/hash-algorithms.js';
import { HASH_ALGORITHMS, hashInfoByName } from '../../lib/tpm/constants.js';

describe('the one hash-algorithm table (HASH_ALGORITHMS)', () => {
  it('gives each algorithm the digest size node:crypto produces, where this Node has it', () => {
    const available = new Set(getHashes());
    const checked = HASH_ALGORITHMS.filter((h) => available.has(h.nodeName));
    expect(checked.map((h) => h.name)).to.include.members(['sha1', 'sha256', 'sha384', 'sha512']);
    for (const h of checked) {
      expect(createHash(h.nodeName).digest().length, h.name).to.equal(h.digestSize);
    }
  });

  it('is what the event-log banks, the quote digests and IMA read', () => {
    for (const h of HASH_ALGORITHMS) {
      expect(knownHashAlgorithm(h.algId)?.digestSize, h.name).to.equal(h.digestSize);
      expect(hashAlgorithmByName(h.name)?.algId, h.name).to.equal(h.algId);
    }
    for (const name of QUOTE_HASH_ALGS) {
      expect(digestLength(name), name).to.equal(hashInfoByName(name)?.digestSize);
    }
    expect(imaHashByName('sm3_256')).to.deep.equal({ name: 'sm3_256', nodeName: 'sm3', digestSize: 32, linuxId: 17 });
    expect([pcrBankSize('sha1'), pcrBankSize('sha256')]).to.deep.equal([20, 32]);
  });

  it('leaves IMA its kernel ids and the two kernel hashes no TPM names', () => {
    expect(imaHashByLinuxId(1)).to.deep.equal({ name: 'md5', nodeName: 'md5', digestSize: 16, linuxId: 1 });
    expect(imaHashByLinuxId(7)?.name).to.equal('sha224');
    expect(hashInfoByName('md5')).to.equal(undefined);
    expect(imaHashesByHexLength(64).map((h) => h.name)).to.deep.equal(['sha256', 'sm3_256']);
    expect(imaHashesByHexLength(32)).to.deep.equal([]);
  });
});
