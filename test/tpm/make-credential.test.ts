import { expect } from 'chai';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { activateCredential } from '../../lib/tpm-access/software/activate-credential.js';
import { computeAuthTag, checkAuthTag } from '../../lib/tpm/auth-tag.js';
import { TPM_ALG_ECC } from '../../lib/tpm/constants.js';
import { parseCredentialBlob } from '../../lib/tpm/credential-blob.js';
import { kdfa, kdfe } from '../../lib/tpm/kdf.js';
import { makeCredential } from '../../lib/tpm/make-credential.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { CredentialActivationError } from '../../lib/tpm/tpm-errors.js';
import { AK_TEMPLATE_RSA_2048, EK_TEMPLATE_ECC_P256, EK_TEMPLATE_RSA_2048 } from '../../lib/tpm-access/software/templates.js';
import { marshalTpm2bPublic, parseTpm2bPublic } from '../../lib/tpm/tpmt-public.js';
import { tpmtPublicFromKey } from '../../lib/tpm/tpmt-public-key.js';
import { hex, keylimeLegacy, toHex, vectorText } from './tpm-vectors.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

interface McVector {
  ek_tpm2b_public_hex: string;
  challenge_hex: string;
  ak_name_hex: string;
  expected_credential_hex: string;
  ephemeral_ecc_p256_private_key_decimal?: { priv: string; x: string; y: string };
}
const MC = JSON.parse(vectorText('keylime', 'tpm', 'makecredential', 'makecredential_vectors.json')) as Record<string, McVector>;
const rsaVector = MC.test_makecredential as McVector;
const eccVector = MC.test_makecredential_ecc as McVector;

const b64url = (decimal: string): string => Buffer.from(BigInt(decimal).toString(16).padStart(64, '0'), 'hex').toString('base64url');

describe('KDFa / KDFe (TPM 2.0 Part 1 §11.4.10), against values computed independently with Python hmac/hashlib', () => {
  const key = new Uint8Array(Array.from({ length: 32 }, (_, i) => i));
  it('KDFa SHA-256 "STORAGE", 128 bits, contextU = a name', () => {
    const name = new Uint8Array(34);
    name[1] = 0x0b;
    expect(toHex(kdfa('sha256', key, 'STORAGE', name, new Uint8Array(0), 128))).to.equal('4535165c7f0dc2bd1abef241c5893af0');
  });
  it('KDFa SHA-256 "INTEGRITY", 520 bits (three HMAC blocks, truncated)', () => {
    expect(toHex(kdfa('sha256', key, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 520))).to.equal(
      '7dafa373893777b31b17cb30ce771741db80d9f34b47ee8ad27ab3931d0ebbadb81d2a665e2458fa1add33fe132072316e02d6a9bc5ea325914c9b42fae8eda9e3',
    );
  });
  it('KDFa SHA-1, 160 bits', () => {
    expect(toHex(kdfa(0x0004, new Uint8Array(20).fill(0x12), 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 160)))
      .to.equal('68747fd319798efd52b77f24a2be4e8d259a498a');
  });
  it('KDFe SHA-256 "IDENTITY", 256 bits, and SHA-384, 600 bits', () => {
    const z = new Uint8Array(Array.from({ length: 32 }, (_, i) => i + 1));
    const u = new Uint8Array(32).fill(0xaa);
    const v = new Uint8Array(32).fill(0xbb);
    expect(toHex(kdfe('sha256', z, 'IDENTITY', u, v, 256))).to.equal('a052016ea47659e9c6d98ade30257506942cc915f0077816188df53f6b65e4c6');
    expect(toHex(kdfe('sha384', z, 'IDENTITY', u, v, 600))).to.equal(
      '6537bbcda1c61c6b7a3295613945cc4b14be9751dcae660cf072f724ff96fd6423cc3f23db1877ca1de3a9114a3f9a95a7b9680422d4ec79353ff2f4d6bd4ec8fbef424c1c45843cd99aa0',
    );
  });
});

describe('makeCredential: Keylime tpm_util_test.py known answers', () => {
  it('RSA EK with the seed fixed to 0x12 bytes: the first 80 bytes (header + TPM2B_ID_OBJECT) match', () => {
    const blob = makeCredential({
      ekPublic: hex(rsaVector.ek_tpm2b_public_hex),
      akName: hex(rsaVector.ak_name_hex),
      secret: hex(rsaVector.challenge_hex),
      randomness: { seed: new Uint8Array(32).fill(0x12) },
    });
    expect(toHex(blob.subarray(0, 80))).to.equal(rsaVector.expected_credential_hex);
    // 4 magic + 4 version + (2 + 68) ID object + (2 + 256) RSA-2048 OAEP secret
    expect(blob.length).to.equal(336);
  });

  it('ECC P-256 EK with the fixed ephemeral key: the whole output matches', () => {
    const eph = eccVector.ephemeral_ecc_p256_private_key_decimal as { priv: string; x: string; y: string };
    const ephemeralKey = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: b64url(eph.priv), x: b64url(eph.x), y: b64url(eph.y) }, format: 'jwk' });
    const blob = makeCredential({
      ekPublic: hex(eccVector.ek_tpm2b_public_hex),
      akName: hex(eccVector.ak_name_hex),
      secret: hex(eccVector.challenge_hex),
      randomness: { ephemeralKey },
    });
    expect(toHex(blob)).to.equal(eccVector.expected_credential_hex);
  });

  it('has the tpm2-tools file structure: 32-byte HMAC, 34-byte encIdentity, 256-byte secret for the legacy ek.pub', () => {
    const akName = tpmObjectName(parseTpm2bPublic(keylimeLegacy('ak.pub')));
    const blob = parseCredentialBlob(makeCredential({ ekPublic: keylimeLegacy('ek.pub'), akName, secret: new Uint8Array(32).fill(0x41) }));
    expect(blob.integrityHmac.length).to.equal(32);
    expect(blob.encIdentity.length).to.equal(34);
    expect(blob.encryptedSecret.length).to.equal(256);
  });

  it('refuses a credential longer than the EK name hash, with ERR_TPM_KEY', () => {
    expect(() => makeCredential({ ekPublic: keylimeLegacy('ek.pub'), akName: new Uint8Array(34), secret: new Uint8Array(33) }))
      .to.throw(/credential of 33 byte\(s\); 1 to 32 allowed/).with.property('code', 'ERR_TPM_KEY');
  });

  it('refuses an EK without AES-CFB protection (an AK), with ERR_TPM_KEY', () => {
    const ak = keylimeLegacy('ak.pub');
    expect(() => makeCredential({ ekPublic: ak, akName: new Uint8Array(34), secret: new Uint8Array(8) }))
      .to.throw(/TPM key: EK symmetric algorithm null is not AES-CFB/).with.property('code', 'ERR_TPM_KEY');
  });
});

