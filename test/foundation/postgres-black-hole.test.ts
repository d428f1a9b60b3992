import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { withoutStatementBound } from '../../lib/db/postgres-bounds.js';
import { DatabaseOutage } from '../../lib/verifier/push/database-outage.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { BlackHoleProxy } from './helpers/black-hole-proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const BOUNDS = { connectMs: 1_000, acquireMs: 2_000, statementMs: 1_500, idleInTransactionMs: 2_000 };
/** How long past a bound the failure may take to surface (timers; a CI host that stalls this process for ~3 s). */
const SLACK_MS = 4_000;

/** How `work` ended and after how long; 'hung' when it was still waiting after `giveUpMs`. */
async function outcome(work: Promise<unknown>, giveUpMs: number): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const result = await Promise.race([
    work.then(
      () => ({ error: undefined }),
      (error: unknown) => ({ error }),
    ),
    sleep(giveUpMs).then(() => ({ error: 'hung' })),
  ]);
  return { ...result, ms: Date.now() - started };
}

async function backendPid(knex: Knex): Promise<number> {
  const result = (await knex.raw('select pg_backend_pid() as pid')) as { rows: Array<{ pid: number }> };
  return result.rows[0]?.pid ?? -1;
}

/**
 * PostgreSQL behind a proxy that goes silent without closing anything (a firewall dropping packets,
 * a pulled cable): waits on the database must end within their bounds with an error, so the services'
 * retry and health logic runs, and the pool must not hand out a connection that went dark again.
 */
