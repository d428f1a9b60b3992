import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { MAX_EK_INTERMEDIATES } from '../../lib/tpm/ek-certificate.js';
import { forEachDatabase } from '../helpers/databases.js';
import { caWithKey, ecPublicKeyInfo } from '../tpm/decoy-ca-certificates.js';
import { certificatePem, UNREADABLE_CERTIFICATE_BLOCK } from './helpers/certificate-pem.js';
import { createRegistrarTestEnvironment, rawRequest, strictAndLenientRegistrars, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';
import { generateTestKey, type TestKey } from './helpers/test-tpm-identity.js';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/**
 * What an unauthenticated registration may make the registrar do with its `ekcert`: no more than
 * 1 + MAX_EK_INTERMEDIATES certificates are read under any ek-check mode, and a certificate sent
 * with the EK certificate whose key is on a curve no EK CA uses is refused before its signature is
 * checked, even when the EK certificate itself chains to the store.
 */
describe('registrar: bounds on the EK certificate chain a registration sends', function () {
  this.timeout(60_000);
  let env: RegistrarTestEnvironment;
  let ek: TestKey;
  let ak: TestKey;
  let ekCertPem: string;

  before(async function () {
    env = await createRegistrarTestEnvironment();
    ek = generateTestKey('rsa', 'ek');
    ak = generateTestKey('ecc', 'ak');
    ekCertPem = certificatePem(env.ekCa.issue(ek.publicKey));
  });

  after(function () {
    env?.dispose();
  });

  const body = (ekcert: string): Record<string, unknown> => ({ ek_tpm: b64(ek.tpm2bPublic), ekcert, aik_tpm: b64(ak.tpm2bPublic), mtls_cert: 'disabled' });

  forEachDatabase(
    'registrar EK chain bounds',
    (fixture) => {
      const registrars = strictAndLenientRegistrars(() => env, fixture, { ekCheck: 'off' });

      it(`refuses an ekcert of more than ${1 + MAX_EK_INTERMEDIATES} certificates with 400 naming ekcert under "off" and "require", storing nothing`, async function () {
        const ekcert = UNREADABLE_CERTIFICATE_BLOCK.repeat(950) + ekCertPem;
        for (const registrar of [registrars.lenient, registrars.strict]) {
          const id = randomUUID();
          const reply = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${id}`, body(ekcert));
          expect(reply.status).to.equal(400);
          expect(reply.body).to.deep.equal({ code: 400, status: `body.ekcert: holds 951 certificates, at most ${1 + MAX_EK_INTERMEDIATES} are looked at`, results: {} });
          expect(await registrars.admin.list()).to.not.include(id);
        }
      });

      it('refuses under "require" an EK certificate sent with a CA whose key is on sect571k1, though the EK certificate chains to the store', async function () {
        expect((await rawRequest(registrars.strict.httpUrl, 'POST', `/v2.6/agents/${randomUUID()}`, body(ekCertPem))).status).to.equal(200);
        const decoy = caWithKey(ecPublicKeyInfo('sect571k1'));
        const id = randomUUID();
        const reply = await rawRequest(registrars.strict.httpUrl, 'POST', `/v2.6/agents/${id}`, body(certificatePem(decoy) + ekCertPem));
        expect(reply.status).to.equal(403);
        expect(reply.body.status).to.equal(
          `EK certificate of agent '${id}' refused: EK certificate: the certificate "CN=decoy CA" sent with it has an EC key on sect571k1 (only P-256, P-384 and P-521 are looked at)`,
        );
        expect(await registrars.admin.list()).to.not.include(id);
      });
    },
    { migrate: true },
  );
});
