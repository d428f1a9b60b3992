import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { readPublicKeyBlob, UnsupportedImaKey } from '../../lib/ima/ima-keyring.js';
import { loadCertStore } from '../../lib/pki/cert-store-files.js';
import { ekPublicMatchesCertificate, verifyEkCertificate } from '../../lib/tpm/ek-certificate.js';
import { CertificateParseError } from '../../lib/tpm/tpm-errors.js';
import { parseTpm2bPublic } from '../../lib/tpm/tpmt-public.js';
import { withCorruptKeyAlgorithm } from '../../lib/fuzz/corrupt-certificate.js';
import { VECTORS_DIR } from '../helpers/paths.js';

const EK_CERTS = path.join(VECTORS_DIR, 'keylime', 'ek_certs');

describe('certificates with corrupt public-key algorithm bytes (issue 11 item 5)', function () {
  for (const [file, ekPublic] of [
    ['infineon_slb9670_rsa_ek.der', 'infineon_rsa_ek.tpm2b_public.bin'],
    ['infineon_slb9670_ecc_ek.der', 'infineon_ecc_ek.tpm2b_public.bin'],
  ] as const) {
    const corrupt = withCorruptKeyAlgorithm(readFileSync(path.join(EK_CERTS, file)));

    it(`${file}: comparing it with an EK public area throws CertificateParseError`, function () {
      const ekTpm = readFileSync(path.join(VECTORS_DIR, 'keylime', 'tpm', 'tpm2_objects', ekPublic));
      let caught: unknown;
      try {
        ekPublicMatchesCertificate(parseTpm2bPublic(ekTpm), corrupt);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(CertificateParseError);
      expect((caught as CertificateParseError).code).to.equal('ERR_CERTIFICATE_PARSE');
      expect((caught as Error).message).to.match(/^certificate: its public key cannot be read \(corrupt or unsupported algorithm/);
    });

    it(`${file}: checking it against the vendor store says untrusted, without throwing`, function () {
      const store = loadCertStore(path.join(VECTORS_DIR, 'keylime', 'tpm_cert_store'));
      const verdict = verifyEkCertificate(corrupt, store);
      expect(verdict.valid).to.equal(false);
    });

    it(`${file}: as an ima-buf key blob it is an unsupported key, not a crash`, function () {
      expect(() => readPublicKeyBlob(corrupt)).to.throw(UnsupportedImaKey, /^certificate public key cannot be read/);
    });
  }
});