describe('PostgreSQL that goes silent (black-hole TCP proxy, real PostgreSQL)', function () {
  this.timeout(30_000);
  const schema = `test_blackhole_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
  let proxy: BlackHoleProxy;
  let proxiedUrl: string;
  let database: Database;

  before(async function () {
    await admin.raw('create schema ??', [schema]);
    proxy = new BlackHoleProxy('127.0.0.1');
    await proxy.start();
    const url = new URL(TEST_DATABASE_URL);
    url.host = `127.0.0.1:${proxy.port}`;
    proxiedUrl = url.toString();
    database = await createDatabase({ url: proxiedUrl, dataDir: tmpdir(), searchPath: schema, postgresBounds: BOUNDS });
  });

  afterEach(function () {
    proxy.resume();
  });

  after(async function () {
    await database.close();
    await proxy.close();
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
  });

  it('fails a statement in flight within the bound, and after the network returns the pool does not reuse its connection', async function () {
    const darkConnection = await backendPid(database.knex);
    const outage = new DatabaseOutage(database.knex, 1_000, () => Date.now());
    // 5 s: a reply due while a CI host stalls this process (~3 s) can be read before the black hole is made.
    const inFlight = database.knex.raw('select pg_sleep(5)');
    await sleep(100);
    proxy.blackHole();
    const { error, ms } = await outcome(inFlight, BOUNDS.statementMs + 2 * SLACK_MS);
    expect(error, 'the statement is still waiting').not.to.equal('hung');
    expect(String(error)).to.match(/no reply from PostgreSQL within 1500 ms/);
    expect(ms).to.be.below(BOUNDS.statementMs + SLACK_MS);
    // The push verifier counts it as the database being unreachable, not as a failed statement.
    expect(outage.latest(), 'not seen as an outage').not.to.equal(undefined);
    outage.close();

    proxy.resume();
    for (let i = 0; i < 3; i += 1) {
      expect(await backendPid(database.knex)).not.to.equal(darkConnection);
    }
  });

  it('fails a statement sent on an idle pooled connection whose peer went silent, then recovers', async function () {
    await backendPid(database.knex);
    proxy.blackHole();
    const { error, ms } = await outcome(backendPid(database.knex), BOUNDS.statementMs + 2 * SLACK_MS);
    expect(error, 'the statement is still waiting').not.to.equal('hung');
    expect(ms).to.be.below(BOUNDS.statementMs + SLACK_MS);
    proxy.resume();
    expect(await backendPid(database.knex)).to.be.above(0);
  });

  it('has PostgreSQL end a transaction whose client went silent, releasing its locks for the other services', async function () {
    const lockName = `black-hole-${schema}`;
    let signalLocked: () => void = () => undefined;
    const locked = new Promise<void>((resolve) => (signalLocked = resolve));
    const holder = database.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [lockName]);
      signalLocked();
      await trx.raw('select pg_sleep(0.3)');
    });
    await locked;
    proxy.blackHole();
    const started = Date.now();
    const { error } = await outcome(holder, BOUNDS.statementMs + 2 * SLACK_MS);
    expect(error, 'the holder is still waiting').not.to.equal('hung');
    // knex reports the failed ROLLBACK that follows; it still says why and counts as unreachable.
    expect(String(error)).to.match(/no reply from PostgreSQL/);
    expect((error as { code?: string }).code).to.equal('ETIMEDOUT');
    // Another service, not behind the black hole, waits for the lock the silent client held.
    const other = await outcome(
      admin.transaction((trx) => trx.raw('select pg_advisory_xact_lock(hashtext(?))', [lockName])),
      BOUNDS.idleInTransactionMs + 2 * SLACK_MS,
    );
    expect(other.error, 'the lock is still held for the silent client').to.equal(undefined);
    expect(Date.now() - started).to.be.below(BOUNDS.statementMs + BOUNDS.idleInTransactionMs + SLACK_MS);
  });

  it('refuses to open the database within the connect bound when PostgreSQL is silent', async function () {
    proxy.blackHole();
    const opening = createDatabase({ url: proxiedUrl, dataDir: tmpdir(), searchPath: schema, postgresBounds: BOUNDS });
    const { error, ms } = await outcome(opening, BOUNDS.acquireMs + 2 * SLACK_MS);
    expect(error, 'the boot check is still waiting').not.to.equal('hung');
    expect((error as { code?: string }).code).to.equal('ERR_DATABASE_UNAVAILABLE');
    expect(ms).to.be.below(BOUNDS.connectMs + SLACK_MS);
  });
});

describe('PostgreSQL statement bound and migrations (real PostgreSQL)', function () {
  this.timeout(30_000);
  let database: Database;

  before(async function () {
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: tmpdir(), postgresBounds: { statementMs: 500 } });
  });

  after(async function () {
    await database.close();
  });

  it('fails a service statement longer than the bound but lets a migration statement run on', async function () {
    // The bounded statements sleep 5 s: a reply due while a CI host stalls this process (~3 s) is read
    // before the bound's timer, due in the same stall, fires.
    const { error } = await outcome(database.knex.raw('select pg_sleep(5)'), 10_000);
    expect(String(error)).to.match(/no reply from PostgreSQL within 500 ms/);
    await withoutStatementBound(() => database.knex.raw('select pg_sleep(1)'));
    await database.knex.transaction((trx) => withoutStatementBound(() => trx.raw('select pg_sleep(1)')));
    // Once the scopes have ended, the service bound holds again.
    const after = await outcome(database.knex.raw('select pg_sleep(5)'), 10_000);
    expect(String(after.error)).to.match(/no reply from PostgreSQL within 500 ms/);
  });

  it('bounds a statement sent in the promise form (the broker\'s prepared statements) the same way and ends its connection', async function () {
    const connection = (await database.knex.client.acquireConnection()) as {
      query(config: unknown): Promise<unknown>;
      once(event: 'end', listener: () => void): void;
    };
    const ended = new Promise<void>((resolve) => connection.once('end', resolve));
    try {
      const { error } = await outcome(connection.query({ name: 'test_sleep', text: 'select pg_sleep(5)' }), 10_000);
      expect(String(error)).to.match(/no reply from PostgreSQL within 500 ms; connection dropped/);
      expect((error as { code?: string }).code).to.equal('ETIMEDOUT');
    } finally {
      await database.knex.client.releaseConnection(connection);
    }
    const { error } = await outcome(ended, 10_000);
    expect(error, 'the connection is ended, so the pool cannot hand it out again').to.equal(undefined);
    expect(await database.knex.raw('select 1 as one')).to.have.nested.property('rows[0].one', 1);
  });
});
