import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { RegistrarAgentRepository } from '../../lib/registrar/registrar-agent-repository.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { forEachDatabase } from '../helpers/databases.js';
import { createRegistrarTestEnvironment, rawRequest, startTestRegistrar, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';

/**
 * JSON null in the registration fields that decide what is checked. `identity_mode: null` passed the
 * form check as "absent" but was read as "not a TPM" by the body's own checks and as `tpm` by the
 * service: a record of mode `tpm` (level `hardware-tpm`) with no EK, no AK and no EK certificate was
 * stored, past `--ek-check require`, the per-EK limit and the cap on modes other than `tpm`.
 * `host_id: null` reached the host id parser and was a 500.
 */
describe('registrar: null in registration fields', function () {
  let env: RegistrarTestEnvironment;

  before(async function () {
    env = await createRegistrarTestEnvironment();
  });

  after(function () {
    env?.dispose();
  });

  forEachDatabase(
    'registrar: null in registration fields',
    (fixture) => {
      let registrar: RunningRegistrar;

      before(async function () {
        registrar = await startTestRegistrar(env, fixture.database);
      });

      after(async function () {
        await registrar?.close();
      });

      async function stored(id: string): Promise<unknown> {
        return registrar.container.resolve(RegistrarAgentRepository).find(id);
      }

      it('refuses identity_mode null with a 400 naming the field, and stores nothing', async function () {
        const id = randomUUID();
        const reply = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${id}`, {
          identity_mode: null,
          host_id: `sys-uuid:${randomUUID()}`,
          ip: '10.0.0.1',
          port: 9002,
        });
        expect(reply.status).to.equal(400);
        expect(reply.body.code).to.equal(400);
        expect(reply.body.status).to.match(/^body\.identity_mode: /);
        expect(reply.body.results).to.deep.equal({});
        expect(await stored(id)).to.equal(undefined);
      });

      it('refuses host_id null with a 400 naming the field, and stores nothing', async function () {
        const id = randomUUID();
        const reply = await rawRequest(registrar.httpUrl, 'POST', `/v2.6/agents/${id}`, { identity_mode: 'id-only', host_id: null });
        expect(reply.status).to.equal(400);
        expect(reply.body.status).to.match(/^body\.host_id: /);
        expect(reply.body.results).to.deep.equal({});
        expect(await stored(id)).to.equal(undefined);
      });
    },
    { migrate: true },
  );
});
