import { expect } from 'chai';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { numberArrayBody, timedHttpsCall } from '../helpers/timed-https-call.js';

describe('a request to no route is refused before its body is read (H-1)', function () {
  this.timeout(120_000);
  const suite = verifierPerSuite('ironlime-unrouted-');

  const post = (urlPath: string, body: string) => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'POST', urlPath, { 'content-type': 'application/json' }, body);

  it('answers 404 in the envelope to a 16 MiB JSON array without parsing it (it blocked the event loop for seconds)', async () => {
    const reply = await post('/no/such/route', numberArrayBody(16 * 1024 * 1024));
    expect(reply.status).to.equal(404);
    expect(JSON.parse(reply.body)).to.deep.equal({ code: 404, status: 'Not Found', results: {} });
    expect(reply.worstStallMs).to.be.below(1000);
  });

  it('keeps the unsupported-version 400 and the plain 404 for requests with and without a body', async () => {
    const version = await post('/v9.9/agents/a', '{"a":1}');
    expect(version.status).to.equal(400);
    expect(JSON.parse(version.body).status).to.match(/API version/i);
    const empty = await timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', '/no/such/route', {}, undefined);
    expect(JSON.parse(empty.body)).to.deep.equal({ code: 404, status: 'Not Found', results: {} });
  });
});