describe('makeCredential → activateCredential with generated EK key pairs', () => {
  const rsaEk = newRsaKeyPairSync();
  const eccEk = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ak = tpmtPublicFromKey(newRsaKeyPairSync().publicKey, AK_TEMPLATE_RSA_2048);
  const akName = tpmObjectName(ak);
  const secret = new Uint8Array(Buffer.from('0123456789abcdefghijklmnopqrstuv', 'ascii'));

  for (const [label, ekPair, template] of [
    ['RSA-2048 (OAEP)', rsaEk, EK_TEMPLATE_RSA_2048],
    ['ECC P-256 (ECDH + KDFe)', eccEk, EK_TEMPLATE_ECC_P256],
  ] as const) {
    const ekPublic = marshalTpm2bPublic(tpmtPublicFromKey(ekPair.publicKey, template));

    it(`${label}: the EK private key recovers the secret`, () => {
      const blob = makeCredential({ ekPublic, akName, secret });
      expect(activateCredential({ ekPrivateKey: ekPair.privateKey, ekPublic, akName, blob })).to.deep.equal(secret);
      if (template.type === TPM_ALG_ECC) {
        expect(parseCredentialBlob(blob).encryptedSecret.length).to.equal(2 + 32 + 2 + 32);
      }
    });

    it(`${label}: another AK name, a flipped HMAC or encIdentity byte all fail the same way`, () => {
      const blob = makeCredential({ ekPublic, akName, secret });
      const otherName = akName.slice();
      otherName[5] = (otherName[5] ?? 0) ^ 1;
      const tampered = [blob.length - 1, 12, 50].map((i) => {
        const copy = blob.slice();
        copy[i] = (copy[i] ?? 0) ^ 1;
        return copy;
      });
      const attempts = [
        () => activateCredential({ ekPrivateKey: ekPair.privateKey, ekPublic, akName: otherName, blob }),
        ...tampered.map((b) => () => activateCredential({ ekPrivateKey: ekPair.privateKey, ekPublic, akName, blob: b })),
      ];
      for (const attempt of attempts) {
        expect(attempt).to.throw('credential activation failed').with.property('code', 'ERR_CREDENTIAL_ACTIVATION');
      }
    });

    it(`${label}: the refusal names the failing step in \`step\` only, for local logs`, () => {
      const blob = makeCredential({ ekPublic, akName, secret });
      const otherName = akName.slice();
      otherName[5] = (otherName[5] ?? 0) ^ 1;
      const lastByte = blob.slice();
      lastByte[blob.length - 1] = (lastByte[blob.length - 1] ?? 0) ^ 1;
      const refusal = (name: Uint8Array, b: Uint8Array): unknown => {
        try {
          return activateCredential({ ekPrivateKey: ekPair.privateKey, ekPublic, akName: name, blob: b });
        } catch (error) {
          return error;
        }
      };
      for (const [error, step] of [[refusal(otherName, blob), 'integrity'], [refusal(akName, lastByte), 'secret']] as const) {
        expect(error).to.be.instanceOf(CredentialActivationError).and.include({ step, message: 'credential activation failed' });
      }
    });
  }
});

describe('auth tag (keylime-protocol §1.4)', () => {
  const keyText = Buffer.from('ZNRKONnwuRuH1h74xZFjBAo1GXglHMAI', 'ascii').toString('base64');
  const agentId = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';

  it('is the lowercase hex HMAC-SHA384 keyed by the base64 text (value from Python hmac)', () => {
    expect(computeAuthTag(keyText, agentId)).to.equal(
      'c7eb95b4fe0f8f2669c9220f97fd1ed8c311d125ca53f255b25d812577d1d22c985ef114e85c542692f0d1011f02cf71',
    );
  });

  it('checkAuthTag accepts either case and rejects other ids, keys and non-hex', () => {
    const tag = computeAuthTag(keyText, agentId);
    expect(checkAuthTag(keyText, agentId, tag)).to.equal(true);
    expect(checkAuthTag(keyText, agentId, tag.toUpperCase())).to.equal(true);
    expect(checkAuthTag(keyText, `${agentId}x`, tag)).to.equal(false);
    expect(checkAuthTag(`${keyText}x`, agentId, tag)).to.equal(false);
    expect(checkAuthTag(keyText, agentId, tag.slice(0, 94))).to.equal(false);
    expect(checkAuthTag(keyText, agentId, `${tag.slice(0, 95)}g`)).to.equal(false);
  });
});
