import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { RuntimePolicyError } from '../../lib/ima/internal/runtime-policy-error.js';
import { TenantClient } from '../../lib/tenant/tenant-client.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { FakeKeylime } from '../driver/fake-keylime.js';
import { rejection } from '../driver/driver-test-node.js';
import { closedPort } from '../helpers/ports.js';

// Keylime's `update` parses the new enrolment (init_add) before do_cvdelete: nothing refused may cost the old one.
describe('tenant update: the new enrolment is checked before the old one is deleted', function () {
  const fake = new FakeKeylime();
  let dir: string;
  let client: TenantClient;
  let deleted: boolean;

  before(async function () {
    await fake.start();
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-update-'));
    const closed = `https://127.0.0.1:${await closedPort()}`;
    client = new TenantClient({ registrarUrl: closed, verifierUrl: closed, tls: await loadOrCreateClientTls({ dataDir: dir, serviceName: 'tenant' }), timeoutMs: 2000 });
    // The verifier side is the plain-http fake; the registrar stays unreachable.
    Object.defineProperty(client, 'verifier', { value: new VerifierClient({ baseUrl: fake.url }) });
  });

  after(async function () {
    client.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(function () {
    fake.requests.length = 0;
    deleted = false;
    fake.routes.set('DELETE /v2.1/agents/a1', () => {
      deleted = true;
      return [200, {}];
    });
    fake.routes.set('GET /v2.1/agents/a1', () => (deleted ? [404, {}] : [200, { operational_state: 3 }]));
  });

  it('leaves the agent enrolled when the new runtime policy is malformed', async function () {
    const error = await rejection(client.updateAgent('a1', { runtimePolicy: '{"this is": not json' }));
    expect(error).to.be.instanceOf(RuntimePolicyError);
    expect(deleted).to.equal(false);
    expect(fake.requests).to.not.include('DELETE /v2.1/agents/a1');
  });

  it('leaves the agent enrolled when its identity cannot be checked at the registrar', async function () {
    const error = await rejection(client.updateAgent('a1', {}));
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect(deleted).to.equal(false);
    expect(fake.requests).to.not.include('DELETE /v2.1/agents/a1');
  });
});
