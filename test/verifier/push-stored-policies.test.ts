import { expect } from 'chai';
import { migrateLatest } from '../../lib/db/migrate.js';
import { PolicyCache } from '../../lib/verifier/policy-cache.js';
import { SharedPolicyReads } from '../../lib/verifier/push/push-stored-policies.js';
import { VerifierPolicyRepository, type StoredRuntimePolicy } from '../../lib/verifier/verifier-policy-repository.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';

/** The policy stores, counting their reads. */
class CountingPolicies extends VerifierPolicyRepository {
  reads = 0;
  failNext = false;

  override async findRuntime(name: string): Promise<StoredRuntimePolicy | undefined> {
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
    opened = await openTestSchema();
    await migrateLatest(opened.database.knex);
    store = new CountingPolicies(opened.database.knex);
    await store.insertRuntime(runtimePolicy('fleet', '{"v":1}'));
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  it('reads a name once for agents asking at once and within the reuse time, and again after it', async function () {
    const reads = new SharedPolicyReads(store, new PolicyCache(), 200, 10).since(0);
    const first = await Promise.all([reads.findRuntime('fleet'), reads.findRuntime('fleet'), reads.findRuntime('fleet')]);
    expect(store.reads).to.equal(1);
    expect(first.map((p) => p?.runtimePolicy)).to.deep.equal(['{"v":1}', '{"v":1}', '{"v":1}']);
    await store.updateRuntime(runtimePolicy('fleet', '{"v":2}'));
    expect((await reads.findRuntime('fleet'))?.runtimePolicy).to.equal('{"v":1}');
    expect(store.reads).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await reads.findRuntime('fleet'))?.runtimePolicy).to.equal('{"v":2}');
    expect(store.reads).to.equal(2);
  });

  it('keeps neither a failed read nor a name not found', async function () {
    const reads = new SharedPolicyReads(store, new PolicyCache(), 60_000, 10).since(0);
    store.failNext = true;
    await reads.findRuntime('fleet').then(
      () => expect.fail('the failed read should reject'),
      (error: unknown) => expect(String(error)).to.contain('the database is away'),
    );
    expect((await reads.findRuntime('fleet'))?.runtimePolicy).to.equal('{"v":1}');
    expect(await reads.findRuntime('later')).to.equal(undefined);
    await store.insertRuntime(runtimePolicy('later', '{"later":true}'));
    expect((await reads.findRuntime('later'))?.runtimePolicy).to.equal('{"later":true}');
    expect(store.reads).to.equal(4);
  });

  it('does not answer an agent enrolled after the kept read started, nor after this process changed the name', async function () {
    const changes = new PolicyCache();
    const shared = new SharedPolicyReads(store, changes, 60_000, 10);
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
