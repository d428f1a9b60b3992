import { expect } from 'chai';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';
import { defaultCertStoreDir, loadCertStore, loadDefaultCertStore } from '../../lib/pki/cert-store-files.js';
import { certificatesDer, createCertStore } from '../../lib/tpm/cert-store.js';
import { readDerCertificate } from '../../lib/tpm/certificate-quirks.js';
import { ekPublicMatchesCertificate, MAX_EK_INTERMEDIATES, MAX_INTERMEDIATE_RSA_BITS, MAX_INTERMEDIATE_RSA_EXPONENT_BITS, verifyEkCertificate } from '../../lib/tpm/ek-certificate.js';
import { vectorBytes, vectorText } from './tpm-vectors.js';
import { vectorPath } from '../helpers/paths.js';

const ekCert = (name: string): Uint8Array => vectorBytes('keylime', 'ek_certs', name);
const store = loadDefaultCertStore();

describe('EK CA store', () => {
  it('the default store is the packaged fixtures/tpm_cert_store with Keylime\'s 51 certificates', () => {
    expect(defaultCertStoreDir()).to.equal(path.join(REPO_ROOT, 'fixtures', 'tpm_cert_store'));
    expect(store.entries).to.have.length(51);
    expect(readdirSync(defaultCertStoreDir())).to.include('LICENSE');
  });

  it('holds the same certificates as the shared Keylime vectors', () => {
    const shared = loadCertStore(vectorPath('keylime', 'tpm_cert_store'));
    expect(shared.entries.map((e) => e.cert.fingerprint256)).to.deep.equal(store.entries.map((e) => e.cert.fingerprint256));
  });

  it('reads every certificate of a multi-certificate PEM', () => {
    const chain = createCertStore([{ name: 'chain.pem', data: vectorText('keylime', 'ek_certs', 'test_iak_idevid_chain.pem') }]);
    expect(chain.entries.map((e) => e.name)).to.deep.equal(['chain.pem#1', 'chain.pem#2']);
  });

  it('names the entry that is not a certificate, with ERR_CERTIFICATE_PARSE', () => {
    expect(() => createCertStore([{ name: 'junk.pem', data: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }]))
      .to.throw(/certificate: junk\.pem: 3 bytes are not a DER X\.509 certificate/).with.property('code', 'ERR_CERTIFICATE_PARSE');
    expect(() => certificatesDer('no pem here')).to.throw(/no PEM CERTIFICATE block found/);
  });
});

