import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { createTestSchema } from './helpers/verifier-fixture.js';

/**
 * The verifier's pull writer waits `verdictBatchDelayMs` of its own settings, not the writer's
 * default 50 ms: a quote_interval of 2.5 s gives 250 ms, and a lease of 1.5 s caps it at 150 ms.
 * Read from what an operator sees, `GET /metrics`.
 */
describe('startVerifier: the pull writer\'s batch window comes from quote_interval and the lease (real PostgreSQL)', function () {
  this.timeout(30_000);

  async function batchWindowMetric(quoteInterval: number, leaseSeconds: number): Promise<string | undefined> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-batch-delay-'));
    const schema = await createTestSchema();
    try {
      const verifier = await startVerifier({ dataDir: dir, databaseUrl: schema.url, quoteInterval, leaseSeconds }, { inProcessForTests: true });
      try {
        const reply = await verifier.service.app.inject({ method: 'GET', url: '/metrics' });
        expect(reply.statusCode).to.equal(200);
        return /^ironlime_verifier_verdict_batch_window_seconds (\S+)$/m.exec(reply.body)?.[1];
      } finally {
        await verifier.close();
      }
    } finally {
      await schema.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('is a tenth of quote_interval, and at most a tenth of the lease', async function () {
    expect(await batchWindowMetric(2.5, 30)).to.equal('0.25');
    expect(await batchWindowMetric(2.5, 1.5)).to.equal('0.15');
  });
});
