import { expect } from 'chai';
import { buildConfig } from '../../lib/config/load-config.js';
import { validateServiceConfig } from '../../lib/config/service-config-sources.js';
import { VerifierConfig } from '../../lib/verifier/verifier-config.js';

/** A value of the wrong JSON type is reported as such, not by a range rule it cannot be checked against. */
describe('config: a value of the wrong type says so first', () => {
  it('a number written as a JSON string in the main config', () => {
    expect(() => buildConfig({ keylime: { statusTimeoutSeconds: '300' } })).to.throw('invalid config: keylime.statusTimeoutSeconds: must be a number, not the string "300"');
  });

  it('a number written as a JSON string in a service config', () => {
    expect(() => validateServiceConfig(VerifierConfig, { dataDir: '/x', quoteInterval: '2' }, 'verifier')).to.throw('invalid config: verifier.quoteInterval: must be a number, not the string "2"');
    expect(() => validateServiceConfig(VerifierConfig, { dataDir: '/x', maxRetries: '5' }, 'verifier')).to.throw('invalid config: verifier.maxRetries: must be a number, not the string "5"');
  });

  it('a boolean written as a JSON string', () => {
    expect(() => buildConfig({ keylime: { failCleanOnAttestationFailure: 'true' } })).to.throw(/must be true or false, not the string "true"/);
  });

  it('a number of the right type but out of range still names the range', () => {
    expect(() => buildConfig({ keylime: { statusTimeoutSeconds: 100_000 } })).to.throw('invalid config: keylime.statusTimeoutSeconds: must not be greater than 86400');
  });
});