describe('verifyEkCertificate (Keylime test_cert_utils.py::test_verify_ek)', () => {
  it('accepts the ST RSA EK certificate with trailing data, through the named quirk, signed by STM_RSA_05I.pem', () => {
    const verdict = verifyEkCertificate(ekCert('stm_rsa_ek_extra_data.der'), store);
    expect(verdict).to.deep.include({ valid: true, anchor: 'STM_RSA_05I.pem', quirks: ['trailing-data-after-certificate'] });
  });

  it('accepts the ST ECC EK certificate, signed by STM_ECC_01I.pem, with no quirk', () => {
    expect(verifyEkCertificate(ekCert('stm_ecc_ek.der'), store)).to.deep.include({ valid: true, anchor: 'STM_ECC_01I.pem', quirks: [] });
  });

  it('accepts the Nuvoton root whose issuer RDN SET is not DER-sorted (Keylime issue #944) against NUVO_2110.pem', () => {
    expect(verifyEkCertificate(ekCert('nuvoton_root_ca_2110_nonstrict_der.der'), store)).to.deep.include({ valid: true, anchor: 'NUVO_2110.pem' });
  });

  it('rejects the Infineon EK certificates: their Manufacturing CA 035 is not in the store', () => {
    for (const name of ['infineon_slb9670_rsa_ek.der', 'infineon_slb9670_ecc_ek.der']) {
      const verdict = verifyEkCertificate(ekCert(name), store);
      expect(verdict.valid).to.equal(false);
      if (!verdict.valid) {
        expect(verdict.reason).to.match(/no certificate in the store signed ".*Manufacturing CA 035"/);
      }
    }
  });

  it('rejects the IDevID/IAK test certificates against the vendor store (test_iak_idevid_cert_checks)', () => {
    expect(verifyEkCertificate(ekCert('test_idevid.der'), store).valid).to.equal(false);
    expect(verifyEkCertificate(ekCert('test_iak.der'), store).valid).to.equal(false);
  });

  it('follows supplied intermediates up to a store certificate', () => {
    const [intermediate, root] = certificatesDer(vectorText('keylime', 'ek_certs', 'test_iak_idevid_chain.pem'));
    const rootOnly = createCertStore([{ name: 'root.der', data: root as Uint8Array }]);
    expect(verifyEkCertificate(ekCert('test_iak.der'), rootOnly).valid).to.equal(false);
    const verdict = verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: [intermediate as Uint8Array] });
    expect(verdict.valid).to.equal(true);
    if (verdict.valid) {
      expect(verdict.anchor).to.equal('root.der');
      expect(verdict.chain.map((subject) => subject.split(', ').at(-1))).to.deep.equal(['CN=Isaac HPE Intermediate CA', 'CN=Isaac HPE Root CA']);
    }
  });

  it('does not accept a non-CA certificate as an intermediate', () => {
    const [, root] = certificatesDer(vectorText('keylime', 'ek_certs', 'test_iak_idevid_chain.pem'));
    const rootOnly = createCertStore([{ name: 'root.der', data: root as Uint8Array }]);
    expect(verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: [ekCert('test_idevid.der')] }).valid).to.equal(false);
  });

  it(`refuses more than ${MAX_EK_INTERMEDIATES} intermediates before checking any signature (hunt H6)`, () => {
    const [intermediate, root] = certificatesDer(vectorText('keylime', 'ek_certs', 'test_iak_idevid_chain.pem'));
    const rootOnly = createCertStore([{ name: 'root.der', data: root as Uint8Array }]);
    const sent = (count: number): Uint8Array[] => Array.from({ length: count }, () => intermediate as Uint8Array);
    expect(verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: sent(MAX_EK_INTERMEDIATES) }).valid).to.equal(true);
    const verdict = verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: sent(MAX_EK_INTERMEDIATES + 1) });
    expect(verdict).to.include({ valid: false, reason: `EK certificate: 9 certificates were sent with it, at most 8 are looked at` });
  });

  it(`refuses an intermediate with an RSA key over ${MAX_INTERMEDIATE_RSA_BITS} bits, and takes one of ${MAX_INTERMEDIATE_RSA_BITS} (hunt H6)`, () => {
    const [intermediate, root] = certificatesDer(vectorText('keylime', 'ek_certs', 'test_iak_idevid_chain.pem'));
    const rootOnly = createCertStore([{ name: 'root.der', data: root as Uint8Array }]);
    const largest = verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: [caWithRsaModulusBits(MAX_INTERMEDIATE_RSA_BITS), intermediate as Uint8Array] });
    expect(largest.valid).to.equal(true);
    const verdict = verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: [caWithRsaModulusBits(8192), intermediate as Uint8Array] });
    expect(verdict).to.include({ valid: false, reason: 'EK certificate: the certificate "CN=decoy CA" sent with it has a 8192-bit RSA key (at most 4096)' });
  });

  it('refuses an intermediate whose RSA exponent is over 64 bits, or whose key is neither RSA nor EC, before checking any signature (review r8)', () => {
    const [intermediate, root] = certificatesDer(vectorText('keylime', 'ek_certs', 'test_iak_idevid_chain.pem'));
    const rootOnly = createCertStore([{ name: 'root.der', data: root as Uint8Array }]);
    const judge = (decoy: Uint8Array): ReturnType<typeof verifyEkCertificate> =>
      verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: [decoy, intermediate as Uint8Array] });
    // 3072 bits is the largest modulus for which OpenSSL itself does not bound the exponent.
    expect(judge(caWithKey(rsaPublicKeyInfo(3072, MAX_INTERMEDIATE_RSA_EXPONENT_BITS)))).to.include({ valid: true });
    expect(judge(caWithKey(rsaPublicKeyInfo(3072, 3071)))).to.include({
      valid: false,
      reason: 'EK certificate: the certificate "CN=decoy CA" sent with it has an RSA key with a 3071-bit public exponent (at most 64)',
    });
    const dsa = generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 }).publicKey.export({ type: 'spki', format: 'der' });
    expect(judge(caWithKey(dsa))).to.include({
      valid: false,
      reason: 'EK certificate: the certificate "CN=decoy CA" sent with it has a dsa key (only RSA and EC keys are looked at)',
    });
  });

  it('reads strictly when no quirk is needed, and throws ERR_CERTIFICATE_PARSE for garbage', () => {
    expect(readDerCertificate(ekCert('stm_ecc_ek.der')).quirks).to.deep.equal([]);
    expect(() => verifyEkCertificate(new Uint8Array([0x30, 0x03, 1, 2, 3]), store)).to.throw(/not a DER X\.509 certificate/);
  });
});

