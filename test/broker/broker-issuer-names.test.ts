import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

/**
 * A token is checked against the first trusted issuer of its `iss` only: a broker trusting another
 * issuer of its own name (both left at the default `ironlime-broker`) refused its own tokens as "bad
 * signature". Such a configuration is refused at start, naming the issuer.
 */
describe('broker: trusted issuer names are distinct from each other and from its own', function () {
  this.timeout(60_000);
  let issuerA: TestBroker | undefined;

  before(async function () {
    issuerA = await startTestBroker();
  });

  after(async function () {
    await issuerA?.dispose();
  });

  it('refuses to start when a trusted issuer has its own issuer name, or two trusted issuers share one; starts when the names differ', async function () {
    const jwks = issuerA!.running.jwksPath;
    const clashing: { issuer?: string; trustIssuers: string[] }[] = [{ trustIssuers: [jwks] }, { issuer: 'broker-b', trustIssuers: [jwks, `ironlime-broker=${jwks}`] }];
    for (const config of clashing) {
      const started = await startTestBroker(config).then(
        async (broker) => {
          await broker.dispose();
          return undefined;
        },
        (error: unknown) => error,
      );
      expect(started, JSON.stringify(config)).to.be.instanceOf(InvalidConfig);
      expect((started as InvalidConfig).message).to.contain('trusted issuer ironlime-broker has');
    }
    const distinct = await startTestBroker({ issuer: 'broker-b', trustIssuers: [jwks] });
    await distinct.dispose();
  });
});
