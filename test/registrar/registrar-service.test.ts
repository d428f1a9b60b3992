import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../lib/tpm-access/tpm-port.js';
import { forEachDatabase } from '../helpers/databases.js';
import {
  adminClient,
  createRegistrarTestEnvironment,
  rawRequest,
  startTestRegistrar,
  type RegistrarTestEnvironment,
} from './helpers/registrar-fixture.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

interface SoftwareAgent {
  readonly id: string;
  readonly tpm: SoftwareTpm;
  readonly ek: EkInfo;
  readonly ak: AkInfo;
}

async function refusal(promise: Promise<unknown>): Promise<KeylimeHttpError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(KeylimeHttpError);
    return error as KeylimeHttpError;
  }
  throw new Error('expected the registrar to refuse');
}

type TpmKind = 'trusted' | 'other' | 'no-cert' | 'rogue';

describe('registrar service', function () {
  // Software TPMs are pooled: RSA key generation dominates the cost, and the registrar does not care
  // that two agent ids share a TPM. 'trusted' and 'other' are two TPMs with certificates from the
  // trusted test EK CA; 'rogue' has one from an unknown CA; 'no-cert' has none.
  let env: RegistrarTestEnvironment;
  const pool = new Map<TpmKind, { tpm: SoftwareTpm; ek: EkInfo; ak: AkInfo }>();

  before(async function () {
    env = await createRegistrarTestEnvironment();
    const rogue = SoftwareEkCa.create({ commonName: 'rogue EK CA' });
    const issuers: Record<TpmKind, SoftwareEkCa | null> = { trusted: env.ekCa, other: env.ekCa, 'no-cert': null, rogue };
    for (const [kind, issuer] of Object.entries(issuers) as [TpmKind, SoftwareEkCa | null][]) {
      const tpm = await createSoftwareTpm(issuer === null ? {} : { issueEkCertificate: (key) => issuer.issue(key) });
      pool.set(kind, { tpm, ek: await tpm.ensureEk(), ak: await tpm.ensureAk('sha256') });
    }
  });

  after(async function () {
    await Promise.all([...pool.values()].map(({ tpm }) => tpm.close()));
    env?.dispose();
  });

  /** A fresh agent id on a pooled software TPM. */
  function softwareAgent(kind: TpmKind = 'trusted'): SoftwareAgent {
    const entry = pool.get(kind);
    if (entry === undefined) {
      throw new Error(`no ${kind} TPM`);
    }
    return { id: randomUUID(), ...entry };
  }

forEachDatabase(
  'registrar: register, activate, admin',
  (fixture) => {
    let registrar: RunningRegistrar;
    let agentClient: RegistrarClient;
    let admin: RegistrarClient;

    before(async function () {
      registrar = await startTestRegistrar(env, fixture.database);
      agentClient = new RegistrarClient({ baseUrl: registrar.httpUrl });
      admin = adminClient(env, registrar);
    });

    after(async function () {
      agentClient?.close();
      admin?.close();
      await registrar?.close();
    });

    function register(agent: SoftwareAgent, client = agentClient): Promise<Uint8Array> {
      return client.register(agent.id, {
        ekPublic: agent.ek.ekPublic,
        ekCertificate: agent.ek.ekCertificate,
        akPublic: agent.ak.akPublic,
        ip: '127.0.0.1',
        port: 9002,
        mtlsCert: 'disabled',
      });
    }

    it('answers GET /version on both ports with the 2.x versions it serves', async function () {
      const tls = adminClient(env, registrar);
      try {
        for (const client of [agentClient, tls]) {
          expect(await client.version()).to.deep.equal({
            current_version: '2.6',
            supported_versions: ['2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6'],
          });
        }
      } finally {
        tls.close();
      }
    });

    it('registers, activates through a real TPM2_ActivateCredential, shows, lists and deletes', async function () {
      const agent = softwareAgent();
      const blob = await register(agent);
      // The software TPM runs the TPM's own algorithm on the EK private key (lib/tpm-access/software).
      const credential = await agent.tpm.activateCredential(blob);
      expect(Buffer.from(credential).toString('ascii')).to.match(/^[A-Za-z0-9]{32}$/);

      const early = await refusal(admin.show(agent.id));
      expect(early.remoteHttpStatus).to.equal(404);
      expect(early.status).to.equal(`Agent with ID '${agent.id}' has not been activated`);

      await agentClient.activate(agent.id, authTagFor(credential, agent.id));
      const shown = await admin.show(agent.id);
      expect(shown).to.deep.equal({
        agent_id: agent.id,
        ek_tpm: Buffer.from(agent.ek.ekPublic).toString('base64'),
        ekcert: Buffer.from(agent.ek.ekCertificate ?? []).toString('base64'),
        aik_tpm: Buffer.from(agent.ak.akPublic).toString('base64'),
        mtls_cert: 'disabled',
        ip: '127.0.0.1',
        port: 9002,
        regcount: 1,
        identity_mode: 'tpm',
        trust_level: 'hardware-tpm',
      });
      expect(await admin.list()).to.include(agent.id);

      await admin.delete(agent.id);
      expect(await admin.list()).to.not.include(agent.id);
      const gone = await refusal(admin.show(agent.id));
      expect(gone.remoteHttpStatus).to.equal(404);
      expect(gone.status).to.equal(`Agent with ID '${agent.id}' not found`);
      expect((await refusal(admin.delete(agent.id))).remoteHttpStatus).to.equal(404);
    });

    it('activates through PUT and POST …/activate too', async function () {
      for (const method of ['PUT', 'POST']) {
        const agent = softwareAgent();
        const credential = await agent.tpm.activateCredential(await register(agent));
        const reply = await rawRequest(registrar.httpUrl, method, `/v2.6/agents/${agent.id}/activate`, {
          auth_tag: authTagFor(credential, agent.id),
        });
        expect(reply.body).to.deep.equal({ code: 200, status: 'Success', results: {} });
        expect((await admin.show(agent.id)).agent_id).to.equal(agent.id);
      }
    });

    it('refuses a forged auth_tag with 400 and changes nothing: the record stays, not activated', async function () {
      const agent = softwareAgent();
      await register(agent);
      const forged = authTagFor(Buffer.from('A'.repeat(32)), agent.id);
      const error = await refusal(agentClient.activate(agent.id, forged));
      expect(error.remoteHttpStatus).to.equal(400);
      expect(error.status).to.equal(`auth_tag for agent '${agent.id}' does not match; the agent is not activated`);
      expect(await admin.list()).to.include(agent.id);
      expect((await refusal(admin.show(agent.id))).remoteHttpStatus).to.equal(404);
      expect((await refusal(agentClient.activate(agent.id, forged))).remoteHttpStatus).to.equal(400);
    });

    it('re-registration with the same identity issues a new challenge and keeps regcount', async function () {
      const agent = softwareAgent();
      const first = await agent.tpm.activateCredential(await register(agent));
      await agentClient.activate(agent.id, authTagFor(first, agent.id));
      const second = await agent.tpm.activateCredential(await register(agent));
      expect(Buffer.from(second).equals(Buffer.from(first))).to.equal(false);
      await agentClient.activate(agent.id, authTagFor(second, agent.id));
      expect((await admin.show(agent.id)).regcount).to.equal(1);
    });

    it('refuses re-registration with a different EK with 403 and keeps the stored identity', async function () {
      const agent = softwareAgent();
      await agentClient.activate(agent.id, authTagFor(await agent.tpm.activateCredential(await register(agent)), agent.id));
      const other = softwareAgent('other');
      const error = await refusal(register({ ...other, id: agent.id }));
      expect(error.remoteHttpStatus).to.equal(403);
      expect(error.status).to.match(/^Agent re-registration with different TPM identity is forbidden \(ek_tpm, aik_tpm, ekcert/);
      expect((await admin.show(agent.id)).ek_tpm).to.equal(Buffer.from(agent.ek.ekPublic).toString('base64'));
    });

    it('refuses an agent without EK certificate under ek-check "require"', async function () {
      const agent = softwareAgent('no-cert');
      const error = await refusal(register(agent));
      expect(error.remoteHttpStatus).to.equal(403);
      expect(error.status).to.equal(`EK certificate of agent '${agent.id}' refused: no EK certificate was sent (ekcert)`);
      expect(await admin.list()).to.not.include(agent.id);
    });

    it('refuses an EK certificate from an unknown CA under "require" and accepts it under "warn"', async function () {
      const agent = softwareAgent('rogue');
      const error = await refusal(register(agent));
      expect(error.remoteHttpStatus).to.equal(403);
      expect(error.status).to.equal(
        `EK certificate of agent '${agent.id}' refused: EK certificate: no certificate in the store signed "CN=rogue EK CA, O=ironlime"`,
      );
      expect(await admin.list()).to.not.include(agent.id);

      const lenient = await startTestRegistrar(env, fixture.database, { ekCheck: 'warn' });
      const lenientClient = new RegistrarClient({ baseUrl: lenient.httpUrl });
      try {
        const credential = await agent.tpm.activateCredential(await register(agent, lenientClient));
        await lenientClient.activate(agent.id, authTagFor(credential, agent.id));
        expect((await admin.show(agent.id)).agent_id).to.equal(agent.id);
      } finally {
        lenientClient.close();
        await lenient.close();
      }
    });
  },
  { migrate: true },
);
});
