import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { buildPushEnrolmentBody, checkEnrolmentPolicies } from '../../lib/tenant/enrolment-request.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { CutReplyProxy } from '../helpers/cut-reply-proxy.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { generateTestKey } from '../registrar/helpers/test-tpm-identity.js';

const POLICY = JSON.stringify({ meta: { version: 1, generator: 0 }, release: 0, digests: { '/usr/bin/true': ['11'.repeat(32)] }, excludes: [], keyrings: {}, ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null }, 'ima-buf': {}, 'verification-keys': '' });

/**
 * A DELETE the verifier carried out whose reply was lost (the kept-alive connection closed under it
 * before any answer byte) is sent once more by the client and answered 404: the tenant's and the
 * driver's delete is done, not failed. A DELETE sent once that finds nothing stays a 404.
 */
describe('tenant: a DELETE carried out by the verifier, its reply lost, and sent once more', function () {
  const suite = verifierPerSuite('ironlime-repeated-delete-');
  let proxy: CutReplyProxy;
  let client: VerifierClient;

  before(async function () {
    const target = new URL(suite.verifier.url);
    proxy = new CutReplyProxy(target.hostname, Number(target.port));
    const port = await proxy.start();
    const tls = await loadOrCreateClientTls({ dataDir: suite.dataDir, serviceName: 'tenant' });
    client = new VerifierClient({ baseUrl: `https://${target.hostname}:${port}`, tls, apiVersion: '2.6' });
  });

  after(async function () {
    client?.close();
    await proxy?.close();
  });

  const failureOf = (run: Promise<unknown>): Promise<unknown> =>
    run.then(
      () => undefined,
      (error: unknown) => error,
    );

  it('deletes an agent whose DELETE was carried out and answered 404 when sent again', async function () {
    const agentId = randomUUID();
    await client.addAgent(agentId, buildPushEnrolmentBody({ akPublic: generateTestKey('rsa', 'ak').tpm2bPublic }, checkEnrolmentPolicies({}), {}));
    // The enrolment's connection is kept alive: the DELETE goes out on it and its reply is cut.
    proxy.cutNextReply();
    expect(await client.delete(agentId)).to.equal('deleted');
    expect(proxy.cuts).to.equal(1);
    const gone = await failureOf(client.status(agentId));
    expect(gone).to.be.instanceOf(KeylimeHttpError);
    expect((gone as KeylimeHttpError).remoteHttpStatus).to.equal(404);
    // Sent once, a DELETE that finds nothing is still the verifier's 404.
    const plain = await failureOf(client.delete(agentId));
    expect(plain).to.be.instanceOf(KeylimeHttpError);
    expect((plain as KeylimeHttpError).remoteHttpStatus).to.equal(404);
    expect((plain as KeylimeHttpError).resent).to.equal(false);
  });

  it('deletes a runtime policy whose DELETE was carried out and answered 404 when sent again', async function () {
    const name = `policy-${randomUUID()}`;
    await client.addRuntimePolicy(name, POLICY);
    proxy.cutNextReply();
    const cuts = proxy.cuts;
    await client.deleteRuntimePolicy(name);
    expect(proxy.cuts).to.equal(cuts + 1);
    expect(await client.listRuntimePolicies()).to.not.include(name);
    const plain = await failureOf(client.deleteRuntimePolicy(name));
    expect((plain as KeylimeHttpError).remoteHttpStatus).to.equal(404);
  });
});
