import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { verifyProofOfPossession } from '../../lib/tpm/proof-of-possession.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';

describe('proof of possession: TPM2_Certify of the AK by itself over the challenge (spec §10.2)', function () {
  it('accepts the AK certifying itself over the challenge; refuses another challenge, another AK, tampered bytes, random bytes', async function () {
    const tpm = await createSoftwareTpm();
    const ak = await tpm.ensureAk('sha256');
    const challenge = new Uint8Array(randomBytes(16));
    const proof = await tpm.certifyAk('sha256', challenge);
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature })).to.deep.equal({ valid: true });
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge: new Uint8Array(16), message: proof.attest, signature: proof.signature })).to.include({ valid: false, failedCheck: 'qualifying-data' });
    const other = await (await createSoftwareTpm()).ensureAk('sha256');
    expect(verifyProofOfPossession({ akTpm: other.akPublic, challenge, message: proof.attest, signature: proof.signature }).valid).to.equal(false);
    const tampered = new Uint8Array(proof.attest);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: tampered, signature: proof.signature }).valid).to.equal(false);
    for (const [message, signature] of [
      [new Uint8Array(0), new Uint8Array(0)],
      [new Uint8Array(randomBytes(100)), proof.signature],
      [proof.attest, new Uint8Array(randomBytes(30))],
      [proof.attest.subarray(0, 20), proof.signature.subarray(0, 10)],
    ] as const) {
      expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message, signature }).valid).to.equal(false);
    }
    expect(verifyProofOfPossession({ akTpm: new Uint8Array(randomBytes(50)), challenge, message: proof.attest, signature: proof.signature })).to.include({ valid: false, failedCheck: 'malformed' });
  });

  it('pins sha256 / rsassa by default: a certify signed with another hash is refused', async function () {
    const tpm = await createSoftwareTpm();
    const ak = await tpm.ensureAk('sha384');
    const challenge = new Uint8Array(randomBytes(16));
    const proof = await tpm.certifyAk('sha384', challenge);
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature })).to.include({ valid: false, failedCheck: 'hash-alg' });
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature, hashAlg: 'sha384' }).valid).to.equal(true);
  });

  it('checks an ECC AK with ECDSA by default, and refuses it when rsassa is pinned', async function () {
    const tpm = await createSoftwareTpm({ ekAlgorithm: 'ecc' });
    const ak = await tpm.ensureAk('sha256');
    expect(ak.signAlg).to.equal('ecdsa');
    const challenge = new Uint8Array(randomBytes(16));
    const proof = await tpm.certifyAk('sha256', challenge);
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature })).to.deep.equal({ valid: true });
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge: new Uint8Array(16), message: proof.attest, signature: proof.signature }).valid).to.equal(false);
    expect(verifyProofOfPossession({ akTpm: ak.akPublic, challenge, message: proof.attest, signature: proof.signature, signAlg: 'rsassa' }).valid).to.equal(false);
  });
});
