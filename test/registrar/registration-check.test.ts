import { expect } from 'chai';
import fc from 'fast-check';
import { IronlimeError } from '../../interfaces/errors.js';
import { splitEkCertificateField } from '../../lib/registrar/ek-certificate-field.js';
import type { RegisterAgentBody } from '../../lib/registrar/registrar-dtos.js';
import { InvalidAgentData } from '../../lib/registrar/registrar-errors.js';
import { checkRegistration } from '../../lib/registrar/registration-check.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { MAX_EK_INTERMEDIATES } from '../../lib/tpm/ek-certificate.js';
import { certificatePem, UNREADABLE_CERTIFICATE_BLOCK } from './helpers/certificate-pem.js';
import { generateTestKey, type TestKey } from './helpers/test-tpm-identity.js';
import { rocaModulus } from '../helpers/roca-modulus.js';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

describe('registrar: registration checks', function () {
  let ek: TestKey;
  let ak: TestKey;
  let ekCa: SoftwareEkCa;
  let ekCertDer: Uint8Array;

  before(function () {
    ek = generateTestKey('rsa', 'ek');
    ak = generateTestKey('ecc', 'ak');
    ekCa = SoftwareEkCa.create({ commonName: 'check test EK CA' });
    ekCertDer = ekCa.issue(ek.publicKey);
  });

  function body(overrides: Partial<RegisterAgentBody> = {}): RegisterAgentBody {
    return { ek_tpm: b64(ek.tpm2bPublic), aik_tpm: b64(ak.tpm2bPublic), ...overrides } as RegisterAgentBody;
  }

  it('accepts the EK certificate as PEM, PEM chain, base64 DER and raw DER and picks the EK certificate', function () {
    const caDer = Buffer.from(
      ekCa.certificatePem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''),
      'base64',
    );
    for (const ekcert of [
      certificatePem(ekCertDer),
      certificatePem(caDer) + certificatePem(ekCertDer),
      b64(ekCertDer),
      Buffer.from(ekCertDer).toString('latin1'),
    ]) {
      const checked = checkRegistration(body({ ekcert }));
      expect(Buffer.from(checked.ekCertDer ?? []).equals(Buffer.from(ekCertDer))).to.equal(true);
    }
    expect(checkRegistration(body({ ekcert: certificatePem(caDer) + certificatePem(ekCertDer) })).ekCertChain).to.have.length(1);
  });

  it(`refuses an ekcert of more than ${1 + MAX_EK_INTERMEDIATES} certificates with 400 naming ekcert, before reading any (hunt: ~1,000 blocks cost 80 ms under every ek-check mode)`, function () {
    const caPem = ekCa.certificatePem.endsWith('\n') ? ekCa.certificatePem : `${ekCa.certificatePem}\n`;
    const chainOf = (intermediates: number, extra = ''): string => caPem.repeat(intermediates) + extra + certificatePem(ekCertDer);
    expect(checkRegistration(body({ ekcert: chainOf(MAX_EK_INTERMEDIATES) })).ekCertChain).to.have.length(MAX_EK_INTERMEDIATES);
    for (const [count, ekcert] of [
      [MAX_EK_INTERMEDIATES + 2, chainOf(MAX_EK_INTERMEDIATES + 1)],
      [951, chainOf(0, UNREADABLE_CERTIFICATE_BLOCK.repeat(950))],
    ] as const) {
      expect(() => checkRegistration(body({ ekcert })))
        .to.throw(InvalidAgentData, `body.ekcert: holds ${count} certificates, at most ${1 + MAX_EK_INTERMEDIATES} are looked at`)
        .with.property('field', 'ekcert');
    }
  });

  it('reads a raw DER EK certificate as DER when its names spell a PEM BEGIN line', function () {
    const markedCa = SoftwareEkCa.create({ commonName: '-----BEGIN CERTIFICATE-----' });
    const der = markedCa.issue(ek.publicKey);
    const ekcert = Buffer.from(der).toString('latin1');
    expect(ekcert).to.include('-----BEGIN CERTIFICATE-----');
    expect(Buffer.from(checkRegistration(body({ ekcert })).ekCertDer ?? []).equals(Buffer.from(der))).to.equal(true);
  });

  it('returns canonical base64 and the AK name', function () {
    const checked = checkRegistration(body({ ip: '10.1.2.3', port: 9002, mtls_cert: 'disabled' }));
    expect(checked.ekTpm).to.equal(b64(ek.tpm2bPublic));
    expect(Buffer.from(checked.akName).equals(Buffer.from(ak.name))).to.equal(true);
    expect(checked).to.include({ ip: '10.1.2.3', port: 9002, mtlsCert: 'disabled', ekCertDer: null });
  });

  it('treats JSON null like an absent optional field', function () {
    const checked = checkRegistration(body({ ekcert: null, ip: null, port: null, mtls_cert: null }));
    expect(checked).to.include({ ekCertDer: null, ip: null, port: null, mtlsCert: null });
  });

  it('refuses an mtls_cert that is PEM-shaped but no certificate', function () {
    expect(() => checkRegistration(body({ mtls_cert: certificatePem(Buffer.from([0x30, 0x00])) })))
      .to.throw(InvalidAgentData, 'body.mtls_cert: is not a readable PEM certificate');
  });

  it('refuses an RSA EK or AK with the ROCA fingerprint (its private key can be computed) with 400 naming the field', function () {
    const roca = rocaModulus();
    // The modulus is the last field of an RSA TPMT_PUBLIC: the generated RSA keys' 256 bytes are swapped for it.
    const withModulus = (area: Uint8Array): Uint8Array => new Uint8Array(Buffer.concat([area.subarray(0, area.length - roca.length), roca]));
    const rsaEk = generateTestKey('rsa', 'ek');
    const rsaAk = generateTestKey('rsa', 'ak');
    expect(() => checkRegistration(body({ ek_tpm: b64(rsaEk.tpm2bPublic), aik_tpm: b64(rsaAk.tpm2bPublic) }))).not.to.throw();
    expect(() => checkRegistration(body({ ek_tpm: b64(withModulus(rsaEk.tpm2bPublic)) })))
      .to.throw(InvalidAgentData, 'body.ek_tpm: the EK is an RSA key made by a TPM with the ROCA flaw (CVE-2017-15361');
    expect(() => checkRegistration(body({ aik_tpm: b64(withModulus(rsaAk.tpm2bPublic)) })))
      .to.throw(InvalidAgentData, 'body.aik_tpm: the AK is an RSA key made by a TPM with the ROCA flaw (CVE-2017-15361');
  });

  it('throws only InvalidAgentData for random bytes in ek_tpm and aik_tpm, and for every proper prefix', function () {
    for (const [field, bytes] of [['ek_tpm', ek.tpm2bPublic], ['aik_tpm', ak.tpm2bPublic]] as const) {
      for (let length = 0; length < bytes.length; length += 1) {
        expect(() => checkRegistration(body({ [field]: b64(bytes.subarray(0, length)) })))
          .to.throw(InvalidAgentData, `body.${field}: `);
      }
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, asEk) => {
        try {
          checkRegistration(body(asEk ? { ek_tpm: b64(bytes) } : { aik_tpm: b64(bytes) }));
          return false;
        } catch (error) {
          return error instanceof InvalidAgentData && error.code === 'ERR_INVALID_AGENT_DATA';
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('throws only typed errors for arbitrary ekcert text', function () {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')), fc.uint8Array({ maxLength: 300 }).map(b64)), (text) => {
        try {
          splitEkCertificateField(text);
          checkRegistration(body({ ekcert: text }));
          return false;
        } catch (error) {
          return error instanceof IronlimeError;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
