import { expect } from 'chai';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { numberArrayBody, timedHttpsCall } from '../helpers/timed-https-call.js';
import { viewerToken } from './dashboard-viewer.js';

describe('dashboard login: a public route with its own small body limit (H-1)', function () {
  this.timeout(120_000);
  const suite = verifierPerSuite('ironlime-login-body-');

  const login = (type: string, body: string) => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'POST', '/dashboard/login', { 'content-type': type }, body);

  it('refuses 413 a JSON body over 8 KiB without reading it (it was parsed up to the service limit, 64 MiB)', async () => {
    const big = await login('application/json', JSON.stringify({ token: 'a'.repeat(48 * 1024 * 1024) }));
    expect(big.status).to.equal(413);
    const array = await login('application/json', numberArrayBody(8 * 1024 * 1024));
    expect(array.status).to.equal(413);
    expect(array.worstStallMs).to.be.below(1000);
  });

  it('still takes a small form or JSON body (a refused token is a 401 page)', async () => {
    expect((await login('application/x-www-form-urlencoded', 'token=x.y.z')).status).to.equal(401);
    expect((await login('application/json', '{"token":"x.y.z"}')).status).to.equal(401);
  });

  it('refuses 401 a valid token with a line feed inside its signature (it was a 500: the line feed went into Set-Cookie)', async () => {
    const token = await viewerToken(suite.dataDir, 't', 'a');
    const cut = token.length - 20;
    const respelled = await login('application/x-www-form-urlencoded', `token=${encodeURIComponent(`${token.slice(0, cut)}\n${token.slice(cut)}`)}`);
    expect(respelled.status, respelled.body).to.equal(401);
    expect(respelled.headers['set-cookie']).to.equal(undefined);
    expect(respelled.body).to.include('token refused: malformed');
    expect((await login('application/x-www-form-urlencoded', `token=${token}`)).status).to.equal(303);
  });
});
