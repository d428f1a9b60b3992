import { expect } from 'chai';
import { request } from 'node:https';
import knexFactory from 'knex';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { viewerToken } from './dashboard-viewer.js';

/** The node table's queries: a count and a page of the union of both node tables, named n. */
const isNodeTableQuery = (sql: string): boolean => sql.includes('union all') && sql.includes(') as n');

/**
 * Every dashboard page ran its queries as soon as it was asked, on the verifier's own connection pool
 * (10, which verdict writes need): a viewer reloading in a loop could hold every connection. Pages
 * are now made 2 at once; 32 more wait; the rest are answered 503 with Retry-After.
 */
describe('dashboard pages: a bounded number made at once', function () {
  this.timeout(60_000);
  const suite = verifierPerSuite('ironlime-dashboard-page-limit-');

  it('40 node-table loads while the table is locked: at most 2 of their queries wait on the database at once, 34 pages are made, 6 answered 503 with Retry-After', async () => {
    const token = await viewerToken(suite.dataDir);
    const knex = suite.database.database.knex;
    const schema = ((await knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name as string;
    const locker = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, searchPath: [schema], pool: { min: 0, max: 1 } });
    const inFlight = new Set<string>();
    let most = 0;
    const started = (query: { sql: string; __knexQueryUid: string }): void => {
      if (!isNodeTableQuery(query.sql)) return;
      inFlight.add(query.__knexQueryUid);
      most = Math.max(most, inFlight.size);
    };
    const ended = (_responseOrError: unknown, query: { __knexQueryUid: string }): void => void inFlight.delete(query.__knexQueryUid);
    knex.on('query', started).on('query-response', ended).on('query-error', ended);
    const trx = await locker.transaction();
    try {
      // Every page's node-table query now waits on PostgreSQL until the lock goes: as a slow database would.
      await trx.raw('lock table verifier_agents in access exclusive mode');
      let answered = 0;
      const loads = Array.from({ length: 40 }, () =>
        timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', '/dashboard/nodes', { cookie: `__Host-ironlime_token=${token}` }).finally(() => (answered += 1)),
      );
      // Every load has arrived once the 6 beyond the queue are answered (a fixed 2 s let some arrive after the
      // lock went, on a loaded host): 2 are made, 32 wait.
      await pollUntil({ timeoutMs: 30_000, intervalMs: 50 }, 'the 6 loads beyond the queue answered', () => Promise.resolve(answered >= 6));
      expect(inFlight.size).to.equal(2);
      await trx.commit();
      const replies = await Promise.all(loads);
      const statuses = replies.map((reply) => reply.status).sort();
      expect(statuses).to.deep.equal([...Array.from({ length: 34 }, () => 200), ...Array.from({ length: 6 }, () => 503)]);
      for (const reply of replies.filter((one) => one.status === 503)) expect(reply.headers['retry-after']).to.equal('2');
      expect(most).to.equal(2);
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
      knex.off('query', started).off('query-response', ended).off('query-error', ended);
      await locker.destroy();
    }
  });

  it('a page whose client left while it waited gives its place up: after 32 waiting clients hang up, the next load waits its turn (200) instead of 503', async () => {
    const token = await viewerToken(suite.dataDir);
    const knex = suite.database.database.knex;
    const schema = ((await knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name as string;
    const locker = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, searchPath: [schema], pool: { min: 0, max: 1 } });
    const trx = await locker.transaction();
    try {
      await trx.raw('lock table verifier_agents in access exclusive mode');
      const cookie = { cookie: `__Host-ironlime_token=${token}` };
      // Two pages are made (their queries wait on the lock); 32 wait for a turn, and their clients hang up.
      const held = [0, 1].map(() => timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', '/dashboard/nodes', cookie));
      await pollUntil({ timeoutMs: 30_000, intervalMs: 50 }, 'both pages waiting on the lock', async () => {
        const waiting = (await knex.raw("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%union all%'")) as { rows: { n: number }[] };
        return (waiting.rows[0]?.n ?? 0) >= 2;
      });
      const leavers = Array.from({ length: 32 }, () => {
        const req = request(new URL('/dashboard/nodes', suite.verifier.url), { method: 'GET', ca: suite.verifier.caCert, headers: cookie, agent: false });
        req.on('error', () => undefined);
        req.end();
        return req;
      });
      // Seconds, not hundreds of ms, for the 32 to queue and then for the server to see them leave: a loaded host is slow at both.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      for (const req of leavers) req.destroy();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const next = timedHttpsCall(suite.verifier.url, suite.verifier.caCert, 'GET', '/dashboard/nodes', cookie);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await trx.commit();
      expect((await next).status).to.equal(200);
      expect((await Promise.all(held)).map((reply) => reply.status)).to.deep.equal([200, 200]);
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
      await locker.destroy();
    }
  });
});
