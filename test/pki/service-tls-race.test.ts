import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { startTogetherOnOneDir, WAIT_FOR_START } from '../helpers/simultaneous-starts.js';

/**
 * A child that waits for the wall-clock millisecond `at`, then loads (or issues) the `verifier-client`
 * certificate in `dir`, as verifier processes starting on one data folder (or renewing the same
 * certificate at once) do, waits a moment (another may still be writing) and prints the certificate
 * it holds, the one on disk and whether the key on disk belongs to it, or the error.
 */
const CHILD = `
const [dir, at] = [process.argv[1], Number(process.argv[2])];
const { readFileSync } = await import('node:fs');
const { createPublicKey, X509Certificate } = await import('node:crypto');
const { loadOrCreateClientTls } = await import(${JSON.stringify(new URL('../../lib/pki/service-tls.js', import.meta.url).href)});
${WAIT_FOR_START}
try {
  const tls = await loadOrCreateClientTls({ dataDir: dir, serviceName: 'verifier-client', warn: () => undefined });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const cert = readFileSync(dir + '/ca/verifier-client-cert.crt', 'utf8');
  const key = readFileSync(dir + '/ca/verifier-client-private.pem', 'utf8');
  const pairs = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' }).equals(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  console.log(JSON.stringify({ held: tls.cert, onDisk: cert, pairs }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error.message) }));
}
`;

describe('service TLS: several processes issuing one certificate at once on one CA folder', function () {
  this.timeout(120_000);

  it('issue it once: all hold the pair on disk, whose key belongs to its certificate, and no lock or temporary file is left', async () => {
    await startTogetherOnOneDir<{ held?: string; onDisk?: string; pairs?: boolean; error?: string }>('ironlime-cert-race-', CHILD, async (results, dir, round) => {
      expect(results.filter((r) => r.error !== undefined).map((r) => r.error), `round ${round}`).to.deep.equal([]);
      expect(results.map((r) => r.pairs), `round ${round}: key on disk belongs to the certificate on disk`).to.deep.equal(results.map(() => true));
      expect(new Set(results.flatMap((r) => [r.held, r.onDisk])).size, `round ${round}: distinct certificates held or on disk`).to.equal(1);
      expect((await readdir(path.join(dir, 'ca'))).sort()).to.deep.equal(['ca-private.pem', 'cacert.crt', 'verifier-client-cert.crt', 'verifier-client-private.pem']);
    });
  });
});
