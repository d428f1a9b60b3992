import { expect } from 'chai';
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';
import { defaultCertStoreDir, loadCertStore, loadDefaultCertStore } from '../../lib/pki/cert-store-files.js';
import { certificatesDer, createCertStore } from '../../lib/tpm/cert-store.js';
import { readDerCertificate } from '../../lib/tpm/certificate-quirks.js';
import { ekPublicMatchesCertificate, MAX_EK_INTERMEDIATES, MAX_EK_SIGNATURE_CHECKS, MAX_INTERMEDIATE_RSA_BITS, MAX_INTERMEDIATE_RSA_EXPONENT_BITS, verifyEkCertificate } from '../../lib/tpm/ek-certificate.js';
import { caWithKey, caWithRsaModulusBits, ecPublicKeyInfo, explicitCurvePublicKeyInfo, rsaPublicKeyInfo, rolloverWithoutKeyIds, sameNameCaRing } from './decoy-ca-certificates.js';
import { vectorBytes, vectorText } from './tpm-vectors.js';
import { vectorPath } from '../helpers/paths.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

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

  it('refuses an intermediate with an EC key on any curve but P-256, P-384 and P-521, before checking any signature (hunt: binary and explicit curves)', function () {
    this.timeout(20_000);
    const [intermediate, root] = certificatesDer(vectorText('keylime', 'ek_certs', 'test_iak_idevid_chain.pem'));
    const rootOnly = createCertStore([{ name: 'root.der', data: root as Uint8Array }]);
    const judge = (decoy: Uint8Array): { verdict: ReturnType<typeof verifyEkCertificate>; checks: number } =>
      countingSignatureChecks(() => verifyEkCertificate(ekCert('test_iak.der'), rootOnly, { intermediates: [decoy, intermediate as Uint8Array] }));
    for (const curve of ['prime256v1', 'secp384r1', 'secp521r1']) {
      expect(judge(caWithKey(ecPublicKeyInfo(curve))).verdict, curve).to.include({ valid: true });
    }
    const refusals: Array<[string, Uint8Array, string]> = [
      ['sect571k1 (binary field)', caWithKey(ecPublicKeyInfo('sect571k1')), 'an EC key on sect571k1'],
      ['secp256k1 (no TPM EK CA uses it)', caWithKey(ecPublicKeyInfo('secp256k1')), 'an EC key on secp256k1'],
      ['a 521-bit prime curve spelled out', caWithKey(explicitCurvePublicKeyInfo(521)), 'an EC key on a curve that has no name'],
    ];
    for (const [title, decoy, key] of refusals) {
      const { verdict, checks } = judge(decoy);
      expect(verdict, title).to.include({
        valid: false,
        reason: `EK certificate: the certificate "CN=decoy CA" sent with it has ${key} (only P-256, P-384 and P-521 are looked at)`,
      });
      expect(checks, title).to.equal(0);
    }
  });

  it('takes a vendor chain sent whole: the ST ECC intermediate (P-256) and its root (P-384) with only the root in the store', () => {
    const rootPem = store.entries.find((entry) => entry.name === 'STM_ECC_01RT.pem');
    const intermediatePem = store.entries.find((entry) => entry.name === 'STM_ECC_01I.pem');
    if (rootPem === undefined || intermediatePem === undefined) throw new Error('the vendor store lacks the ST ECC CAs');
    expect(rootPem.cert.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('secp384r1');
    const rootOnly = createCertStore([{ name: 'root.pem', data: rootPem.cert.raw }]);
    const verdict = verifyEkCertificate(ekCert('stm_ecc_ek.der'), rootOnly, { intermediates: [intermediatePem.cert.raw, rootPem.cert.raw] });
    expect(verdict).to.deep.include({ valid: true, anchor: 'root.pem' });
  });

  it(`makes at most ${MAX_EK_SIGNATURE_CHECKS} signature checks however the certificates sent with it sign each other (hunt: 8 same-named CAs cost 36 checks)`, function () {
    this.timeout(30_000);
    const { intermediates, leaf } = sameNameCaRing(MAX_EK_INTERMEDIATES, newRsaKeyPairSync().publicKey);
    const { verdict, checks } = countingSignatureChecks(() => verifyEkCertificate(leaf, store, { intermediates }));
    expect(verdict).to.include({ valid: false, reason: `EK certificate: no chain to the store was found within ${MAX_EK_SIGNATURE_CHECKS} signature checks` });
    expect(checks).to.equal(MAX_EK_SIGNATURE_CHECKS);
  });

  it('follows a CA key rollover without key identifiers whatever the order the CAs are sent in (review: a CA that did not sign the EK certificate may have signed the next link)', function () {
    this.timeout(30_000);
    const { root, newCa, link, leaf } = rolloverWithoutKeyIds(newRsaKeyPairSync().publicKey);
    const rootOnly = createCertStore([{ name: 'root.der', data: root }]);
    for (const intermediates of [[link, newCa], [newCa, link]]) {
      expect(verifyEkCertificate(leaf, rootOnly, { intermediates })).to.deep.include({ valid: true, chain: ['CN=X', 'CN=X', 'CN=R'], anchor: 'root.der' });
    }
  });

  it(`makes at most ${MAX_EK_SIGNATURE_CHECKS} signature checks for one EK certificate, store certificates included`, function () {
    this.timeout(30_000);
    const sameNamed = sameNameCaRing(MAX_EK_SIGNATURE_CHECKS + 1, newRsaKeyPairSync().publicKey).intermediates;
    const crowded = createCertStore(sameNamed.map((data, index) => ({ name: `x${index}.der`, data })));
    const { leaf } = sameNameCaRing(1, newRsaKeyPairSync().publicKey);
    const { verdict, checks } = countingSignatureChecks(() => verifyEkCertificate(leaf, crowded));
    expect(verdict).to.include({ valid: false, reason: `EK certificate: no chain to the store was found within ${MAX_EK_SIGNATURE_CHECKS} signature checks` });
    expect(checks).to.equal(MAX_EK_SIGNATURE_CHECKS);
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
 * `run`'s result and how many certificate signatures it checked: X509Certificate.verify is wrapped for
 * the call (each check still runs), which is what an EK chain costs in CPU.
 */
function countingSignatureChecks<T>(run: () => T): { verdict: T; checks: number } {
  const original = X509Certificate.prototype.verify;
  let checks = 0;
  X509Certificate.prototype.verify = function verify(this: X509Certificate, key: KeyObject): boolean {
    checks += 1;
    return original.call(this, key);
  };
  try {
    return { verdict: run(), checks };
  } finally {
    X509Certificate.prototype.verify = original;
  }
}
