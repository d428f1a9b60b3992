import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadOrCreateClientTls, type ServiceTls } from '../../lib/pki/service-tls.js';
import type { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { forEachDatabase } from '../helpers/databases.js';
import {
  adminClient,
  createRegistrarTestEnvironment,
  rawRequest,
  startTestRegistrar,
  type RawReply,
  type RegistrarTestEnvironment,
} from './helpers/registrar-fixture.js';
import { activateCredential, authTagFor, EK_ATTRIBUTES, generateTestKey, type TestKey } from './helpers/test-tpm-identity.js';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign: an AK that is not restricted. */
const UNRESTRICTED_AK_ATTRIBUTES = 0x00040072;

describe('registrar refusals', function () {
  let env: RegistrarTestEnvironment;
  let ek: TestKey;
  let ekCertDer: Uint8Array;
  let otherEkCertDer: Uint8Array;
  let ak: TestKey;
  let foreignClientTls: ServiceTls;
  let foreignDir: string;

  before(async function () {
    env = await createRegistrarTestEnvironment();
    ek = generateTestKey('rsa', 'ek');
    ekCertDer = env.ekCa.issue(ek.publicKey);
    otherEkCertDer = env.ekCa.issue(generateTestKey('rsa', 'ek').publicKey);
    ak = generateTestKey('ecc', 'ak');
    // A client certificate from a CA the registrar has never seen.
    foreignDir = mkdtempSync(path.join(tmpdir(), 'ironlime-foreign-ca-'));
    foreignClientTls = await loadOrCreateClientTls({ dataDir: foreignDir, serviceName: 'intruder' });
  });

  after(function () {
    env?.dispose();
    if (foreignDir !== undefined) {
      rmSync(foreignDir, { recursive: true, force: true });
    }
  });

  function validBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return { ek_tpm: b64(ek.tpm2bPublic), ekcert: b64(ekCertDer), aik_tpm: b64(ak.tpm2bPublic), ip: '127.0.0.1', port: 9002, mtls_cert: 'disabled', ...overrides };
  }

  forEachDatabase(
    'registrar: hostile input and access control',
    (fixture) => {
      let registrar: RunningRegistrar;
      let admin: RegistrarClient;
      let knownId: string;

      before(async function () {
        registrar = await startTestRegistrar(env, fixture.database);
        admin = adminClient(env, registrar);
        // One active agent whose record must come through every refusal untouched.
        knownId = randomUUID();
        const reply = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${knownId}`, validBody());
        expect(reply.status).to.equal(200);
        const credential = activateCredential(ek, ak.name, Buffer.from(String(reply.body.results['blob']), 'base64'));
        const activated = await rawRequest(registrar.httpUrl, 'PUT', `/v2.6/agents/${knownId}`, { auth_tag: authTagFor(credential, knownId) });
        expect(activated.status).to.equal(200);
      });

      after(async function () {
        admin?.close();
        await registrar?.close();
      });

      async function snapshot(): Promise<unknown> {
        return { ids: await admin.list(), known: await admin.show(knownId) };
      }

      function expectRefused(reply: RawReply, status: number, text: string | RegExp): void {
        expect(reply.status).to.equal(status);
        expect(reply.body.code).to.equal(status);
        expect(reply.body.results).to.deep.equal({});
        if (typeof text === 'string') {
          expect(reply.body.status).to.equal(text);
        } else {
          expect(reply.body.status).to.match(text);
        }
      }

      const truncatedEk = (): Uint8Array => ek.tpm2bPublic.subarray(0, 100);
      const registrationCases: [string, () => Record<string, unknown> | string, number, string | RegExp][] = [
        ['ek_tpm that is not base64', () => validBody({ ek_tpm: 'not base64!' }), 400, 'body.ek_tpm: must be a base64 string'],
        ['ek_tpm that is random bytes', () => validBody({ ek_tpm: b64(Buffer.from('0123456789')) }), 400, /^body\.ek_tpm: .*TPM2B_PUBLIC/],
        ['ek_tpm truncated', () => validBody({ ek_tpm: b64(truncatedEk()) }), 400, /^body\.ek_tpm: .*TPM2B_PUBLIC/],
        ['ek_tpm with a trailing byte', () => validBody({ ek_tpm: b64(Buffer.concat([ek.tpm2bPublic, Buffer.from([0])])) }), 400, /^body\.ek_tpm: /],
        ['an AK as EK', () => validBody({ ek_tpm: b64(ak.tpm2bPublic) }), 400, 'body.ek_tpm: the EK must be a restricted decryption key'],
        ['aik_tpm missing', () => { const body = validBody(); delete body['aik_tpm']; return body; }, 400, 'body.aik_tpm: must be a base64 string'],
        ['an EK as AK', () => validBody({ aik_tpm: b64(generateTestKey('ecc', 'ak', EK_ATTRIBUTES).tpm2bPublic) }), 400, /^body\.aik_tpm: Invalid AK attributes: .*decrypt/],
        ['an AK that is not restricted', () => validBody({ aik_tpm: b64(generateTestKey('ecc', 'ak', UNRESTRICTED_AK_ATTRIBUTES).tpm2bPublic) }), 400, /^body\.aik_tpm: Invalid AK attributes: .*restricted/],
        ['an EK certificate of another key', () => validBody({ ekcert: b64(otherEkCertDer) }), 400, 'body.ek_tpm: must contain the same public key found in ekcert'],
        ['ekcert that is no certificate', () => validBody({ ekcert: 'hello' }), 400, 'body.ekcert: must be a PEM certificate (chain), base64 DER or DER'],
        ['an unknown field', () => validBody({ virtual: true }), 400, 'body.virtual: should not exist'],
        ['port out of range', () => validBody({ port: 70000 }), 400, 'body.port: must be an integer port from 1 to 65535'],
        ['port that is text', () => validBody({ port: 'ninety' }), 400, 'body.port: must be an integer port from 1 to 65535'],
        ['mtls_cert that is no PEM', () => validBody({ mtls_cert: 'enabled' }), 400, 'body.mtls_cert: must be a PEM certificate or "disabled"'],
        ['a body that is not JSON', () => '{"ek_tpm": ', 400, 'body: must be JSON'],
        ['a JSON array body', () => '[]', 400, 'body: must be a JSON object'],
      ];

      for (const [title, body, status, text] of registrationCases) {
        it(`refuses a registration with ${title}, storing nothing`, async function () {
          const before = await snapshot();
          for (const id of [randomUUID(), knownId]) {
            expectRefused(await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${id}`, body()), status, text);
          }
          expect(await snapshot()).to.deep.equal(before);
        });
      }

      it('refuses a body over the limit with 413', async function () {
        const before = await snapshot();
        const reply = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${randomUUID()}`, validBody({ ekcert: 'A'.repeat(300 * 1024) }));
        expectRefused(reply, 413, `request body larger than ${256 * 1024} bytes`);
        expect(await snapshot()).to.deep.equal(before);
      });

      for (const [title, url, status, text] of [
        ['illegal characters in the id', '/v2.6/agents/bad!id', 400, /^params\.agent_id: must be an agent id/],
        ['an 81-character id', `/v2.6/agents/${'a'.repeat(81)}`, 400, /^params\.agent_id: must be an agent id/],
        ['API version 1.0', `/v1.0/agents/${randomUUID()}`, 400, 'API Version not supported'],
        ['API version 3.0', `/v3.0/agents/${randomUUID()}`, 400, 'API Version not supported'],
        ['an unknown path', `/v2.6/nodes/${randomUUID()}`, 404, 'Not Found'],
      ] as const) {
        it(`refuses ${title}`, async function () {
          const before = await snapshot();
          expectRefused(await rawRequest(registrar.httpUrl, 'POST', url, validBody()), status, text);
          expect(await snapshot()).to.deep.equal(before);
        });
      }

      it('refuses a malformed auth_tag with 400 without deleting the agent, and an unknown agent with 404', async function () {
        const before = await snapshot();
        expectRefused(
          await rawRequest(registrar.httpUrl, 'PUT', `/v2.6/agents/${knownId}`, { auth_tag: 'zz' }),
          400,
          'body.auth_tag: must be 96 hex digits (an HMAC-SHA384)',
        );
        expectRefused(
          await rawRequest(registrar.httpUrl, 'PUT', `/v2.6/agents/${knownId}`, { auth_tag: 'ab'.repeat(47) }),
          400,
          'body.auth_tag: must be 96 hex digits (an HMAC-SHA384)',
        );
        const unknown = randomUUID();
        expectRefused(
          await rawRequest(registrar.httpUrl, 'PUT', `/v2.6/agents/${unknown}`, { auth_tag: 'ab'.repeat(48) }),
          404,
          `Agent with ID '${unknown}' not found`,
        );
        expect(await snapshot()).to.deep.equal(before);
      });

      it('refuses admin routes without a client certificate, on a real TLS socket and on the HTTP port', async function () {
        for (const [method, url] of [
          ['GET', '/v2.6/agents'],
          ['GET', `/v2.6/agents/${knownId}`],
          ['DELETE', `/v2.6/agents/${knownId}`],
        ] as const) {
          expectRefused(await rawRequest(registrar.tlsUrl, method, url, undefined, { ca: registrar.caCert }), 403, 'client certificate required');
          expectRefused(await rawRequest(registrar.httpUrl, method, url), 403, 'client certificate required');
        }
        expect((await admin.show(knownId)).agent_id).to.equal(knownId);
      });

      it('refuses admin routes with a client certificate from another CA, saying so and where its CA comes from', async function () {
        const tls = { ca: registrar.caCert, cert: foreignClientTls.cert, key: foreignClientTls.key };
        const foreign = 'client certificate not issued by the CA this service trusts (the ca/cacert.crt of its --data-dir)';
        expectRefused(await rawRequest(registrar.tlsUrl, 'DELETE', `/v2.6/agents/${knownId}`, undefined, tls), 403, foreign);
        expectRefused(await rawRequest(registrar.tlsUrl, 'GET', '/v2.6/agents', undefined, tls), 403, foreign);
        expect((await admin.show(knownId)).agent_id).to.equal(knownId);
      });

      it('serves admin routes to a client certificate from its CA, and registration on the TLS port', async function () {
        const tls = { ca: registrar.caCert, cert: env.tenantTls.cert, key: env.tenantTls.key };
        const listed = await rawRequest(registrar.tlsUrl, 'GET', '/v2/agents', undefined, tls);
        expect(listed.status).to.equal(200);
        expect(listed.body.results['uuids']).to.include(knownId);
        const registered = await rawRequest(registrar.tlsUrl, 'POST', `/v2.6/agents/${randomUUID()}`, validBody(), { ca: registrar.caCert });
        expect(registered.status).to.equal(200);
        expect(registered.body.results['blob']).to.be.a('string');
      });
    },
    { migrate: true },
  );
});
