import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { CompiledNodeCache, type BrokerNodeRecord } from '../../lib/broker/broker-node.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';

/** A runtime policy of `files` digests, the one an operator stores with every node of a fleet. */
function fleetPolicy(files: number): string {
  const digests: Record<string, string[]> = {};
  for (let i = 0; i < files; i += 1) {
    digests[`/usr/lib/x86_64-linux-gnu/lib-${i}.so`] = [createHash('sha256').update(String(i)).digest('hex')];
  }
  return JSON.stringify({ meta: { version: 1, generator: 3 }, release: 0, digests, excludes: [], keyrings: {}, ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null }, 'ima-buf': {}, 'verification-keys': '' });
}

/** `text` as a row read from PostgreSQL holds it: an equal string of its own. */
function ownCopy(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/**
 * Every node stored in the broker carries its policies' texts (`NodeSecretRelease` stores the fleet's
 * runtime policy with each node), and a worker keeps up to 10,000 compiled nodes: compiled per node, a
 * 20,000-file runtime policy (2.2 MB of text) cost 6.8 MB of heap per node, and `/attest`, open to any
 * client with a cookie, compiles the node its evidence names before the quote is checked. One compiled
 * copy per policy text, as the verifier's `PolicyCache` keeps one per stored policy.
 */
describe('broker: compiled nodes share the policies they were stored with', function () {
  this.timeout(60_000);
  const akTpm = new FakeAgent().akTpm;
  const recordOf = (agentId: string, runtimePolicy: string, mbRefstate: string): BrokerNodeRecord => ({ agentId, akTpm, tpmPolicy: '{}', runtimePolicy, mbRefstate, groups: [] });

  it('compiles a runtime policy and a refstate stored with many nodes once: every node holds the same compiled copy', function () {
    const cache = new CompiledNodeCache();
    const policy = fleetPolicy(2000);
    const nodes = Array.from({ length: 20 }, (_, i) => cache.compile(recordOf(`node-${i}`, ownCopy(policy), ownCopy(MINIMAL_REFSTATE)), `digest-${i}`).node);
    const [first] = nodes;
    expect(first?.runtimePolicy).to.not.equal(null);
    expect(first?.mbRefstate).to.not.equal(null);
    nodes.forEach((node, i) => {
      expect(node.runtimePolicy, `node-${i}`).to.equal(first?.runtimePolicy);
      expect(node.mbRefstate, `node-${i}`).to.equal(first?.mbRefstate);
    });
    expect(cache.lookup('node-19')?.node.runtimePolicy).to.equal(first?.runtimePolicy);
  });

  it('compiles another policy text apart: a node never judged by a policy it was not stored with', function () {
    const cache = new CompiledNodeCache();
    const a = cache.compile(recordOf('node-a', fleetPolicy(10), MINIMAL_REFSTATE), 'a').node;
    const b = cache.compile(recordOf('node-b', fleetPolicy(11), MINIMAL_REFSTATE), 'b').node;
    expect(b.runtimePolicy).to.not.equal(a.runtimePolicy);
    expect(b.mbRefstate).to.equal(a.mbRefstate);
  });
});
