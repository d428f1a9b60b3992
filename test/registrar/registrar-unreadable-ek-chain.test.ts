import { randomUUID, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../lib/tpm-access/tpm-port.js';
import { forEachDatabase } from '../helpers/databases.js';
import { UNREADABLE_CERTIFICATE_BLOCK } from './helpers/certificate-pem.js';
import { createRegistrarTestEnvironment, rawRequest, strictAndLenientRegistrars, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

/**
 * An extra CERTIFICATE block that cannot be read, sent with the EK certificate in a PEM `ekcert`: it
 * is the agent's chain, so the ek-check mode judges it (`require` 403, `warn` registers below
 * `hardware-tpm`) wherever it stands; it was a 400 from the parser when it followed the EK certificate.
 */
describe('registrar: an unreadable certificate in the EK certificate chain', function () {
  let env: RegistrarTestEnvironment;
  let tpm: SoftwareTpm;
  let ek: EkInfo;
  let ak: AkInfo;
  let leafPem: string;

  before(async function () {
    env = await createRegistrarTestEnvironment();
    tpm = await createSoftwareTpm({ issueEkCertificate: (key) => env.ekCa.issue(key) });
    ek = await tpm.ensureEk();
    ak = await tpm.ensureAk('sha256');
    leafPem = new X509Certificate(ek.ekCertificate as Uint8Array).toString();
  });

  after(async function () {
    await tpm?.close();
    env?.dispose();
  });

  const chains = (): Array<[string, string]> => [
    ['after the EK certificate', `${leafPem}${UNREADABLE_CERTIFICATE_BLOCK}`],
    ['before the EK certificate', `${UNREADABLE_CERTIFICATE_BLOCK}${leafPem}`],
  ];

  const body = (ekcert: string) => ({
    ek_tpm: Buffer.from(ek.ekPublic).toString('base64'),
    ekcert,
    aik_tpm: Buffer.from(ak.akPublic).toString('base64'),
  });

  forEachDatabase(
    'registrar unreadable EK chain',
    (fixture) => {
      const registrars = strictAndLenientRegistrars(() => env, fixture, { ekCheck: 'warn' });

      it('under "require" refuses it with 403 ERR_EK_CERT_UNTRUSTED, storing nothing', async function () {
        for (const [where, ekcert] of chains()) {
          const id = randomUUID();
          const reply = await rawRequest(registrars.strict.httpUrl, 'POST', `/v2.6/agents/${id}`, body(ekcert));
          expect(reply.status, where).to.equal(403);
          expect(reply.body.status, where).to.match(/refused: a certificate sent with the EK certificate cannot be read: /);
          expect(await registrars.admin.list(), where).to.not.include(id);
        }
      });

      it('under "warn" registers it below hardware-tpm, as for any untrusted chain', async function () {
        const agentClient = new RegistrarClient({ baseUrl: registrars.lenient.httpUrl });
        try {
          for (const [where, ekcert] of chains()) {
            const id = randomUUID();
            const blob = await agentClient.registerTpm(id, { ekPublic: ek.ekPublic, ekCertificate: ekcert, akPublic: ak.akPublic, mtlsCert: 'disabled' }, 'tpm');
            await agentClient.activate(id, authTagFor(await tpm.activateCredential(blob), id));
            expect((await registrars.admin.show(id)).trust_level, where).to.equal('emulated-tpm');
          }
        } finally {
          agentClient.close();
        }
      });
    },
    { migrate: true },
  );
});
