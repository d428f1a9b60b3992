import { readdir } from 'node:fs/promises';
import { expect } from 'chai';
import { startTogetherOnOneDir, WAIT_FOR_START } from '../helpers/simultaneous-starts.js';

/**
 * A child that waits for the wall-clock millisecond `at`, then loads (or makes) the verifier's token
 * and audit keys in `dir`, as a verifier starting on a shared data dir does, and prints their public
 * keys or the error.
 */
const CHILD = `
const [dir, at] = [process.argv[1], Number(process.argv[2])];
const { loadOrCreateTokenKey } = await import(${JSON.stringify(new URL('../../lib/auth/token-signing-key.js', import.meta.url).href)});
const { loadOrCreateAuditKey } = await import(${JSON.stringify(new URL('../../lib/audit/audit-signing-key.js', import.meta.url).href)});
${WAIT_FOR_START}
try {
  const spki = (pair) => pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  console.log(JSON.stringify({ token: spki(loadOrCreateTokenKey(dir)), audit: spki(loadOrCreateAuditKey(dir)) }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error.message) }));
}
`;

describe('verifier keys: several verifiers starting at once on one data dir', function () {
  this.timeout(120_000);

  it('all start, on one token key and one audit key, and leave no temporary files', async () => {
    await startTogetherOnOneDir<{ token?: string; audit?: string; error?: string }>('ironlime-keyrace-', CHILD, async (results, dir, round) => {
      expect(results.filter((r) => r.error !== undefined).map((r) => r.error), `round ${round}`).to.deep.equal([]);
      expect(new Set(results.map((r) => r.token)).size).to.equal(1);
      expect(new Set(results.map((r) => r.audit)).size).to.equal(1);
      expect((await readdir(dir)).sort()).to.deep.equal(['api-token-key.pem', 'audit-public-key.pem', 'audit-signing-key.pem']);
    });
  });
});
