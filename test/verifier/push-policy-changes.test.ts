import { createHash } from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { DatabaseClock } from '../../lib/db/database-clock.js';
import { PolicyCache } from '../../lib/verifier/policy-cache.js';
import { loadAgentPolicies } from '../../lib/verifier/polled-agent.js';
import { PushPolicyCache } from '../../lib/verifier/push/push-policy-cache.js';
import { VerifierPolicyRepository } from '../../lib/verifier/verifier-policy-repository.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { policyForImaLog } from './helpers/verifier-fixture.js';
import { contentOf, PUSH_SETTINGS, requested, usePushVerifier, type PushNode } from './helpers/push-verifier.js';

const LS = '/usr/bin/ls';
const NOT_ALLOWED = 'ima.validation.ima-ng.not_in_allowlist';
/**
 * A silence timeout far beyond the waits below: with PUSH_SETTINGS' 3 s, an agent left waiting for the
 * 2 s version check on a slow machine was timed out by the sweep, a FAIL row beside the one judged.
 */
const SETTINGS = { ...PUSH_SETTINGS, pushTimeout: 60 };

/** A shared policy cache (10 s kept) over the stored policies, dating its reads on `now`, and how many runtime policy reads reached the database. */
function countingPolicyReads(knex: Knex, now: () => number): { policies: PushPolicyCache; reads: () => number } {
  let reads = 0;
  class CountingPolicies extends VerifierPolicyRepository {
    override findRuntime(name: string) {
      reads += 1;
      return super.findRuntime(name);
    }
  }
  return { policies: new PushPolicyCache({ policies: new CountingPolicies(knex), cache: new PolicyCache(), measuredBootEvaluate: 'once' }, 10, now), reads: () => reads };
}

