import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { ImaParseError } from '../../lib/bytes/parse-errors.js';
import { certificateSubjectKeyId, decodeEcdsaSignature } from '../../lib/ima/internal/der-reader.js';
import { parseImaAsciiList } from '../../lib/ima/ascii-list-parser.js';
import { imaKeyIdV2, ImaKeyrings, readPublicKeyBlob, UnsupportedImaKey } from '../../lib/ima/ima-keyring.js';
import { parseImaSignature, verifyImaSignature } from '../../lib/ima/internal/ima-signature.js';
import { vectorBytes, verificationVector } from './ima-vectors.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const keyFile = (name: string): Buffer => vectorBytes('keylime', 'ima', 'verification', 'ima_keys', name);
const rsaKey = createPublicKey(keyFile('rsa2048pub.pem'));
const ecKey = createPublicKey(createPrivateKey(keyFile('secp256k1.pem')));
const [dd, zmore] = parseImaAsciiList(verificationVector('signatures_2_entries.ascii'));

function rings(...keys: KeyObject[]): ImaKeyrings {
  const keyrings = new ImaKeyrings();
  keys.forEach((key) => keyrings.ring('tenant_keyring').add(key));
  return keyrings;
}

/** A v2 signature blob: type 3, version 2, hash algo, keyid, size, signature (kernel signature_v2_hdr). */
function blob(hashAlgo: number, keyId: number, signature: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUInt8(3, 0);
  header.writeUInt8(2, 1);
  header.writeUInt8(hashAlgo, 2);
  header.writeUInt32BE(keyId, 3);
  header.writeUInt16BE(signature.length, 7);
  return Buffer.concat([header, signature]);
}