describe('ekPublicMatchesCertificate', () => {
  const objects = (name: string): Uint8Array => vectorBytes('keylime', 'tpm', 'tpm2_objects', name);
  it('matches the Infineon EK public areas with their certificates, and not crosswise', () => {
    expect(ekPublicMatchesCertificate(objects('infineon_rsa_ek.tpm2b_public.bin'), ekCert('infineon_slb9670_rsa_ek.der'))).to.equal(true);
    expect(ekPublicMatchesCertificate(objects('infineon_ecc_ek.tpm2b_public.bin'), ekCert('infineon_slb9670_ecc_ek.der'))).to.equal(true);
    expect(ekPublicMatchesCertificate(objects('infineon_rsa_ek.tpm2b_public.bin'), ekCert('stm_rsa_ek_extra_data.der'))).to.equal(false);
    expect(ekPublicMatchesCertificate(objects('infineon_ecc_ek.tpm2b_public.bin'), ekCert('infineon_slb9670_rsa_ek.der'))).to.equal(false);
  });
});

/**
 * DER of a CA certificate whose RSA key has a `bits`-bit modulus: any odd number of that size parses
 * as an RSA public key, so no prime pair has to be generated (an 8192-bit one takes seconds).
 */
function caWithRsaModulusBits(bits: number): Uint8Array {
  const modulus = randomBytes(bits / 8);
  modulus[0] = (modulus[0] ?? 0) | 0x80;
  modulus[modulus.length - 1] = (modulus[modulus.length - 1] ?? 0) | 1;
  const signer = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.serialNumber = '02';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.publicKey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger(modulus.toString('hex'), 16), new forge.jsbn.BigInteger('65537', 10));
  cert.setSubject([{ name: 'commonName', value: 'decoy CA' }]);
  cert.setIssuer([{ name: 'commonName', value: 'decoy CA' }]);
  cert.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true }]);
  cert.sign(forge.pki.privateKeyFromPem(signer.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()), forge.md.sha256.create());
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
}

/** DER SubjectPublicKeyInfo of an RSA key with a random `bits`-bit modulus and a random `exponentBits`-bit odd exponent. */
function rsaPublicKeyInfo(bits: number, exponentBits: number): Uint8Array {
  const topBitSet = (size: number): Buffer => {
    const value = randomBytes(Math.ceil(size / 8));
    const spare = value.length * 8 - size;
    value[0] = ((value[0] ?? 0) & (0xff >> spare)) | (0x80 >> spare);
    value[value.length - 1] = (value[value.length - 1] ?? 0) | 1;
    return value;
  };
  const jwk = { kty: 'RSA', n: topBitSet(bits).toString('base64url'), e: topBitSet(exponentBits).toString('base64url') };
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/**
 * DER of a CA certificate named "decoy CA" that carries `publicKeyInfo` (any key type): made with an
 * RSA key, whose SubjectPublicKeyInfo is then swapped (its own signature is never checked here).
 */
function caWithKey(publicKeyInfo: Uint8Array): Uint8Array {
  const cert = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(caWithRsaModulusBits(2048)).toString('binary')));
  const tbs = (cert.value as forge.asn1.Asn1[])[0] as forge.asn1.Asn1;
  // TBSCertificate: [0] version, serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo (RFC 5280 §4.1).
  (tbs.value as forge.asn1.Asn1[])[6] = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(publicKeyInfo).toString('binary')));
  return Buffer.from(forge.asn1.toDer(cert).getBytes(), 'binary');
}
