import { generateKeyPairSync } from 'node:crypto';
import { loadDefaultCertStore } from '../pki/cert-store-files.js';
import { certificatesDer, type CertStore } from '../tpm/cert-store.js';
import { readDerCertificate } from '../tpm/certificate-quirks.js';
import { parseCredentialBlob } from '../tpm/credential-blob.js';
import { makeCredential } from '../tpm/make-credential.js';
import { ekPublicMatchesCertificate, verifyEkCertificate } from '../tpm/ek-certificate.js';
import { tpmObjectName } from '../tpm/object-name.js';
import { parsePcrBlob } from '../tpm/pcr-blob.js';
import { parseQuoteString } from '../tpm/quote-string.js';
import { parseTpmsAttest } from '../tpm/tpms-attest.js';
import { parseTpmtSignature } from '../tpm/tpmt-signature.js';
import { parseTpm2bPublic } from '../tpm/tpmt-public.js';
import { publicKeyFromTpmtPublic } from '../tpm/tpmt-public-key.js';
import { corrupted } from './corrupt-certificate.js';
import { asText, vectorFiles, vectorFolder } from './fuzz-seeds.js';
import { bytesOf, textOf, type FuzzTarget } from './fuzz-target-kit.js';

let vendorStore: CertStore | undefined;
const store = (): CertStore => (vendorStore ??= loadDefaultCertStore());

export const EK_PUBLICS = (): Uint8Array[] =>
  vectorFiles('keylime/tpm/tpm2_objects/infineon_rsa_ek.tpm2b_public.bin', 'keylime/tpm/tpm2_objects/infineon_ecc_ek.tpm2b_public.bin');

/** Fuzz targets of the TPM structures, quotes, credentials and EK certificates. */
export const TPM_FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'tpm-public',
    description: 'TPM2B_PUBLIC (EK, AK): parse, public key, object name',
    kind: 'bytes',
    seeds: () => [...vectorFolder('keylime/tpm/tpm2_objects', /tpm2b_public/), ...vectorFiles('keylime/tpm/legacy_test_data_files/ek.pub', 'keylime/tpm/legacy_test_data_files/ak.pub')],
    run(input) {
      const pub = parseTpm2bPublic(bytesOf(input));
      publicKeyFromTpmtPublic(pub);
      tpmObjectName(pub);
    },
  },
  {
    name: 'tpm-attest',
    description: 'TPMS_ATTEST (quotes, certify)',
    kind: 'bytes',
    seeds: () => [...vectorFiles('keylime/tpm/checkquote/quote.tpms_attest.bin', 'keylime/tpm/legacy_test_data_files/quote.out'), ...vectorFolder('go-tpm-tools/attestations/gce-cos-85-nonce9009.extracted', /tpms_attest/)],
    run: (input) => void parseTpmsAttest(bytesOf(input)),
  },
  {
    name: 'tpm-signature',
    description: 'TPMT_SIGNATURE',
    kind: 'bytes',
    seeds: () => [...vectorFiles('keylime/tpm/checkquote/quote.tpmt_signature.bin', 'keylime/tpm/legacy_test_data_files/quotesig.out'), ...vectorFolder('go-tpm-tools/attestations/gce-cos-85-nonce9009.extracted', /tpmt_signature/)],
    run: (input) => void parseTpmtSignature(bytesOf(input)),
  },
  {
    name: 'pcr-blob',
    description: 'tpm2-tools PCR blob of a quote',
    kind: 'bytes',
    seeds: () => vectorFiles('keylime/tpm/checkquote/quote.pcrs.tpm2tools.bin', 'keylime/tpm/legacy_test_data_files/quotepcr.out'),
    run: (input) => void parsePcrBlob(bytesOf(input)),
  },
  {
    name: 'quote-string',
    description: "Keylime quote string r<attest>:<signature>:<pcrs> and its three parts",
    kind: 'text',
    tokens: ['r', ':', '=', '==', 'AAAA', '/', '+', '\n'],
    seeds: () => [...asText(vectorFiles('keylime/tpm/checkquote/quote_wire_format.txt', 'rust-keylime/test-quote.txt')).map((t) => t.trim()), 'r::', 'r'],
    run(input) {
      const parts = parseQuoteString(textOf(input));
      parseTpmsAttest(parts.attest);
      parseTpmtSignature(parts.signature);
      parsePcrBlob(parts.pcrBlob);
    },
  },
  {
    name: 'credential-blob',
    description: 'MakeCredential blob (TPM2B_ID_OBJECT + TPM2B_ENCRYPTED_SECRET)',
    kind: 'bytes',
    seeds: () =>
      EK_PUBLICS().map((ek) => makeCredential({ ekPublic: parseTpm2bPublic(ek), akName: new Uint8Array(34).fill(0x0b, 0, 2), secret: new Uint8Array(32).fill(0x41) })),
    run: (input) => void parseCredentialBlob(bytesOf(input)),
  },
  {
    name: 'ek-cert',
    description: 'EK certificates (DER/PEM/chains): read, key match, vendor-store check',
    kind: 'bytes',
    seeds() {
      const certs = vectorFolder('keylime/ek_certs', /\.(der|pem)$/);
      const corrupt = corrupted(certs);
      // Issue 11 item 13: a private key where a certificate is expected.
      const signkey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' });
      return [...certs, ...corrupt, Buffer.from(signkey)];
    },
    run(input) {
      const data = bytesOf(input);
      const ders = certificatesDer(data);
      for (const der of ders.slice(0, 4)) {
        readDerCertificate(der);
      }
      verifyEkCertificate(data, store(), { intermediates: ders.slice(1, 4) });
      for (const ekPublic of EK_PUBLICS()) {
        ekPublicMatchesCertificate(ekPublic, data);
      }
    },
  },
];
