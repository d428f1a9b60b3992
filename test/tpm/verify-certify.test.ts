import { expect } from 'chai';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { TPM_ALG_ECDSA, TPM_ALG_RSASSA, TPM_ALG_SHA256, TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY } from '../../lib/tpm/constants.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { signAsTpm } from '../../lib/tpm-access/software/sign-quote.js';
import { AK_TEMPLATE_RSA_2048 } from '../../lib/tpm-access/software/templates.js';
import { marshalTpmsAttest } from '../../lib/tpm/tpms-attest.js';
import { tpmtPublicFromKey } from '../../lib/tpm/tpmt-public-key.js';
import { marshalTpmtSignature } from '../../lib/tpm/tpmt-signature.js';
import { verifyCertify, type CertifyVerdict, type VerifyCertifyInput } from '../../lib/tpm/verify-certify.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

function expectRejected(verdict: CertifyVerdict, check: string, message: RegExp): void {
  expect(verdict.valid).to.equal(false);
  if (!verdict.valid) {
    expect(verdict.failedCheck).to.equal(check);
    expect(verdict.reason).to.match(message);
  }
}

describe('verifyCertify (keylime-protocol §5.5: IAK certifies the AK)', () => {
  const iak = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ak = tpmtPublicFromKey(newRsaKeyPairSync().publicKey, AK_TEMPLATE_RSA_2048);
  const akName = tpmObjectName(ak);
  // API 2.6: the qualifying data is SHA-256 of the agent UUID.
  const qualifyingData = new Uint8Array(createHash('sha256').update('d432fbb3-d2f1-4a97-9ef7-75bd81c00000').digest());
  const attest = marshalTpmsAttest({
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST_ATTEST_CERTIFY,
    qualifiedSigner: new Uint8Array(34),
    extraData: qualifyingData,
    clockInfo: { clock: 5n, resetCount: 0, restartCount: 0, safe: true },
    firmwareVersion: 0n,
    attested: { name: akName, qualifiedName: new Uint8Array(34) },
  });
  const signature = marshalTpmtSignature(signAsTpm(iak.privateKey, TPM_ALG_ECDSA, TPM_ALG_SHA256, attest));
  const input: VerifyCertifyInput = { signerPublic: iak.publicKey, attest, signature, qualifyingData, certified: ak };

  it('accepts the certification, given the AK public area or its name, with the hash and scheme pinned', () => {
    expect(verifyCertify(input).valid).to.equal(true);
    expect(verifyCertify({ ...input, certified: akName, hashAlg: 'sha256', signAlg: 'ecdsa' }).valid).to.equal(true);
  });

  it('rejects another certified name: name', () => {
    const other = akName.slice();
    other[2] = (other[2] ?? 0) ^ 1;
    expectRejected(verifyCertify({ ...input, certified: other }), 'name', /not the expected object name/);
  });

  it('rejects other qualifying data: qualifying-data', () => {
    expectRejected(verifyCertify({ ...input, qualifyingData: new Uint8Array(16) }), 'qualifying-data', /extraData does not match/);
  });

  it('rejects a pinned SHA-384 hash: hash-alg', () => {
    expectRejected(verifyCertify({ ...input, hashAlg: 'sha384' }), 'hash-alg', /sha256 is not the expected sha384/);
  });

  it('rejects a tampered attestation: signature', () => {
    const tampered = attest.slice();
    tampered[20] = (tampered[20] ?? 0) ^ 1;
    expectRejected(verifyCertify({ ...input, attest: tampered }), 'signature', /does not verify with the certifying key/);
  });

  it('rejects an RSA signature checked with the ECC IAK: signature-scheme', () => {
    const rsa = newRsaKeyPairSync();
    const rsaSig = marshalTpmtSignature(signAsTpm(rsa.privateKey, TPM_ALG_RSASSA, TPM_ALG_SHA256, attest));
    expectRejected(verifyCertify({ ...input, signature: rsaSig }), 'signature-scheme', /rsassa is not accepted/);
  });
});
