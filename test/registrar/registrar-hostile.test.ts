import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { DATABASE } from '../../lib/db/database-token.js';
import type { Database } from '../../lib/db/database-factory.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { marshalTpm2bPublic, parseTpm2bPublic } from '../../lib/tpm/tpmt-public.js';
import { forEachDatabase } from '../helpers/databases.js';
import { useSoftwareTpmEnvironment } from './helpers/software-tpm-environment.js';
import {
  adminClient,
  rawRequest,
  startTestRegistrar,
} from './helpers/registrar-fixture.js';
import { withCorruptKeyAlgorithm } from '../../lib/fuzz/corrupt-certificate.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

async function refusal(promise: Promise<unknown>): Promise<KeylimeHttpError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(KeylimeHttpError);
    return error as KeylimeHttpError;
  }
  throw new Error('expected the registrar to refuse');
}

interface Contact {
  readonly ip: string;
  readonly port: number;
}

/**
 * Issue 11 items 3, 4 and 6 against a running registrar: contact details of an active agent change
 * only after a fresh activation; hostile JSON is a 400; registrations per EK are bounded, never-activated
 * ones expire, and unusable agent ids are refused.
 */
describe('registrar: hostile registrations', function () {
  const setup = useSoftwareTpmEnvironment();

  forEachDatabase(
    'registrar: hostile registrations',
    (fixture) => {
      let registrar: RunningRegistrar;
      let agentClient: RegistrarClient;
      let admin: RegistrarClient;

      before(async function () {
        registrar = await startTestRegistrar(setup.env, fixture.database, { maxAgentsPerEk: 3 });
        agentClient = new RegistrarClient({ baseUrl: registrar.httpUrl });
        admin = adminClient(setup.env, registrar);
      });

      after(async function () {
        agentClient?.close();
        admin?.close();
        await registrar?.close();
      });

      function register(id: string, contact: Contact): Promise<Uint8Array> {
        return agentClient.register(id, {
          ekPublic: setup.ek.ekPublic,
          ekCertificate: setup.ek.ekCertificate,
          akPublic: setup.ak.akPublic,
          ip: contact.ip,
          port: contact.port,
          mtlsCert: 'disabled',
        });
      }

      async function activeAgent(contact: Contact): Promise<string> {
        const id = randomUUID();
        const credential = await setup.tpm.activateCredential(await register(id, contact));
        await agentClient.activate(id, authTagFor(credential, id));
        return id;
      }

      async function cleanUp(ids: readonly string[]): Promise<void> {
        for (const id of ids) {
          await admin.delete(id).catch(() => undefined);
        }
      }

      it('keeps the contact details of an active agent after an unproven re-registration (item 3)', async function () {
        const id = await activeAgent({ ip: '10.0.0.1', port: 9002 });
        // Anyone can replay the public EK, EK certificate and AK with an address of their own.
        await register(id, { ip: '10.66.6.6', port: 6666 });
        expect(await admin.show(id)).to.include({ ip: '10.0.0.1', port: 9002, mtls_cert: 'disabled' });
        await cleanUp([id]);
      });

      it('puts new contact details in force after the TPM answers the fresh challenge (item 3)', async function () {
        const id = await activeAgent({ ip: '10.0.0.1', port: 9002 });
        const credential = await setup.tpm.activateCredential(await register(id, { ip: '10.0.0.2', port: 9003 }));
        await agentClient.activate(id, authTagFor(credential, id));
        expect(await admin.show(id)).to.include({ ip: '10.0.0.2', port: 9003 });
        await cleanUp([id]);
      });

      it('a wrong proof after a re-registration neither deletes an active agent nor applies its new contact (item 3)', async function () {
        const id = await activeAgent({ ip: '10.0.0.1', port: 9002 });
        await register(id, { ip: '10.66.6.6', port: 6666 });
        const error = await refusal(agentClient.activate(id, authTagFor(Buffer.from('A'.repeat(32)), id)));
        expect(error.remoteHttpStatus).to.equal(400);
        expect(error.status).to.equal(`auth_tag for agent '${id}' does not match; its proven contact details are kept`);
        expect(await admin.show(id)).to.include({ ip: '10.0.0.1', port: 9002 });
        await cleanUp([id]);
      });

      it('answers 400 to a nested "constructor" key and to 10,000-level JSON, and changes nothing (item 4)', async function () {
        const id = await activeAgent({ ip: '10.0.0.1', port: 9002 });
        const deep = `{"auth_tag":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
        for (const body of ['{"auth_tag":{"constructor":{}}}', deep]) {
          for (const url of [`/v2.6/agents/${id}`, `/v2.6/agents/${id}/activate`]) {
            const reply = await rawRequest(registrar.httpUrl, 'PUT', url, body);
            expect(reply.status).to.equal(400);
            expect(reply.body.code).to.equal(400);
            expect(reply.body.results).to.deep.equal({});
          }
          const posted = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${id}`, body);
          expect(posted.status).to.equal(400);
        }
        expect(await admin.show(id)).to.include({ agent_id: id, ip: '10.0.0.1', port: 9002 });
        await cleanUp([id]);
      });

      it('refuses a new agent id once the EK is registered under maxAgentsPerEk activated ids (item 6)', async function () {
        const ids = [await activeAgent({ ip: '10.0.0.1', port: 9002 }), await activeAgent({ ip: '10.0.0.1', port: 9002 }), await activeAgent({ ip: '10.0.0.1', port: 9002 })];
        const extra = randomUUID();
        const error = await refusal(register(extra, { ip: '10.0.0.1', port: 9002 }));
        expect(error.remoteHttpStatus).to.equal(403);
        expect(error.status).to.equal(
          `the EK of agent '${extra}' is already registered under 3 agent ids (at most 3), activated or being activated; delete one of them first`,
        );
        // Re-registering an id the EK already has is not a new one.
        await register(ids[0] as string, { ip: '10.0.0.1', port: 9002 });
        await admin.delete(ids[0] as string);
        await register(extra, { ip: '10.0.0.1', port: 9002 });
        await cleanUp([...ids, extra]);
      });

      it('counts one EK public key once whatever TPM2B_PUBLIC bytes carry it (item 6)', async function () {
        const ids = [await activeAgent({ ip: '10.0.0.1', port: 9002 }), await activeAgent({ ip: '10.0.0.1', port: 9002 }), await activeAgent({ ip: '10.0.0.1', port: 9002 })];
        // The same key with another auth policy: other bytes, same EK, still matching the EK certificate.
        const area = parseTpm2bPublic(setup.ek.ekPublic);
        const variant = marshalTpm2bPublic({ ...area, authPolicy: new Uint8Array(32).fill(7) });
        const extra = randomUUID();
        const error = await refusal(
          agentClient.register(extra, { ekPublic: variant, ekCertificate: setup.ek.ekCertificate, akPublic: setup.ak.akPublic, mtlsCert: 'disabled' }),
        );
        expect(error.remoteHttpStatus).to.equal(403);
        expect(error.status).to.include('already registered under 3 agent ids');
        await cleanUp(ids);
      });

      it('removes never-activated registrations after their time to live; they cannot be activated (item 6)', async function () {
        const stale = randomUUID();
        const credential = await setup.tpm.activateCredential(await register(stale, { ip: '10.0.0.1', port: 9002 }));
        const active = await activeAgent({ ip: '10.0.0.1', port: 9002 });
        const knex = registrar.container.resolve<Database>(DATABASE).knex;
        // Age both rows past the default hour: only the never-activated one expires.
        await knex('registrar_agents').whereIn('agent_id', [stale, active]).update({ updated_at: knex.raw("now() - interval '2 hours'") });
        const error = await refusal(agentClient.activate(stale, authTagFor(credential, stale)));
        expect(error.remoteHttpStatus).to.equal(404);
        const listed = await admin.list();
        expect(listed).to.include(active);
        expect(listed).to.not.include(stale);
        await cleanUp([active]);
      });

      it('answers 400 naming ekcert to an EK certificate with corrupt public-key algorithm bytes (item 5)', async function () {
        const id = randomUUID();
        const reply = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${id}`, {
          ek_tpm: Buffer.from(setup.ek.ekPublic).toString('base64'),
          ekcert: withCorruptKeyAlgorithm(setup.ek.ekCertificate ?? new Uint8Array()).toString('base64'),
          aik_tpm: Buffer.from(setup.ak.akPublic).toString('base64'),
        });
        expect(reply.status).to.equal(400);
        expect(reply.body.status).to.match(/^body\.ekcert: certificate: its public key cannot be read/);
        expect(await admin.list()).to.not.include(id);
      });

      for (const id of ['__proto__', 'constructor', 'prototype']) {
        it(`refuses the agent id ${id} with 400 (item 6)`, async function () {
          const reply = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${id}`, {
            ek_tpm: Buffer.from(setup.ek.ekPublic).toString('base64'),
            aik_tpm: Buffer.from(setup.ak.akPublic).toString('base64'),
          });
          expect(reply.status).to.equal(400);
          expect(reply.body.status).to.equal('params.agent_id: must not be only dots nor __proto__, constructor or prototype');
          expect(await admin.list()).to.not.include(id);
        });
      }
    },
    { migrate: true },
  );
});
