import { expect } from 'chai';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { refusal, startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

/** A bearer token the broker cannot take is refused as a token, never answered as if none was sent. */
describe('broker: a bearer token of a form it refuses', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let broker: TestBroker;
  let http: KbsHttp;
  const resource = '/kbs/v0/resource/node/disk-key/form';

  before(async function () {
    opened = await openTestSchema();
    broker = await startTestBroker({}, opened.database);
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
  });

  after(async function () {
    await http?.close();
    await broker?.dispose();
    await opened?.dispose();
  });

  it('a token over 16,384 characters is TokenVerifierError naming its size, not TokenNotFound', async function () {
    const refused = await refusal(http.send('GET', resource, { headers: { authorization: `Bearer ${'a'.repeat(16_385)}` } }));
    expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'TokenVerifierError']);
    expect(refused.detail).to.contain('longer than 16384 characters');
  });

  it('a token with a character outside the token alphabet is TokenVerifierError, not TokenNotFound', async function () {
    const refused = await refusal(http.send('GET', resource, { headers: { authorization: 'Bearer abc*def' } }));
    expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'TokenVerifierError']);
    expect(refused.detail).to.contain('not a token');
  });

  it('no Authorization header and no cookie is still TokenNotFound', async function () {
    const refused = await refusal(http.send('GET', resource));
    expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'TokenNotFound']);
  });
});
