import { expect } from 'chai';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { checkAkAttributes } from '../../lib/tpm/ak-attributes.js';
import {
  TPM_ALG_AES,
  TPM_ALG_ECC,
  TPM_ALG_RSA,
  TPM_ALG_RSASSA,
  TPM_ALG_SHA256,
  TPM_ST_ATTEST_CREATION,
  TPM_ST_ATTEST_QUOTE,
} from '../../lib/tpm/constants.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { marshalPcrBlob, marshalPcrBlobBanks, parsePcrBlob } from '../../lib/tpm/pcr-blob.js';
import { formatQuoteString, parseQuoteString } from '../../lib/tpm/quote-string.js';
import { AK_TEMPLATE_ECC_P256, EK_TEMPLATE_ECC_P256, EK_TEMPLATE_RSA_2048 } from '../../lib/tpm-access/software/templates.js';
import { marshalTpmsAttest, parseTpmsAttest } from '../../lib/tpm/tpms-attest.js';
import {
  marshalTpm2bPublic,
  marshalTpmtPublic,
  parsePublicArea,
  parseTpm2bPublic,
  parseTpmtPublic,
} from '../../lib/tpm/tpmt-public.js';
import { publicKeyFromTpmtPublic, tpmtPublicFromKey } from '../../lib/tpm/tpmt-public-key.js';
import { marshalTpmtSignature, parseTpmtSignature } from '../../lib/tpm/tpmt-signature.js';
import { hex, keylimeLegacy, structureVectors, toHex, vectorBytes, vectorText } from './tpm-vectors.js';

const vectors = structureVectors();
const objects = (name: string): Uint8Array => vectorBytes('keylime', 'tpm', 'tpm2_objects', name);

describe('TPM structures: marshal(parse(x)) == x for every vector', () => {
  for (const [name, bytes] of Object.entries(vectors.tpm2bPublic)) {
    it(`TPM2B_PUBLIC ${name}`, () => {
      const pub = parseTpm2bPublic(bytes);
      expect(toHex(marshalTpm2bPublic(pub))).to.equal(toHex(bytes));
      expect(toHex(pub.raw)).to.equal(toHex(bytes.subarray(2)));
      expect(parsePublicArea(bytes).raw).to.deep.equal(pub.raw);
    });
  }
  for (const [name, bytes] of Object.entries(vectors.tpmtPublic)) {
    it(`TPMT_PUBLIC ${name}`, () => {
      expect(toHex(marshalTpmtPublic(parseTpmtPublic(bytes)))).to.equal(toHex(bytes));
      expect(parsePublicArea(bytes).raw).to.deep.equal(bytes);
    });
  }
  for (const [name, bytes] of Object.entries(vectors.attest)) {
    it(`TPMS_ATTEST ${name}`, () => {
      const attest = parseTpmsAttest(bytes);
      expect(toHex(marshalTpmsAttest(attest))).to.equal(toHex(bytes));
      expect(attest.raw).to.deep.equal(bytes);
    });
  }
  for (const [name, bytes] of Object.entries(vectors.signature)) {
    it(`TPMT_SIGNATURE ${name}`, () => {
      expect(toHex(marshalTpmtSignature(parseTpmtSignature(bytes)))).to.equal(toHex(bytes));
    });
  }
  for (const [name, bytes] of Object.entries(vectors.pcrBlob)) {
    it(`PCR blob ${name}`, () => {
      expect(toHex(marshalPcrBlobBanks(parsePcrBlob(bytes).untrustedBanks))).to.equal(toHex(bytes));
    });
  }
  it('quote strings: Keylime checkquote wire format and rust-keylime test-quote.txt', () => {
    for (const text of [vectorText('keylime', 'tpm', 'checkquote', 'quote_wire_format.txt'), vectorText('rust-keylime', 'test-quote.txt')]) {
      expect(formatQuoteString(parseQuoteString(text))).to.equal(text.trim());
    }
  });
});