describe('push model: a policy replaced or enrolled anew is the one judged by; a named policy gone is not "no policy"', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: SETTINGS.pushTimeout });

  function b64(text: string): string {
    return Buffer.from(text).toString('base64');
  }

  /** The runtime policy of `node`'s IMA log, with `ls` allowed or not. */
  function policyOf(node: PushNode, allowLs: boolean): string {
    const ls = createHash('sha256').update(contentOf(LS)).digest('hex');
    return policyForImaLog(path.join(push.dir, `${node.uuid}.ima`), allowLs ? { [LS]: ls } : {});
  }

  async function storePolicy(name: string, text: string, method: 'POST' | 'PUT' = 'POST', at?: RunningVerifier): Promise<void> {
    const reply = await push.call(method, `/v2.6/allowlists/${name}`, { runtime_policy: b64(text) }, undefined, at);
    expect(reply.status, JSON.stringify(reply.body)).to.equal(201);
  }

  async function enrolWith(node: PushNode, name: string): Promise<void> {
    const reply = await push.enrol(node, { runtime_policy: '', runtime_policy_name: name });
    expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
  }

  async function outcomes(node: PushNode): Promise<(string | undefined)[]> {
    return (await push.history(node.uuid)).map((row) => row.outcome);
  }

  const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('agents enrolled before a read share it; an agent enrolled after another process replaced the text is judged by the new one', async function () {
    const [a, b] = [await push.bootNode(), await push.bootNode()];
    await storePolicy('fleet', policyOf(a, true));
    await enrolWith(a, 'fleet');
    await enrolWith(b, 'fleet');
    await later(3100); // past the enrolment clock margin (3 s), so the read is shared
    const findRuntime = VerifierPolicyRepository.prototype.findRuntime;
    let reads = 0;
    VerifierPolicyRepository.prototype.findRuntime = function (this: VerifierPolicyRepository, ...args) {
      reads += 1;
      return findRuntime.apply(this, args);
    };
    try {
      await a.agent.attestOnce();
      await b.agent.attestOnce();
    } finally {
      VerifierPolicyRepository.prototype.findRuntime = findRuntime;
    }
    expect(reads, 'one read of "fleet" for both agents').to.equal(1);
    expect(await outcomes(a)).to.deep.equal(['pass']);
    expect(await outcomes(b)).to.deep.equal(['pass']);

    // Another process replaces the text (this one is not told), then the operator enrols a new node.
    const policies = new VerifierPolicyRepository(push.opened.database.knex);
    const stored = await policies.findRuntime('fleet');
    const withoutLs = policyOf(a, false);
    expect(await policies.updateRuntime({ ...stored!, runtimePolicy: withoutLs, checksum: createHash('sha256').update(withoutLs).digest('hex') })).to.equal(true);
    const c = await push.bootNode();
    await c.ima.measure([{ path: LS, content: contentOf(LS) }]);
    await enrolWith(c, 'fleet');
    await c.agent.attestOnce();
    expect(await outcomes(c), 'judged by the text stored before its enrolment').to.deep.equal(['fail']);
    expect((await push.stored(c.uuid)).state.lastEventId).to.equal(NOT_ALLOWED);
  });

  it('a text this process replaces (PUT /allowlists) judges the next attestation of the agents using it', async function () {
    const d = await push.bootNode();
    await storePolicy('replaced', policyOf(d, true));
    await enrolWith(d, 'replaced');
    await d.agent.attestOnce();
    expect(await outcomes(d)).to.deep.equal(['pass']);
    await storePolicy('replaced', policyOf(d, false), 'PUT');
    await d.ima.measure([{ path: LS, content: contentOf(LS) }]);
    await later(1100);
    await d.agent.attestOnce();
    expect(await outcomes(d), 'ls is not in the replaced text').to.deep.equal(['pass', 'fail']);
    expect((await push.stored(d.uuid)).state.lastEventId).to.equal(NOT_ALLOWED);
  });

  it('a text another verifier process replaces (PUT /allowlists there) judges this process\'s next attestation of the agents using it, about 2 s later', async function () {
    const second = await startVerifier({ dataDir: push.dir, ...SETTINGS, instanceId: 'policy-editor' }, { database: push.opened.database, inProcessForTests: true });
    try {
      const f = await push.bootNode();
      await storePolicy('edited-elsewhere', policyOf(f, true));
      await enrolWith(f, 'edited-elsewhere');
      await later(3100); // past the enrolment clock margin (3 s): the read and the compiled copy are kept
      await f.agent.attestOnce();
      await storePolicy('edited-elsewhere', policyOf(f, false), 'PUT', second);
      await f.ima.measure([{ path: LS, content: contentOf(LS) }]);
      await later(2100); // the version check interval (2 s)
      await f.agent.attestOnce();
      expect(await outcomes(f), 'ls is not in the text the other process stored').to.deep.equal(['pass', 'fail']);
      expect((await push.stored(f.uuid)).state.lastEventId).to.equal(NOT_ALLOWED);
    } finally {
      await second.close();
    }
  });

  it('a kept read that started within 3 s after an agent\'s enrolment (this process\'s clock up to 2 s ahead of the database\'s, which rounds down to the second) is not used for it; one started later is', async function () {
    const g = await push.bootNode();
    await storePolicy('skew', policyOf(g, true));
    await enrolWith(g, 'skew');
    const record = await push.stored(g.uuid);
    const { policies, reads } = countingPolicyReads(push.opened.database.knex, () => Date.now());
    const started = Math.floor(Date.now() / 1000);
    await policies.read({ ...record, agentId: 'enrolled-long-before', enrolledAt: started - 100 });
    expect(reads()).to.equal(1);
    await policies.read({ ...record, agentId: 'enrolled-4-s-before', enrolledAt: started - 4 });
    expect(reads(), 'a read started 4 s or more after the enrolment (by the database\'s second) is shared').to.equal(1);
    await policies.read({ ...record, agentId: 'enrolled-1-s-before', enrolledAt: started - 1 });
    expect(reads(), 'started 1–2 s after the enrolment, within the margin: it may have come before the text replaced for the enrolment').to.equal(2);
  });

  it('a read started before an enrolment is not used for it by a process whose clock is a minute ahead of the database (both dated on the database\'s clock)', async function () {
    const g = await push.bootNode();
    await storePolicy('ahead', policyOf(g, true));
    await enrolWith(g, 'ahead');
    const record = await push.stored(g.uuid);
    const realNow = Date.now;
    Date.now = () => realNow() + 60_000;
    try {
      const clock = new DatabaseClock(push.opened.database.knex);
      await clock.measure();
      const { policies, reads } = countingPolicyReads(push.opened.database.knex, () => clock.nowMs());
      const databaseSecond = Math.floor(clock.now());
      await policies.read({ ...record, agentId: 'enrolled-long-before', enrolledAt: databaseSecond - 100 });
      expect(reads()).to.equal(1);
      // Enrolled after that read started, by the database's second (the operator may have replaced the text just before).
      await policies.read({ ...record, agentId: 'enrolled-after-the-read', enrolledAt: databaseSecond + 1 });
      expect(reads(), 'a read started before the enrolment is not shared with it').to.equal(2);
    } finally {
      Date.now = realNow;
    }
  });

  it('a new read of the same stored text keeps the policies compiled from it (no AK import, no compile); a new text compiles again', async function () {
    const h = await push.bootNode();
    await storePolicy('same-text', policyOf(h, true));
    await enrolWith(h, 'same-text');
    const record = { ...(await push.stored(h.uuid)), enrolledAt: Math.floor(Date.now() / 1000) - 100 };
    const changes = new PolicyCache();
    const repository = new VerifierPolicyRepository(push.opened.database.knex);
    const policies = new PushPolicyCache({ policies: repository, cache: changes, measuredBootEvaluate: 'once' }, 10, () => Date.now());
    const first = await policies.of(record);
    changes.invalidate('same-text'); // the next read is a new copy, as every read is after the reuse time
    expect(await policies.of(record), 'the same text, read again').to.equal(first);
    const stored = await repository.findRuntime('same-text');
    const withoutLs = policyOf(h, false);
    expect(await repository.updateRuntime({ ...stored!, runtimePolicy: withoutLs, checksum: createHash('sha256').update(withoutLs).digest('hex') })).to.equal(true);
    changes.invalidate('same-text');
    const again = await policies.of(record);
    expect(again, 'a new text').to.not.equal(first);
    expect(again.runtimePolicy).to.not.equal(first.runtimePolicy);
  });

  it('a re-enrolment with the same fields within the same second (another enrolment number only) compiles again', async function () {
    const k = await push.bootNode();
    await storePolicy('re-enrolled', policyOf(k, true));
    await enrolWith(k, 're-enrolled');
    const record = { ...(await push.stored(k.uuid)), enrolledAt: Math.floor(Date.now() / 1000) - 100 };
    const policies = new PushPolicyCache({ policies: new VerifierPolicyRepository(push.opened.database.knex), cache: new PolicyCache(), measuredBootEvaluate: 'once' }, 10, () => Date.now());
    const first = await policies.of(record);
    expect(await policies.of(record), 'the same enrolment').to.equal(first);
    const reenrolled = { ...record, enrolment: String(BigInt(record.enrolment) + 1n) };
    expect(await policies.of(reenrolled), 'a newer enrolment, all else equal').to.not.equal(first);
  });

  it('an agent whose named runtime policy row is not found: phase 1 answers 500 and inserts nothing; the pull loop\'s load throws; evidence for an attestation issued before fails the agent (202)', async function () {
    // The foreign key keeps the row while an agent names it: a read that finds none is a fault, not "no policy".
    const e = await push.bootNode();
    await storePolicy('gone', policyOf(e, true));
    await enrolWith(e, 'gone');
    const before = (await push.stored(e.uuid)).state;
    const token = await e.agent.openSession();
    const findRuntime = VerifierPolicyRepository.prototype.findRuntime;
    VerifierPolicyRepository.prototype.findRuntime = () => Promise.resolve(undefined);
    try {
      const reply = await push.capabilities(e, token);
      expect(reply.status, JSON.stringify(reply.body)).to.equal(500);
      const deps = { policies: new VerifierPolicyRepository(push.opened.database.knex), cache: new PolicyCache(), measuredBootEvaluate: 'once' as const };
      await loadAgentPolicies(await push.stored(e.uuid), deps).then(
        () => expect.fail('a named policy not found should not load as "no policy"'),
        (error: unknown) => expect(String(error)).to.contain('runtime policy "gone", which is not stored'),
      );
    } finally {
      VerifierPolicyRepository.prototype.findRuntime = findRuntime;
    }
    expect(await push.opened.database.knex('verifier_push_attestations').where({ agent_id: e.uuid })).to.deep.equal([]);
    expect((await push.stored(e.uuid)).state).to.deep.equal(before);

    // Phase 2 of an attestation issued while the row was found: a lasting fault, judged failing rather than answered 500 again and again.
    const attestations = `/v3.0/agents/${e.uuid}/attestations`;
    const created = await push.call('POST', attestations, await e.agent.capabilities(), token);
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    await storePolicy('gone', policyOf(e, true), 'PUT'); // a change this process made: phase 2 reads the policies again
    VerifierPolicyRepository.prototype.findRuntime = () => Promise.resolve(undefined);
    try {
      const reply = await push.call('PATCH', `${attestations}/latest`, await e.agent.evidence(requested(created)), token);
      expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    } finally {
      VerifierPolicyRepository.prototype.findRuntime = findRuntime;
    }
    const failed = (await push.stored(e.uuid)).state;
    expect(failed.operationalState).to.equal(OperationalState.FAILED);
    expect(failed.lastEventId).to.equal('internal.verifier.exception');
    expect(await push.opened.database.knex('verifier_push_attestations').where({ agent_id: e.uuid, index: 0 }).first()).to.include({ stage: 'verification_complete', evaluation: 'fail' });
  });
});
