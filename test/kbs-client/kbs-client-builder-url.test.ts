import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import type { EvidenceProvider } from '../../lib/kbs-client/evidence-provider.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';

/** Never asked: these builds are refused, or closed unused. */
const provider: EvidenceProvider = { tee: 'tpm', primaryEvidence: async () => ({}) };

/**
 * The broker URL the builder takes (`kbs get-resource --url`, `--issuer-url`): only `https://` was
 * checked, so credentials in it were printed in every error line (and the KBS protocol has no use for
 * them), and a query or fragment swallowed the `/kbs/v0/...` path appended to it: every request went
 * to the broker's root. Each is refused when built, naming the fault and not the credentials.
 */
describe('kbs-client builder: the broker URL', () => {
  it('refuses credentials, a query or a fragment in either URL, without printing the password', () => {
    for (const [url, issuer] of [
      ['https://user:hunter2@broker:8080', undefined],
      ['https://broker:8080', 'https://user:hunter2@issuer:8080'],
      ['https://broker:8080/?tenant=a', undefined],
      ['https://broker:8080#x', undefined],
      ['https://', undefined],
    ] as const) {
      const builder = new KbsClientBuilder(url).evidenceProvider(provider);
      if (issuer !== undefined) builder.mode('passport').issuer(issuer);
      expect(() => builder.build(), url).to.throw(InvalidConfig, /broker URL/);
      try {
        builder.build();
      } catch (error) {
        expect((error as Error).message, url).not.to.contain('hunter2');
      }
    }
  });

  it('takes a plain https URL, with a path prefix or a trailing slash', async () => {
    for (const url of ['https://broker:8080', 'https://broker:8080/', 'https://proxy.example/kbs-a', 'https://[::1]:8080']) {
      const built = new KbsClientBuilder(url).evidenceProvider(provider).build();
      await built.close();
    }
  });
});
