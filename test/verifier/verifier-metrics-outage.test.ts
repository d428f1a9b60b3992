import { expect } from 'chai';
import type { Database } from '../../lib/db/database-factory.js';
import { RevocationNotifier } from '../../lib/revocation/revocation-notifier.js';
import { VerifierMetrics } from '../../lib/verifier/verifier-metrics.js';
import { BlackHoleProxy } from '../foundation/helpers/black-hole-proxy.js';
import { openSchemaThroughPort, openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

/**
 * `/metrics` while the database is away: the outbox gauge counts rows on each scrape; the scrape still
 * answers, at once, with every other gauge, and that count shown as unknown (NaN, which prom-client
 * writes `Nan`: Prometheus parses it whatever the case), not as 0.
 */
describe('verifier metrics: a scrape answers while the database is away', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;

  before(async function () {
    opened = await openMigratedTestSchema();
  });

  after(async function () {
    await opened?.dispose();
  });

  /** The metrics as the verifier wires them, the outbox count going through `database`. */
  function metricsOn(database: Database): { metrics: VerifierMetrics; notifier: RevocationNotifier } {
    const notifier = new RevocationNotifier({ webhooks: ['http://127.0.0.1:9/revoked'], outbox: { knex: database.knex } });
    const metrics = new VerifierMetrics(2, { agentStates: () => [], unstoredRounds: () => 7, slotCapacity: () => 20, undeliveredRevocations: () => notifier.undelivered() });
    return { metrics, notifier };
  }

  async function scrape(metrics: VerifierMetrics): Promise<{ text: string; ms: number }> {
    const started = Date.now();
    const { text } = await metrics.exposition();
    return { text, ms: Date.now() - started };
  }

  it('the database refusing connections: the other gauges are exposed, the outbox count is NaN', async function () {
    const proxy = new TcpProxy();
    await proxy.start();
    const database = await openSchemaThroughPort(opened.database.knex, proxy.port);
    const { metrics, notifier } = metricsOn(database);
    try {
      expect((await scrape(metrics)).text).to.match(/^ironlime_verifier_undelivered_revocations 0$/m);
      proxy.cut();
      const { text, ms } = await scrape(metrics);
      // The count's deadline is 1 s (the database's own bounds: 30 s); room for a CI host that stalls this process for ~3 s.
      expect(ms).to.be.below(6000);
      expect(text).to.match(/^ironlime_verifier_unstored_rounds 7$/m);
      expect(text).to.match(/^ironlime_verifier_undelivered_revocations nan$/im);
      proxy.restore();
      expect((await scrape(metrics)).text, 'counted again once the database is back').to.match(/^ironlime_verifier_undelivered_revocations 0$/m);
    } finally {
      await notifier.close();
      await database.close();
      await proxy.close();
    }
  });

  it('the database silent (a black hole): the scrape answers within the count deadline', async function () {
    const proxy = new BlackHoleProxy();
    await proxy.start();
    const database = await openSchemaThroughPort(opened.database.knex, proxy.port);
    const { metrics, notifier } = metricsOn(database);
    try {
      expect((await scrape(metrics)).text).to.match(/^ironlime_verifier_undelivered_revocations 0$/m);
      proxy.blackHole();
      const { text, ms } = await scrape(metrics);
      // The count's deadline is 1 s (the database's own bounds: 30 s); room for a CI host that stalls this process for ~3 s.
      expect(ms).to.be.below(6000);
      expect(text).to.match(/^ironlime_verifier_unstored_rounds 7$/m);
      expect(text).to.match(/^ironlime_verifier_undelivered_revocations nan$/im);
    } finally {
      proxy.resume();
      await notifier.close();
      await database.close();
      await proxy.close();
    }
  });
});
