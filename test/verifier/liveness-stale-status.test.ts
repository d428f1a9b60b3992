import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createKeylimeClient, type KeylimeClient } from '../../lib/http/keylime-client.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { LivenessClient } from '../../lib/verifier/liveness/liveness-client.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { createTestSchema } from './helpers/verifier-fixture.js';

const AGENT = 'stale-host';

/** A verifier on its own schema with `AGENT` enrolled for liveness checks; the test sets when it was last seen. */
interface LivenessFixture {
  readonly liveness: LivenessClient;
  /** Stores `AGENT` as alive, last seen `seconds` ago (negative: ahead of the database's clock). */
  seenSecondsAgo(seconds: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Checks an hour apart, so that the monitor stays out of the way. Nothing listens on port 9: the first
 * check is a miss, and the node stays pending until the test says otherwise.
 */
async function livenessFixture(config: { readonly requestTimeout: number; readonly staleAfter?: number }): Promise<LivenessFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-liveness-stale-'));
  const schema = await createTestSchema();
  const verifier: RunningVerifier = await startVerifier({ dataDir: dir, port: 0, databaseUrl: schema.url, quoteInterval: 3600, maxRetries: 2, ...config });
  const knex: Knex = knexFactory({ client: 'pg', connection: schema.url, pool: { min: 0, max: 1 } });
  const tenantTls = await loadOrCreateClientTls({ dataDir: dir, serviceName: 'tenant' });
  const http: KeylimeClient = createKeylimeClient({ baseUrl: verifier.url, tls: { ca: verifier.caCert, cert: tenantTls.cert, key: tenantTls.key } });
  const liveness = new LivenessClient(http);
  const agentTls = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
  await liveness.enrol(AGENT, { mode: 'id-only', ip: '127.0.0.1', port: 9, mtlsCert: agentTls.certPem, proofKey: null });
  return {
    liveness,
    seenSecondsAgo: async (seconds) => {
      await knex('verifier_liveness')
        .where({ agent_id: AGENT })
        .update({ status: 'alive', misses: 0, last_failure: null, last_seen_at: knex.raw(`now() - make_interval(secs => ?)`, [seconds]) });
    },
    close: async () => {
      http.close();
      await verifier.close();
      await knex.destroy();
      await schema.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The verifier's own liveness status: only processes of the enrolling verifier id check a node, any
 * process answers `GET /liveness/{id}`, so a stored `alive` outlives a retired verifier id or a stopped
 * monitor. Past its bound it is shown as `pending` with `stale: true`, as a stale PASS is.
 */
describe('verifier: a liveness alive older than its bound is not shown as alive', function () {
  this.timeout(30_000);
  let fixture: LivenessFixture;

  before(async function () {
    // Each check waits at most 1 s, 2 misses allowed: the bound is 2 × 3600 + 2 × (3600 + 1) s.
    fixture = await livenessFixture({ requestTimeout: 1 });
  });

  after(async function () {
    await fixture?.close();
  });

  it('shows alive within the bound, with the bound it used', async function () {
    await fixture.seenSecondsAgo(60);
    const status = await fixture.liveness.status(AGENT);
    expect(status).to.include({ liveness_status: 'alive', attestation_status: 'LIVE (no integrity evidence)', stale: false, freshness_bound: 14_402 });
  });

  it('shows an alive last seen 24 h ago as pending and stale, never LIVE', async function () {
    await fixture.seenSecondsAgo(86_400);
    const status = await fixture.liveness.status(AGENT);
    expect(status).to.include({ liveness_status: 'pending', attestation_status: 'PENDING', stale: true, freshness_bound: 14_402 });
    expect(status.last_seen).to.be.a('number');
  });

  it('shows an alive seen more than 5 s in the future as pending and stale', async function () {
    await fixture.seenSecondsAgo(-60);
    expect(await fixture.liveness.status(AGENT)).to.include({ liveness_status: 'pending', stale: true });
  });
});

/**
 * `staleAfter` (set for TPM agents, e.g. 10 s) is floored for liveness nodes: a sweep waits for its
 * slowest check, so one blackholed node (requestTimeout) spaces every other node's answers by up to an
 * interval plus two timeouts, and an alive must not show stale for that.
 */
describe('verifier: the liveness bound is never below two slow sweeps', function () {
  this.timeout(30_000);
  let fixture: LivenessFixture;

  before(async function () {
    fixture = await livenessFixture({ requestTimeout: 60, staleAfter: 10 });
  });

  after(async function () {
    await fixture?.close();
  });

  it('shows an alive answered 300 s ago under staleAfter 10 s as alive, with the floored bound', async function () {
    await fixture.seenSecondsAgo(300);
    expect(await fixture.liveness.status(AGENT)).to.include({ liveness_status: 'alive', stale: false, freshness_bound: 2 * (3600 + 60) });
  });
});
