import { expect } from 'chai';
import pino from 'pino';
import { agentsWithChangedPolicies, policyNamesOf, PolicyVersionWatch, type WatchedAgent } from '../../lib/verifier/policy-version-watch.js';
import { VerifierPolicyRepository, type PolicyNames, type StoredPolicyVersions } from '../../lib/verifier/verifier-policy-repository.js';
import { forEachDatabase } from '../helpers/databases.js';

function watched(agentId: string, runtime: [string, string] | null, mb: [string, string] | null = null): WatchedAgent {
  return {
    enrolment: { agentId, runtimePolicyName: runtime?.[0] ?? null, mbPolicyName: mb?.[0] ?? null },
    policyVersions: { runtime: runtime?.[1], mb: mb?.[1] },
  } as WatchedAgent;
}

function versions(runtime: Record<string, string>, mb: Record<string, string> = {}): StoredPolicyVersions {
  return { runtime: new Map(Object.entries(runtime)), mb: new Map(Object.entries(mb)) };
}

describe('PolicyVersionWatch: which agents a stored policy change reloads', function () {
  it('names each runtime policy and refstate in use once, and none for an agent that names none', function () {
    const agents = [watched('a', ['fleet', '1'], ['boot', '7']), watched('b', ['fleet', '1'], ['boot', '7']), watched('c', ['c', '3']), watched('d', null)];
    expect(policyNamesOf(agents)).to.deep.equal({ runtime: ['fleet', 'c'], mb: ['boot'] });
    expect(policyNamesOf([watched('d', null)])).to.deep.equal({ runtime: [], mb: [] });
  });

  it('reloads the agents of an updated runtime policy or refstate, not the others', function () {
    const fleet = [watched('a', ['fleet', '1']), watched('b', ['fleet', '1'])];
    const inline = watched('c', ['c', '3']);
    const booted = watched('e', null, ['boot', '7']);
    const none = watched('d', null);
    const agents = [...fleet, inline, booted, none];
    expect(agentsWithChangedPolicies(agents, versions({ fleet: '1', c: '3' }, { boot: '7' }))).to.deep.equal([]);
    expect(agentsWithChangedPolicies(agents, versions({ fleet: '9', c: '3' }, { boot: '7' }))).to.deep.equal(fleet);
    expect(agentsWithChangedPolicies(agents, versions({ fleet: '1', c: '3' }, { boot: '8' }))).to.deep.equal([booted]);
  });

  it('reloads the agents of a policy no longer stored (the reload then fails them), never one that names none', function () {
    const inline = watched('c', ['c', '3']);
    const booted = watched('e', null, ['boot', '7']);
    expect(agentsWithChangedPolicies([inline, booted, watched('d', null)], versions({}, {}))).to.deep.equal([inline, booted]);
  });

  it('asks once per tick for every name in use, not once per agent, reloads only the changed, and asks nothing without names', async function () {
    const asked: PolicyNames[] = [];
    let stored = versions({ fleet: '1' }, { boot: '7' });
    let agents: WatchedAgent[] = Array.from({ length: 100 }, (_, i) => watched(`agent-${i}`, ['fleet', '1'], ['boot', '7']));
    const reloaded: string[] = [];
    let closed = false;
    const tasks: Promise<void>[] = [];
    const watch = new PolicyVersionWatch({
      policies: { versionsOf: (names) => (asked.push(names), Promise.resolve(stored)) },
      agents: () => agents,
      reload: (agent) => reloaded.push(agent.enrolment.agentId),
      periodMs: 20,
      log: pino({ level: 'silent' }),
      track: (task) => tasks.push(task),
      isClosed: () => closed,
    });
    const ticks = async (count: number): Promise<void> => {
      const until = tasks.length + count;
      while (tasks.length < until) await new Promise((resolve) => setTimeout(resolve, 5));
      await Promise.all(tasks);
    };
    watch.start();
    try {
      await ticks(2);
      expect(asked.slice(0, 2)).to.deep.equal([{ runtime: ['fleet'], mb: ['boot'] }, { runtime: ['fleet'], mb: ['boot'] }]);
      expect(reloaded).to.deep.equal([]);
      agents = [...agents.slice(0, 2), watched('inline', ['inline', '4']), watched('none', null)];
      stored = versions({ fleet: '1', inline: '4' }, { boot: '8' });
      await ticks(1);
      expect(reloaded).to.deep.equal(['agent-0', 'agent-1']);
      await ticks(2);
      expect(reloaded, 'an agent whose reload is pending (its round in flight) is asked once, not at every tick').to.deep.equal(['agent-0', 'agent-1']);
      agents = [watched('none', null)];
      const before = asked.length;
      await ticks(2);
      expect(asked.length, 'no statement when no agent names a policy').to.equal(before);
    } finally {
      closed = true;
      watch.stop();
      await Promise.all(tasks);
    }
  });
});

forEachDatabase(
  'VerifierPolicyRepository.versionsOf',
  (fixture) => {
    it('reads the versions of the named runtime policies and refstates in one statement: changed by an update, absent once deleted', async function () {
      const policies = new VerifierPolicyRepository(fixture.database.knex);
      const runtime = (name: string, text: string) => ({ name, runtimePolicy: text, checksum: text, generator: 1, tpmPolicy: null });
      await policies.insertRuntime(runtime('fleet', '{"a": 1}'), 'default');
      await policies.insertRuntime(runtime('other', '{"a": 1}'), 'default');
      await policies.insertMb({ name: 'boot', mbPolicy: '{}' }, 'default');
      const names = { runtime: ['fleet', 'other', 'unknown'], mb: ['boot', 'fleet'] };
      const first = await policies.versionsOf(names);
      expect([...first.runtime.keys()].sort()).to.deep.equal(['fleet', 'other']);
      expect([...first.mb.keys()]).to.deep.equal(['boot']);
      expect(first.runtime.get('fleet')).to.equal(await policies.runtimeVersion('fleet'));
      expect(first.mb.get('boot')).to.equal(await policies.mbVersion('boot'));

      expect(await policies.updateRuntime(runtime('fleet', '{"a": 2}'))).to.equal(true);
      expect(await policies.updateMb({ name: 'boot', mbPolicy: '{"b": 1}' })).to.equal(true);
      const second = await policies.versionsOf(names);
      expect(second.runtime.get('fleet')).to.not.equal(first.runtime.get('fleet'));
      expect(second.runtime.get('other')).to.equal(first.runtime.get('other'));
      expect(second.mb.get('boot')).to.not.equal(first.mb.get('boot'));

      expect(await policies.deleteRuntime('other')).to.equal(true);
      expect(await policies.deleteMb('boot')).to.equal(true);
      const third = await policies.versionsOf(names);
      expect([...third.runtime.keys()]).to.deep.equal(['fleet']);
      expect(third.mb.size).to.equal(0);
      expect(await policies.versionsOf({ runtime: [], mb: [] })).to.deep.equal({ runtime: new Map(), mb: new Map() });
    });
  },
  { migrate: true },
);
