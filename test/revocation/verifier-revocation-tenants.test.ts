import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { VERIFIER_KNEX } from '../../lib/verifier/verifier-tokens.js';
import { createDeployment, digestOf, eventually, policyForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/**
 * The revocation fan-out stays inside the failed agent's tenant: the notice names the node, its
 * address, its `tpm_policy`, its metadata and its failure, which another tenant must not learn.
 */
describe('verifier revocation: a failure is fanned out to the agents of its own tenant only', function () {
  this.timeout(120_000);
  const revocation = newRsaKeyPairSync();
  const privatePem = revocation.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let deployment: Deployment;
  let dir: string;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-revocation-tenants-'));
    deployment = await createDeployment();
    await deployment.startVerifier();
  });

  after(async function () {
    await deployment?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An agent that trusts the revocation key and records each notice it acts on in its own file. */
  async function witness(name: string): Promise<RunningAgent & { readonly marker: string }> {
    const certFile = path.join(dir, 'revocation.pem');
    writeFileSync(certFile, revocation.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const marker = path.join(dir, `${name}.json`);
    const action = path.join(dir, `${name}.sh`);
    // Written whole, then renamed: the marker appears only once its JSON is complete.
    writeFileSync(action, `#!/bin/sh\ncat > '${marker}.part' && mv '${marker}.part' '${marker}'\n`);
    chmodSync(action, 0o755);
    const agent = await deployment.startAgent(name, { revocationCertFile: certFile, revocationActions: [action] });
    return Object.assign(agent, { marker });
  }

  it("tenant A's witness acts on A's failure; tenant B's and the default tenant's witnesses are not sent it", async function () {
    const enroller = deployment.tenant();
    const bad = await deployment.startAgent('bad-of-a');
    const witnessA = await witness('witness-of-a');
    const witnessB = await witness('witness-of-b');
    const witnessDefault = await witness('witness-of-default');
    const good = digestOf('good');
    for (const agent of [bad, witnessA, witnessB, witnessDefault]) {
      await enroller.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent, { '/usr/bin/good': good }), revocationKey: privatePem });
    }
    // What enrolments with tenant-a and tenant-b tokens store; the restarted verifier reads the agents back with them.
    const knex = (deployment.verifier as NonNullable<Deployment['verifier']>).container.resolve<Knex>(VERIFIER_KNEX);
    await knex('verifier_agents').update({ tenant: 'tenant-a' }).whereIn('agent_id', [bad.uuid, witnessA.uuid]);
    await knex('verifier_agents').update({ tenant: 'tenant-b' }).where({ agent_id: witnessB.uuid });
    await deployment.verifier?.close();
    await deployment.startVerifier();
    const tenant = deployment.tenant();
    for (const agent of [bad, witnessA, witnessB, witnessDefault]) {
      await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
    }

    await bad.appendIma('/opt/tenant-a/secret-binary', digestOf('evil'));
    await tenant.waitForState(bad.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    await eventually("tenant A's witness to act on the notice", async () => existsSync(witnessA.marker));
    expect(JSON.parse(readFileSync(witnessA.marker, 'utf8'))).to.include({ agent_id: bad.uuid, type: 'revocation' });
    // The fan-out sends to all its targets at once (8 at a time): had B or default been sent it, they would have acted by now.
    await sleep(2000);
    expect(existsSync(witnessB.marker), "tenant B's witness was sent tenant A's notice").to.equal(false);
    expect(existsSync(witnessDefault.marker), "the default tenant's witness was sent tenant A's notice").to.equal(false);
  });
});