describe('TPM structures: parsed fields', () => {
  it('Keylime checkquote TPMS_ATTEST (tpm2_objects_test.py::test_unmarshal_tpms_attest)', () => {
    const attest = parseTpmsAttest(vectors.attest['keylime checkquote'] as Uint8Array);
    expect(attest.type).to.equal(TPM_ST_ATTEST_QUOTE);
    expect(toHex(attest.extraData)).to.equal('4169354d35536a596a6e6b797634503769744831');
    expect(attest.clockInfo).to.deep.equal({ clock: 1284787942n, resetCount: 3, restartCount: 0, safe: true });
    expect(attest.firmwareVersion).to.equal(0x2019102300163636n);
    expect(toHex(attest.qualifiedSigner)).to.equal('000b38b5c765a87a73fe6ee657a6dd8b7695b41938f994113a3d74263d9d2ea50334');
    if (attest.type === TPM_ST_ATTEST_QUOTE) {
      expect(attest.attested.pcrSelect).to.deep.equal([{ hashAlg: TPM_ALG_SHA256, sizeofSelect: 3, pcrs: [16] }]);
      expect(toHex(attest.attested.pcrDigest)).to.equal('6d4d3749132f6257172164cd5ff3135f447973d4a5c84e018901f6753705b701');
    }
  });

  it('rust-keylime test-quote.txt: extraData "TEST", SHA1 PCR 16 = 1749fe7b…', () => {
    const parts = parseQuoteString(vectorText('rust-keylime', 'test-quote.txt'));
    expect(Buffer.from(parseTpmsAttest(parts.attest).extraData).toString('ascii')).to.equal('TEST');
    const blob = parsePcrBlob(parts.pcrBlob);
    expect(toHex(blob.untrustedBanks[0]?.pcrs.get(16) as Uint8Array)).to.equal('1749fe7b66b2acb66838ba3612a72cacf8938b84');
    expect(parseTpmtSignature(parts.signature)).to.include({ sigAlg: TPM_ALG_RSASSA, hashAlg: 0x0004 });
  });

  it('Windows AK creation attestation parses as TPM_ST_ATTEST_CREATION naming the AK', () => {
    const attest = parseTpmsAttest(vectors.attest['go-attestation Windows AK creation'] as Uint8Array);
    expect(attest.type).to.equal(TPM_ST_ATTEST_CREATION);
    if (attest.type === TPM_ST_ATTEST_CREATION) {
      expect(attest.attested.objectName).to.deep.equal(tpmObjectName(vectors.tpmtPublic['go-attestation Windows AK'] as Uint8Array));
    }
  });

  it('keylime legacy ek.pub: TCG template L-1 (attributes 0x000300b2, AES-128-CFB, PolicyA)', () => {
    const ek = parseTpm2bPublic(keylimeLegacy('ek.pub'));
    expect(ek).to.include({ type: TPM_ALG_RSA, nameAlg: TPM_ALG_SHA256, objectAttributes: 0x000300b2 });
    expect(ek.parameters).to.deep.include({ symmetric: { algorithm: TPM_ALG_AES, keyBits: 128, mode: 0x0043 } });
    expect(toHex(ek.authPolicy)).to.equal('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
  });
});

describe('TPM object names', () => {
  it('keylime ak.tpm2b_public.bin (tpm2_objects_test.py::test_get_tpm2b_public_name)', () => {
    expect(toHex(tpmObjectName(parseTpm2bPublic(objects('ak.tpm2b_public.bin')))))
      .to.equal('000b347dbfebe5bdbc55f6782a3cba91610f9d1b554a1aef07b4db28cf36da939009');
  });
  it('keylime test-data ak.pub gives ak.name', () => {
    expect(tpmObjectName(parseTpm2bPublic(keylimeLegacy('ak.pub')))).to.deep.equal(keylimeLegacy('ak.name'));
  });
  it('go-tpm-tools GCE AK (TPMT_PUBLIC bytes) is 000bf175bdb5…c2a4', () => {
    const name = toHex(tpmObjectName(vectors.tpmtPublic['go-tpm-tools GCE AK'] as Uint8Array));
    expect(name.startsWith('000bf175bdb5')).to.equal(true);
    expect(name.endsWith('c2a4')).to.equal(true);
  });
});

describe('TPMT_PUBLIC ⇄ node:crypto keys', () => {
  it('RSA without symmetric: 2048-bit, e = 65537, n as Keylime expects', () => {
    const key = publicKeyFromTpmtPublic(parseTpm2bPublic(objects('rsa_signing_key_no_sym.tpm2b_public.bin')));
    const jwk = key.export({ format: 'jwk' });
    expect(key.asymmetricKeyDetails).to.deep.include({ modulusLength: 2048, publicExponent: 65537n });
    expect(BigInt(`0x${Buffer.from(jwk.n as string, 'base64url').toString('hex')}`).toString().slice(0, 20)).to.equal('25596898629667927032');
  });

  it('ECC P-256 without symmetric: x, y as Keylime expects', () => {
    const jwk = publicKeyFromTpmtPublic(parseTpm2bPublic(objects('ecc_signing_key_no_sym.tpm2b_public.bin'))).export({ format: 'jwk' });
    expect(jwk.crv).to.equal('P-256');
    expect(BigInt(`0x${Buffer.from(jwk.x as string, 'base64url').toString('hex')}`))
      .to.equal(90132887618692975484254453731651094410483286444689191401164175504334705501424n);
    expect(BigInt(`0x${Buffer.from(jwk.y as string, 'base64url').toString('hex')}`))
      .to.equal(42858336962839421935559570622369777529185491150475599613778789950332157332666n);
  });

  it('RSA with a NULL scheme parses to a key (test_pubkey_from_tpm2b_public_rsa_2)', () => {
    expect(publicKeyFromTpmtPublic(parseTpm2bPublic(objects('rsa_null_scheme.tpm2b_public.bin'))).asymmetricKeyType).to.equal('rsa');
  });

  it('rejects an ECC point that is not on the curve with TpmKeyError', () => {
    const pub = parseTpm2bPublic(objects('ecc_signing_key_no_sym.tpm2b_public.bin'));
    if (pub.type !== TPM_ALG_ECC) throw new Error('vector is ECC');
    const y = pub.unique.y.slice();
    y[31] = (y[31] ?? 0) ^ 1;
    expect(() => publicKeyFromTpmtPublic({ ...pub, unique: { x: pub.unique.x, y } }))
      .to.throw(/TPM key: not a valid public key/).with.property('code', 'ERR_TPM_KEY');
  });

  it('rebuilds the Infineon EK public areas byte for byte from their certificates (templates L-1, L-2)', () => {
    for (const [cert, template, expected] of [
      ['infineon_slb9670_rsa_ek.der', EK_TEMPLATE_RSA_2048, 'infineon_rsa_ek.tpm2b_public.bin'],
      ['infineon_slb9670_ecc_ek.der', EK_TEMPLATE_ECC_P256, 'infineon_ecc_ek.tpm2b_public.bin'],
    ] as const) {
      const key = new X509Certificate(vectorBytes('keylime', 'ek_certs', cert)).publicKey;
      expect(toHex(marshalTpm2bPublic(tpmtPublicFromKey(key, template)))).to.equal(toHex(objects(expected)));
    }
  });

  it('round-trips a generated P-256 key through an AK template', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = tpmtPublicFromKey(publicKey, AK_TEMPLATE_ECC_P256);
    expect(publicKeyFromTpmtPublic(parseTpmtPublic(pub.raw)).equals(publicKey)).to.equal(true);
    expect(() => tpmtPublicFromKey(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, AK_TEMPLATE_ECC_P256))
      .to.throw(/not an ECC key on the template curve/);
  });
});

