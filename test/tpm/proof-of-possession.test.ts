import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { verifyProofOfPossession } from '../../lib/tpm/proof-of-possession.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { FakeAgent } from '../attestation/fake-agent.js';

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

  it('refuses a proof by a 1024-bit RSA AK although its signature verifies: its private key can be computed, so it proves no TPM', function () {
    const weak = new FakeAgent({ akRsaBits: 1024 });
    const challenge = new Uint8Array(randomBytes(16));
    const proof = weak.certifyAk(challenge);
    const akTpm = new Uint8Array(Buffer.from(weak.akTpm, 'base64'));
    const verdict = verifyProofOfPossession({ akTpm, challenge, message: proof.attest, signature: proof.signature });
    expect(verdict).to.include({ valid: false, failedCheck: 'weak-key' });
    expect(verdict.valid === false && verdict.reason).to.equal('the AK is a 1024-bit RSA key (at least 2048 bits are required)');
    const strong = new FakeAgent();
    const good = strong.certifyAk(challenge);
    expect(verifyProofOfPossession({ akTpm: new Uint8Array(Buffer.from(strong.akTpm, 'base64')), challenge, message: good.attest, signature: good.signature })).to.deep.equal({ valid: true });
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
