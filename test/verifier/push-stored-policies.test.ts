import { expect } from 'chai';
import { PolicyCache } from '../../lib/verifier/policy-cache.js';
import { SharedPolicyReads } from '../../lib/verifier/push/push-stored-policies.js';
import { VerifierPolicyRepository, type StoredRuntimePolicy, type Versioned } from '../../lib/verifier/verifier-policy-repository.js';
import { forEachDatabase, openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

/** The policy stores, counting their reads. */
class CountingPolicies extends VerifierPolicyRepository {
  reads = 0;
  failNext = false;

  override async findRuntime(name: string): Promise<Versioned<StoredRuntimePolicy> | undefined> {
    this.reads += 1;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('the database is away');
    }
    return super.findRuntime(name);
  }
}

function runtimePolicy(name: string, text: string): StoredRuntimePolicy {
  return { name, runtimePolicy: text, checksum: text.length.toString(16), generator: 1, tpmPolicy: null };
}

describe('push stored policies: one read by name for the push agents that share it', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let store: CountingPolicies;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
    store = new CountingPolicies(opened.database.knex);
    await store.insertRuntime(runtimePolicy('fleet', '{"v":1}'), 'default');
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  it('reads a name once for agents asking at once and within the reuse time, and again after it', async function () {
    // A reuse time that the statement between the reads below cannot outlast on a slow host.
    const reads = new SharedPolicyReads(store, new PolicyCache(), 500, 60_000, 10, () => Date.now()).since(0);
    const first = await Promise.all([reads.findRuntime('fleet'), reads.findRuntime('fleet'), reads.findRuntime('fleet')]);
    expect(store.reads).to.equal(1);
    expect(first.map((p) => p?.runtimePolicy)).to.deep.equal(['{"v":1}', '{"v":1}', '{"v":1}']);
    await store.updateRuntime(runtimePolicy('fleet', '{"v":2}'));
    expect((await reads.findRuntime('fleet'))?.runtimePolicy).to.equal('{"v":1}');
    expect(store.reads).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 550));
    expect((await reads.findRuntime('fleet'))?.runtimePolicy).to.equal('{"v":2}');
    expect(store.reads).to.equal(2);
  });

  it('keeps neither a failed read nor a name not found', async function () {
    const reads = new SharedPolicyReads(store, new PolicyCache(), 60_000, 60_000, 10, () => Date.now()).since(0);
    store.failNext = true;
    await reads.findRuntime('fleet').then(
      () => expect.fail('the failed read should reject'),
      (error: unknown) => expect(String(error)).to.contain('the database is away'),
    );
    expect((await reads.findRuntime('fleet'))?.runtimePolicy).to.equal('{"v":1}');
    expect(await reads.findRuntime('later')).to.equal(undefined);
    await store.insertRuntime(runtimePolicy('later', '{"later":true}'), 'default');
    expect((await reads.findRuntime('later'))?.runtimePolicy).to.equal('{"later":true}');
    expect(store.reads).to.equal(4);
  });

  it('does not answer an agent enrolled after the kept read started, nor after this process changed the name', async function () {
    const changes = new PolicyCache();
    const shared = new SharedPolicyReads(store, changes, 60_000, 60_000, 10, () => Date.now());
    expect((await shared.since(0).findRuntime('fleet'))?.runtimePolicy).to.equal('{"v":1}');
    await store.updateRuntime(runtimePolicy('fleet', '{"v":2}'));
    expect((await shared.since(0).findRuntime('fleet'))?.runtimePolicy, 'enrolled before the read').to.equal('{"v":1}');
    expect((await shared.since(Date.now() + 1).findRuntime('fleet'))?.runtimePolicy, 'enrolled after it').to.equal('{"v":2}');
    await store.updateRuntime(runtimePolicy('fleet', '{"v":3}'));
    changes.invalidate('fleet');
    expect((await shared.since(0).findRuntime('fleet'))?.runtimePolicy, 'updated here').to.equal('{"v":3}');
    expect(store.reads).to.equal(3);
  });
});

forEachDatabase('push stored policies, on PostgreSQL and PGlite', (fixture) => {
  it('reads a name in one statement, the row with its version', async function () {
    const { knex } = fixture.database;
    const store = new VerifierPolicyRepository(knex);
    await store.insertRuntime(runtimePolicy('single', '{"v":1}'), 'default');
    await store.insertMb({ name: 'single', mbPolicy: '{"mb":1}' }, 'default');
    const reads = new SharedPolicyReads(store, new PolicyCache(), 60_000, 60_000, 10, () => Date.now()).since(0);
    let statements = 0;
    const counted = (): void => {
      statements += 1;
    };
    knex.on('query', counted);
    let found: Awaited<ReturnType<typeof reads.findRuntime>>;
    try {
      found = await reads.findRuntime('single');
      expect((await reads.findMb('single'))?.mbPolicy).to.equal('{"mb":1}');
    } finally {
      knex.removeListener('query', counted);
    }
    expect(statements, 'one statement per name').to.equal(2);
    expect(found?.runtimePolicy).to.equal('{"v":1}');
    expect(found?.version).to.equal(await store.runtimeVersion('single'));
  });


  it('a text another process stores under a kept name is seen at the first request after the version check interval; an unchanged version costs no read', async function () {
    const store = new CountingPolicies(fixture.database.knex);
    await store.insertRuntime(runtimePolicy('checked', '{"v":1}'), 'default');
    await store.insertMb({ name: 'checked', mbPolicy: '{"mb":1}' }, 'default');
    // A check interval that the four statements before the first check below cannot outlast on a slow host.
    const reads = new SharedPolicyReads(store, new PolicyCache(), 60_000, 500, 10, () => Date.now()).since(0);
    expect((await reads.findRuntime('checked'))?.runtimePolicy).to.equal('{"v":1}');
    expect((await reads.findMb('checked'))?.mbPolicy).to.equal('{"mb":1}');
    // Another process (not this one's PolicyCache) replaces both texts.
    const other = new VerifierPolicyRepository(fixture.database.knex);
    await other.updateRuntime(runtimePolicy('checked', '{"v":2}'));
    await other.updateMb({ name: 'checked', mbPolicy: '{"mb":2}' });
    expect((await reads.findRuntime('checked'))?.runtimePolicy, 'checked less than 500 ms ago').to.equal('{"v":1}');
    await new Promise((resolve) => setTimeout(resolve, 550));
    expect((await reads.findRuntime('checked'))?.runtimePolicy).to.equal('{"v":2}');
    expect((await reads.findMb('checked'))?.mbPolicy).to.equal('{"mb":2}');
    expect(store.reads).to.equal(2);
    await new Promise((resolve) => setTimeout(resolve, 550));
    expect((await reads.findRuntime('checked'))?.runtimePolicy).to.equal('{"v":2}');
    expect(store.reads, 'the version unchanged: the kept read answers').to.equal(2);
  });
}, { migrate: true });
