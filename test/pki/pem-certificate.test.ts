import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { checkMtlsCert } from '../../lib/registrar/registration-check.js';
import { InvalidAgentData } from '../../lib/registrar/registrar-errors.js';
import { isPemCertificate, pemCertificates, singlePemCertificate } from '../../lib/pki/pem-certificate.js';
import { REPO_ROOT } from '../helpers/paths.js';

const store = path.join(REPO_ROOT, 'fixtures', 'tpm_cert_store');
const pem = readFileSync(path.join(store, 'IFX_RSA_042.pem'), 'utf8');
const other = readFileSync(path.join(store, 'STM_ECC_01I.pem'), 'utf8');
const der = new X509Certificate(pem).raw;
const block = (bytes: Buffer): string => `-----BEGIN CERTIFICATE-----\n${bytes.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;

/**
 * The one reading of "a readable PEM certificate" (mtls_cert at the registrar, the verifier's liveness
 * enrolment and the tenant; the broker's issuer; the push agent's verifier CA). Node's X509Certificate
 * reads the first block and skips what surrounds it: all of the "not one certificate" texts below but
 * the base64 ones passed it.
 */
describe('pki: a readable PEM certificate', () => {
  it('reads one certificate, with CRLF lines or surrounding whitespace', () => {
    expect(singlePemCertificate(pem)?.raw.equals(der)).to.equal(true);
    expect(isPemCertificate(`\n  ${pem.replace(/\n/g, '\r\n')}\n\n`)).to.equal(true);
    expect(isPemCertificate(block(der))).to.equal(true);
  });

  const notOne: [string, string][] = [
    ['empty', ''],
    ['text without markers', 'not a certificate'],
    ['the markers around garbage', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'],
    ['the markers around nothing', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'],
    ['truncated in its body', `${pem.slice(0, pem.length / 2)}\n-----END CERTIFICATE-----\n`],
    ['without its END line', pem.replace('-----END CERTIFICATE-----', '')],
    ['with the END line of another kind', pem.replace('END CERTIFICATE', 'END PUBLIC KEY')],
    ['under TRUSTED CERTIFICATE markers', pem.replace(/CERTIFICATE/g, 'TRUSTED CERTIFICATE')],
    ['under X509 CERTIFICATE markers', pem.replace(/CERTIFICATE/g, 'X509 CERTIFICATE')],
    ['with text before it', `hello\n${pem}`],
    ['with garbage after it', `${pem}trailing junk\n`],
    ['with a NUL after it', `${pem}\0`],
    ['followed by a second certificate', pem + other],
    ['after a public key block', `-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n${pem}`],
    ['with bytes after its DER', block(Buffer.concat([der, Buffer.from([0, 0, 0])]))],
    ['with its DER cut short', block(der.subarray(0, der.length - 10))],
    ['with a character that is not base64', pem.replace(/\n([A-Za-z0-9+/]{10})/, '\n$1!')],
    ['its DER as text', der.toString('latin1')],
    ['random bytes in the markers', block(randomBytes(1500))],
    ['random bytes', randomBytes(4096).toString('latin1')],
    ['a huge body', `-----BEGIN CERTIFICATE-----\n${'A'.repeat(8 * 1024 * 1024)}\n-----END CERTIFICATE-----\n`],
    ['many BEGIN lines without END', '-----BEGIN CERTIFICATE-----\n'.repeat(100_000)],
  ];
  for (const [what, text] of notOne) {
    it(`is not one certificate: ${what}`, () => {
      expect(isPemCertificate(text)).to.equal(false);
      expect(() => checkMtlsCert(text)).to.throw(InvalidAgentData, 'mtls_cert: is not a readable PEM certificate');
    });
  }

  it('reads a CA bundle: every block a certificate, comments allowed only where the caller says so', () => {
    expect(pemCertificates(pem + other)?.length).to.equal(2);
    expect(pemCertificates(`# Infineon\n${pem}# ST\n${other}`, { textOutsideBlocks: true })?.length).to.equal(2);
    expect(pemCertificates(`# Infineon\n${pem}`)).to.equal(undefined);
    expect(pemCertificates(`${pem}-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n`, { textOutsideBlocks: true })).to.equal(undefined);
    expect(pemCertificates(`${pem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`, { textOutsideBlocks: true })).to.equal(undefined);
    expect(pemCertificates('# no certificate\n', { textOutsideBlocks: true })).to.equal(undefined);
  });
});
