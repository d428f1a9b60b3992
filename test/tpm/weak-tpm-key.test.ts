import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { parsePublicArea } from '../../lib/tpm/tpmt-public.js';
import { hasRocaFingerprint, tpmKeyWeakness } from '../../lib/tpm/weak-tpm-key.js';
import { vectorPath } from '../helpers/paths.js';
import { rocaModulus } from '../helpers/roca-modulus.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/** A TPM2B_PUBLIC RSA area of `modulus` with an AK's attributes (TPM 2.0 Part 2 §12.2.4; keyBits = the modulus's size). */
function rsaAkArea(modulus: Uint8Array): Uint8Array {
  const head = Buffer.from('0001000b00050072000000100014000b', 'hex');
  const tail = Buffer.alloc(8);
  tail.writeUInt16BE(modulus.length * 8, 0);
  tail.writeUInt32BE(0, 2);
  tail.writeUInt16BE(modulus.length, 6);
  return new Uint8Array(Buffer.concat([head, tail, modulus]));
}

describe('TPM keys too weak to trust: short RSA and the ROCA fingerprint (CVE-2017-15361)', function () {
  this.timeout(60_000);

  it('finds the fingerprint in a modulus of two primes built as the flawed generator built them, and refuses such an AK', function () {
    const modulus = rocaModulus();
    expect(modulus).to.have.length(256);
    expect(hasRocaFingerprint(modulus)).to.equal(true);
    expect(tpmKeyWeakness(parsePublicArea(rsaAkArea(modulus)))).to.match(/^is an RSA key made by a TPM with the ROCA flaw \(CVE-2017-15361/);
  });

  it('passes real EK certificates (Infineon SLB 9670, STMicroelectronics) and freshly generated RSA-2048 keys', function () {
    const moduli = ['infineon_slb9670_rsa_ek.der', 'stm_rsa_ek_extra_data.der'].map((file) => {
      const der = readFileSync(vectorPath('keylime', 'ek_certs', file));
      // The STM certificate carries trailing bytes: its public key is read from the certificate OpenSSL accepts.
      return new X509Certificate(der).publicKey.export({ format: 'jwk' }).n as string;
    });
    for (let i = 0; i < 8; i += 1) moduli.push(newRsaKeyPairSync().publicKey.export({ format: 'jwk' }).n as string);
    for (const n of moduli) {
      const modulus = new Uint8Array(Buffer.from(n, 'base64url'));
      expect(hasRocaFingerprint(modulus), n.slice(0, 16)).to.equal(false);
      expect(tpmKeyWeakness(parsePublicArea(rsaAkArea(modulus)))).to.equal(null);
    }
  });

  it('refuses an RSA key under 2048 bits, and says nothing of an ECC key', function () {
    const short = new Uint8Array(Buffer.from(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }).n as string, 'base64url'));
    expect(tpmKeyWeakness(parsePublicArea(rsaAkArea(short)))).to.equal('is a 1024-bit RSA key (at least 2048 bits are required)');
    // keyBits 2048 and 256 bytes, the first 128 zero: what the key holds, not its buffer, is counted.
    const padded = new Uint8Array(Buffer.concat([Buffer.alloc(128), short]));
    expect(tpmKeyWeakness(parsePublicArea(rsaAkArea(padded)))).to.equal('is a 1024-bit RSA key (at least 2048 bits are required)');
    const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const x = Buffer.from(ecc.x as string, 'base64url');
    const y = Buffer.from(ecc.y as string, 'base64url');
    const area = Buffer.concat([Buffer.from('0023000b00050072000000100018000b00030010', 'hex'), Buffer.from([0, 32]), x, Buffer.from([0, 32]), y]);
    expect(tpmKeyWeakness(parsePublicArea(new Uint8Array(area)))).to.equal(null);
  });

  it('answers for any bytes without throwing: empty, random moduli', function () {
    expect(hasRocaFingerprint(new Uint8Array(0))).to.equal(false);
    for (let i = 0; i < 200; i += 1) expect(hasRocaFingerprint(randomBytes(256))).to.equal(false);
  });
});
