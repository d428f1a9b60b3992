import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { startTogetherOnOneDir, WAIT_FOR_START } from '../helpers/simultaneous-starts.js';

/**
 * A child that waits for the wall-clock millisecond `at`, then loads (or makes) the broker's keys in
 * `dir`, as a broker starting on a shared data dir does, waits a moment (another may still be writing)
 * and prints the keys it holds and the ones on disk then, or the error.
 */
const CHILD = `
const [dir, at] = [process.argv[1], Number(process.argv[2])];
const { loadOrCreateBrokerKeys } = await import(${JSON.stringify(new URL('../../lib/broker/broker-keys.js', import.meta.url).href)});
const held = (keys) => Buffer.from(keys.masterKey).toString('base64') + ' ' + keys.tokenPublicKey.export({ type: 'spki', format: 'der' }).toString('base64');
${WAIT_FOR_START}
try {
  const keys = await loadOrCreateBrokerKeys(dir, 'https://broker.test');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  console.log(JSON.stringify({ held: held(keys), onDisk: held(await loadOrCreateBrokerKeys(dir, 'https://broker.test')) }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error.message) }));
}
`;

describe('broker keys: several brokers starting at once on one data dir', function () {
  this.timeout(120_000);

  it('all hold the keys on disk (resources one seals, the others and its own restart open), and leave no temporary files', async () => {
    await startTogetherOnOneDir<{ held?: string; onDisk?: string; error?: string }>('ironlime-broker-keyrace-', CHILD, async (results, dir, round) => {
      expect(results.filter((r) => r.error !== undefined).map((r) => r.error), `round ${round}`).to.deep.equal([]);
      expect(new Set(results.flatMap((r) => [r.held, r.onDisk])).size, `round ${round}: distinct keys held or on disk`).to.equal(1);
      expect((await readdir(path.join(dir, 'broker'))).sort()).to.deep.equal(['resource-master.key', 'token-issuer.jwks.json', 'token-signing-key.pem']);
    });
  });
});
