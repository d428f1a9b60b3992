import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { certificationKey } from '../../lib/agent/push/certification-key.js';
import { TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ECC_NIST_P384, TPM_ECC_NIST_P521 } from '../../lib/tpm/constants.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { marshalTpm2bPublic } from '../../lib/tpm/tpmt-public.js';
import { tpmtPublicFromKey, type TpmtPublicTemplate } from '../../lib/tpm/tpmt-public-key.js';
import { eccAkTemplate, rsaAkTemplate } from '../../lib/tpm-access/software/templates.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, AkSignAlgorithm, TpmHashAlgorithm } from '../../lib/tpm-access/tpm-port.js';
import { tpmNameHex } from './helpers/tpm-name.js';

/** An AkInfo for a key of any size, as a TPM would report it (TPM2B_PUBLIC and name). */
function akOf(template: TpmtPublicTemplate, key: Parameters<typeof tpmtPublicFromKey>[0], signAlg: AkSignAlgorithm, hashAlg: TpmHashAlgorithm): AkInfo {
  const area = tpmtPublicFromKey(key, template);
  return { akPublic: marshalTpm2bPublic(area), akName: tpmObjectName(area), handle: 0x81010002, hashAlg, signAlg };
}

describe('push agent: the certification key it offers', function () {
  it('says the AK\'s real size and its TPM name as local_identifier (RSA 3072, P-384, P-521)', function () {
    const rsaTemplate = rsaAkTemplate(TPM_ALG_SHA256) as TpmtPublicTemplate & { parameters: { keyBits: number } };
    const rsa3072 = akOf({ ...rsaTemplate, parameters: { ...rsaTemplate.parameters, keyBits: 3072 } } as TpmtPublicTemplate, generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey, 'rsassa', 'sha256');
    const eccTemplate = eccAkTemplate(TPM_ALG_SHA384);
    const withCurve = (curveId: number): TpmtPublicTemplate => ({ ...eccTemplate, parameters: { ...eccTemplate.parameters, curveId } }) as TpmtPublicTemplate;
    const p384 = akOf(withCurve(TPM_ECC_NIST_P384), generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey, 'ecdsa', 'sha384');
    const p521 = akOf(withCurve(TPM_ECC_NIST_P521), generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).publicKey, 'ecdsa', 'sha384');
    for (const [ak, algorithm, size] of [[rsa3072, 'rsa', 3072], [p384, 'ecc', 384], [p521, 'ecc', 521]] as const) {
      expect(certificationKey(ak), `${algorithm} ${size}`).to.deep.equal({
        key_class: 'asymmetric',
        key_algorithm: algorithm,
        key_size: size,
        server_identifier: 'ak',
        local_identifier: tpmNameHex(ak.akPublic),
        allowable_signature_schemes: [ak.signAlg],
        allowable_hash_algorithms: [ak.hashAlg],
        public: Buffer.from(ak.akPublic).toString('base64'),
      });
    }
  });

  it('the software TPM\'s AKs: RSA 2048 and P-256, named as the TPM names them (sha256 name: 2 + 32 bytes)', async function () {
    for (const [ekAlgorithm, size] of [['rsa', 2048], ['ecc', 256]] as const) {
      const tpm = await createSoftwareTpm({ ekAlgorithm });
      try {
        await tpm.ensureEk();
        const ak = await tpm.ensureAk('sha256');
        const key = certificationKey(ak);
        expect([key['key_algorithm'], key['key_size']]).to.deep.equal([ekAlgorithm, size]);
        expect(key['local_identifier']).to.equal(tpmNameHex(ak.akPublic)).and.to.match(/^000b[0-9a-f]{64}$/);
      } finally {
        await tpm.close();
      }
    }
  });
});
