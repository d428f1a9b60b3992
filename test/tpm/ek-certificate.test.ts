import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';
import { defaultCertStoreDir, loadCertStore, loadDefaultCertStore } from '../../lib/pki/cert-store-files.js';
import { certificatesDer, createCertStore } from '../../lib/tpm/cert-store.js';
import { readDerCertificate } from '../../lib/tpm/certificate-quirks.js';
import { ekPublicMatchesCertificate, verifyEkCertificate } from '../../lib/tpm/ek-certificate.js';
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