describe('IMA signatures (signature_v2_hdr) and key ids', () => {
  it('computes keyidv2 of the vector keys as Keylime does (f3452d23, 531f4025)', () => {
    expect(imaKeyIdV2(rsaKey)).to.equal(0xf3452d23);
    expect(imaKeyIdV2(ecKey)).to.equal(0x531f4025);
  });

  it('parses the header of the /usr/bin/dd signature', () => {
    expect(parseImaSignature(dd!.signature)).to.deep.include({ type: 3, hashAlgo: 4, keyId: 0xf3452d23 });
    expect(parseImaSignature(dd!.signature)?.signature.length).to.equal(256);
  });

  it('verifies /usr/bin/dd (RSA PKCS#1 v1.5 over the sha256 file digest) and /usr/bin/zmore (ECDSA secp256k1)', () => {
    expect(verifyImaSignature(dd!.signature, dd!.digest, rings(rsaKey))).to.equal(true);
    expect(verifyImaSignature(zmore!.signature, zmore!.digest, rings(ecKey))).to.equal(true);
  });

  it('refuses a missing key, another digest, a mismatching algorithm and malformed headers', () => {
    expect(verifyImaSignature(dd!.signature, dd!.digest, rings(ecKey))).to.equal(false);
    expect(verifyImaSignature(dd!.signature, { ...dd!.digest, hex: zmore!.digest.hex }, rings(rsaKey))).to.equal(false);
    expect(verifyImaSignature(zmore!.signature, { ...zmore!.digest, hex: dd!.digest.hex }, rings(ecKey))).to.equal(false);
    expect(verifyImaSignature(dd!.signature, { algorithm: 'sha1', hex: dd!.digest.hex }, rings(rsaKey))).to.equal(false);
    const bad = Buffer.from(zmore!.signature);
    bad.writeUInt16BE(0x4800, 7);
    expect(parseImaSignature(bad)).to.equal(undefined);
    expect(verifyImaSignature(bad, zmore!.digest, rings(ecKey))).to.equal(false);
    const v1 = Buffer.from(dd!.signature);
    v1[1] = 1;
    expect(verifyImaSignature(v1, dd!.digest, rings(rsaKey))).to.equal(false);
    expect(verifyImaSignature(Buffer.from('0302', 'hex'), dd!.digest, rings(rsaKey))).to.equal(false);
    const garbage = Buffer.concat([dd!.signature.subarray(0, 9), Buffer.alloc(256, 7)]);
    expect(verifyImaSignature(garbage, dd!.digest, rings(rsaKey))).to.equal(false);
  });

  const algorithms: Array<[string, number]> = [['sha1', 2], ['sha256', 4], ['sha384', 5], ['sha512', 6]];
  for (const curve of ['P-256', 'P-384', 'P-521', 'secp256k1']) {
    it(`verifies ECDSA ${curve} signatures over each digest algorithm, and refuses a flipped bit`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (const [alg, id] of algorithms.slice(1, 3)) {
        const content = Buffer.from(`file for ${curve}`);
        const digest = { algorithm: alg, hex: createHash(alg).update(content).digest('hex') };
        const sig = blob(id, imaKeyIdV2(publicKey), sign(alg, content, privateKey));
        expect(verifyImaSignature(sig, digest, rings(publicKey)), `${curve} ${alg}`).to.equal(true);
        const flipped = Buffer.from(sig);
        flipped[flipped.length - 3]! ^= 1;
        expect(verifyImaSignature(flipped, digest, rings(publicKey))).to.equal(false);
      }
    });
  }

  it('verifies RSA signatures with sha1 and sha512 digests', () => {
    const { privateKey, publicKey } = newRsaKeyPairSync();
    for (const [alg, id] of [algorithms[0]!, algorithms[3]!]) {
      const content = Buffer.from('binary');
      const digest = { algorithm: alg, hex: createHash(alg).update(content).digest('hex') };
      expect(verifyImaSignature(blob(id, imaKeyIdV2(publicKey), sign(alg, content, privateKey)), digest, rings(publicKey))).to.equal(true);
    }
  });

  describe('reading keys from ima-buf buffers and files', () => {
    it('reads the .ima keyring certificate of the keylime vector (DER X.509, key id from its SKI or key)', () => {
      const [entry] = parseImaAsciiList(verificationVector('keyrings_ima_buf_1_entry.ascii'));
      const key = readPublicKeyBlob(entry!.buffer);
      expect(key?.key.asymmetricKeyType).to.equal('ec');
      // Its Subject Key Identifier ends in 2c:b6:05:8c, which is also SHA-1 of its EC point's last 4 bytes.
      expect(key?.keyId).to.equal(0x2cb6058c);
      expect(imaKeyIdV2(key!.key)).to.equal(0x2cb6058c);
    });

    it('reads PEM and DER public keys and private keys, and returns undefined for other bytes', () => {
      expect(readPublicKeyBlob(keyFile('rsa2048pub.pem'))?.keyId).to.equal(0xf3452d23);
      expect(readPublicKeyBlob(rsaKey.export({ format: 'der', type: 'spki' }))?.keyId).to.equal(0xf3452d23);
      expect(readPublicKeyBlob(keyFile('secp256k1.pem'))?.keyId).to.equal(0x531f4025);
      expect(readPublicKeyBlob(Buffer.from('name=TEST;uuid=x'))).to.equal(undefined);
      expect(readPublicKeyBlob(Buffer.alloc(0))).to.equal(undefined);
    });

    it('throws UnsupportedImaKey for a key IMA cannot use (Ed25519)', () => {
      const { publicKey } = generateKeyPairSync('ed25519');
      expect(() => readPublicKeyBlob(publicKey.export({ format: 'der', type: 'spki' }))).to.throw(UnsupportedImaKey, /ed25519/);
    });
  });
});

describe('DER reader (ECDSA signatures, certificate SKI)', () => {
  const ecdsa = parseImaSignature(zmore!.signature)!.signature;

  it('decodes the /usr/bin/zmore ECDSA signature and refuses every proper prefix with ImaParseError', () => {
    const { r, s } = decodeEcdsaSignature(ecdsa);
    expect(r.toString(16)).to.equal('fe24678d21083ead47660e1a2d553a592d777c478d1b0466de6ed484b54956b3');
    expect(s.toString(16)).to.equal('cad3adb37f277bbb03544d6107751b4cd4f2289d8353fa36257400a99334d5c3');
    for (let n = 0; n < ecdsa.length; n++) {
      expect(() => decodeEcdsaSignature(ecdsa.subarray(0, n)), `prefix ${n}`).to.throw(ImaParseError);
    }
    expect(() => decodeEcdsaSignature(Buffer.concat([ecdsa, Buffer.alloc(1)]))).to.throw(ImaParseError, /1 trailing byte/);
  });

  it('throws only ImaParseError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        for (const read of [decodeEcdsaSignature, certificateSubjectKeyId]) {
          try {
            read(bytes);
          } catch (error) {
            expect(error).to.be.instanceOf(ImaParseError);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
