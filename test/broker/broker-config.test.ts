import { expect } from 'chai';
import { buildBrokerConfig } from '../../lib/broker/broker-config.js';
import { InvalidConfig } from '../../interfaces/errors.js';

describe('broker config: verifierUrl', function () {
  const base = { dataDir: '/tmp/ironlime-broker-config-test', databaseUrl: 'postgres://postgres@127.0.0.1:5432/test' };

  it('takes an http(s) origin with a path', function () {
    for (const url of ['https://verifier.example:8881', 'http://127.0.0.1:8881', 'https://verifier:8881/keylime']) {
      expect(buildBrokerConfig({ ...base, verifierUrl: url }).verifierUrl, url).to.equal(url);
    }
  });

  it('refuses at start what the good-standing client could not use as given (no URL, credentials, a query, a fragment, another scheme)', function () {
    for (const url of ['verifier:8881', 'not a url', 'https://user:secret@verifier:8881', 'https://verifier:8881/?x=1', 'https://verifier:8881/#top', 'ftp://verifier', '']) {
      expect(() => buildBrokerConfig({ ...base, verifierUrl: url }), url).to.throw(InvalidConfig, 'broker.verifierUrl');
    }
  });
});