describe('checkAkAttributes', () => {
  it('accepts Keylime\'s AK (0x00050072) and the Windows AK with noDA (0x00050472)', () => {
    expect(checkAkAttributes(parseTpm2bPublic(objects('ak.tpm2b_public.bin')))).to.deep.equal([]);
    expect(checkAkAttributes(parseTpmtPublic(vectors.tpmtPublic['go-attestation Windows AK'] as Uint8Array))).to.deep.equal([]);
  });
  it('rejects an EK (restricted decryption key)', () => {
    expect(checkAkAttributes(parseTpm2bPublic(keylimeLegacy('ek.pub')))).to.deep.equal([
      'attributes 0x000300b2 lack userWithAuth, sign',
      'attributes 0x000300b2 must not include decrypt',
    ]);
  });
  it('rejects an unrestricted signing key', () => {
    const pub = parseTpm2bPublic(objects('rsa_signing_key_no_sym.tpm2b_public.bin'));
    expect(checkAkAttributes({ ...pub, objectAttributes: 0x00040072 })).to.deep.equal(['attributes 0x00040072 lack restricted']);
  });
});

describe('PCR blob marshalling', () => {
  it('spreads 24 PCRs over 3 TPML_DIGESTs (132 + 4 + 3 × 532 bytes) and parses back', () => {
    const pcrs = new Map(Array.from({ length: 24 }, (_, i) => [i, new Uint8Array(20).fill(i)] as const));
    const blob = marshalPcrBlob('sha1', pcrs);
    expect(blob.length).to.equal(132 + 4 + 3 * 532);
    expect(parsePcrBlob(blob).untrustedBanks[0]?.pcrs).to.deep.equal(pcrs);
  });
  it('writes the Keylime checkquote blob byte for byte from its one PCR', () => {
    const expected = vectors.pcrBlob['keylime checkquote'] as Uint8Array;
    const blob = marshalPcrBlob('sha256', new Map([[16, hex('d471c0674951f0ef075aecdd42fbefa6eca6019820add0bd222d1c4e6242ce6f')]]));
    expect(toHex(blob)).to.equal(toHex(expected));
  });
});
