import { randomUUID, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../lib/tpm-access/tpm-port.js';
import { forEachDatabase } from '../helpers/databases.js';
import { adminClient, createRegistrarTestEnvironment, rawRequest, startTestRegistrar, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

/** A CERTIFICATE block that splits as DER (SEQUENCE tag first) but is no certificate. */
const UNREADABLE_BLOCK = `-----BEGIN CERTIFICATE-----\n${Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]).toString('base64')}\n-----END CERTIFICATE-----\n`;

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
    ['after the EK certificate', `${leafPem}${UNREADABLE_BLOCK}`],
    ['before the EK certificate', `${UNREADABLE_BLOCK}${leafPem}`],
  ];

  const body = (ekcert: string) => ({
    ek_tpm: Buffer.from(ek.ekPublic).toString('base64'),
    ekcert,
    aik_tpm: Buffer.from(ak.akPublic).toString('base64'),
  });

  forEachDatabase(
    'registrar unreadable EK chain',
    (fixture) => {
      let strict: RunningRegistrar;
      let lenient: RunningRegistrar;
      let admin: RegistrarClient;

      before(async function () {
        strict = await startTestRegistrar(env, fixture.database);
        lenient = await startTestRegistrar(env, fixture.database, { ekCheck: 'warn' });
        admin = adminClient(env, strict);
      });

      after(async function () {
        admin?.close();
        await strict?.close();
        await lenient?.close();
      });

      it('under "require" refuses it with 403 ERR_EK_CERT_UNTRUSTED, storing nothing', async function () {
        for (const [where, ekcert] of chains()) {
          const id = randomUUID();
          const reply = await rawRequest(strict.httpUrl, 'POST', `/v2.6/agents/${id}`, body(ekcert));
          expect(reply.status, where).to.equal(403);
          expect(reply.body.status, where).to.match(/refused: a certificate sent with the EK certificate cannot be read: /);
          expect(await admin.list(), where).to.not.include(id);
        }
      });

      it('under "warn" registers it below hardware-tpm, as for any untrusted chain', async function () {
        const agentClient = new RegistrarClient({ baseUrl: lenient.httpUrl });
        try {
          for (const [where, ekcert] of chains()) {
            const id = randomUUID();
            const blob = await agentClient.registerTpm(id, { ekPublic: ek.ekPublic, ekCertificate: ekcert, akPublic: ak.akPublic, mtlsCert: 'disabled' }, 'tpm');
            await agentClient.activate(id, authTagFor(await tpm.activateCredential(blob), id));
            expect((await admin.show(id)).trust_level, where).to.equal('emulated-tpm');
          }
        } finally {
          agentClient.close();
        }
      });
    },
    { migrate: true },
  );
});
