import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { ExampleOrchestrator, STATES } from '../../lib/provisioning/example-orchestrator.js';
import { NodeSecretRelease } from '../../lib/provisioning/node-secret-release.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';


/**
 * The example orchestrator's secret release decided by the deploy attestation's result: with
 * failDeployOnAttestationFailure off a failed attestation still ends `active`, and must neither store
 * a secret nor end the node's revocation in the broker (the real broker: test/broker/node-secret-release).
 */
describe('example orchestrator: a node secret only after a passing deploy attestation', function () {
  this.timeout(30_000);
  let database: OpenedDatabase;
  let dir: string;
  let calls: string[];
  let revoked: string | null;
  /** When set, the broker refuses to revoke (an outage). */
  let revokeFails: boolean;
  /** When set, the broker refuses to store the secret. */
  let putResourceFails: boolean;
  /** One agent per test: the node store refuses an agent id another node names. */
  let agent: string;
  let tests = 0;

  /** The broker calls NodeSecretRelease makes, recorded; the node starts revoked by an earlier failure. */
  const broker = {
    revocationInForce: async () => revoked,
    deleteNode: async (id: string) => void calls.push(`deleteNode ${id}`),
    putNode: async (id: string) => void calls.push(`putNode ${id}`),
    reinstate: async (id: string, version: string) => {
      calls.push(`reinstate ${id} ${version}`);
      revoked = null;
    },
    putResource: async () => {
      calls.push('putResource');
      if (putResourceFails) throw new Error('broker refused the secret');
    },
    deleteResource: async () => void calls.push('deleteResource'),
    revoke: async (id: string) => {
      calls.push(`revoke ${id}`);
      if (revokeFails) throw new Error('broker unreachable');
    },
  } as unknown as BrokerAdminClient;
  const secrets = new NodeSecretRelease({ broker, nodeRecord: async () => ({}) as never });

  before(async function () {
    database = await openTestSchema();
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-deploy-secret-'));
  });

  after(async function () {
    await database?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(function () {
    calls = [];
    revoked = 'rev-1';
    revokeFails = false;
    putResourceFails = false;
    tests += 1;
    agent = `agent-${tests}`;
  });

  /** What the orchestrator reported during the deploy (`onTransition` details). */
  let reported: (string | undefined)[] = [];

  async function deployWith(outcome: 'pass' | 'fail', trustLevel = 'hardware-tpm'): Promise<{ state: string; status: string | null }> {
    const config = buildConfig({ dataDir: dir, enabledAttestationInterfaces: ['fake'], keylime: { failDeployOnAttestationFailure: false } });
    const orchestrator = await ExampleOrchestrator.create({ config, database: database.database, nodeSecrets: secrets, onTransition: (t) => void reported.push(t.detail) });
    const node = await orchestrator.enrollNode({ name: `n-${agent}`, attestationInterface: 'fake', driverInfo: { keylime_agent_uuid: agent, fake_outcome: 'pass' } });
    await orchestrator.clean(node.uuid);
    await orchestrator.nodes.updateNode(node.uuid, { driverInfo: { keylime_agent_uuid: agent, fake_outcome: outcome, fake_trust_level: trustLevel } });
    calls = [];
    reported = [];
    const deployed = await orchestrator.deploy(node.uuid);
    return { state: deployed.provisionState, status: deployed.lastAttestation.status };
  }

  it('withdraws, and neither stores a secret nor reinstates, after a failed attestation recorded only (fail flag off)', async function () {
    expect(await deployWith('fail')).to.deep.equal({ state: STATES.active, status: 'failed' });
    expect(calls).to.deep.equal(['deleteResource', `revoke ${agent}`, 'deleteResource']);
    // An active node without its secret is said so, not left looking like a good deploy.
    expect(reported.at(-1)).to.equal('secret withdrawn: the deploy attestation did not pass (failed)');
  });

  it('releases after a passing one, ending the earlier revocation', async function () {
    expect(await deployWith('pass')).to.deep.equal({ state: STATES.active, status: 'passed' });
    expect(calls).to.deep.equal(['deleteResource', `deleteNode ${agent}`, `putNode ${agent}`, `reinstate ${agent} rev-1`, 'putResource']);
  });

  it('withdraws after a passing attestation of a node below the deploy minimum (fail flag off: the refusal stays recorded to the end of the step)', async function () {
    expect(await deployWith('pass', 'id-secret')).to.deep.equal({ state: STATES.active, status: 'failed' });
    expect(calls).to.deep.equal(['deleteResource', `revoke ${agent}`, 'deleteResource']);
  });

  /** An orchestrator (fail flags on) with `agent`'s node deployed once: active, its secret released. */
  async function deployedNode(): Promise<{ orchestrator: ExampleOrchestrator; uuid: string }> {
    const config = buildConfig({ dataDir: dir, enabledAttestationInterfaces: ['fake'] });
    const orchestrator = await ExampleOrchestrator.create({ config, database: database.database, nodeSecrets: secrets });
    const node = await orchestrator.enrollNode({ name: `n-${agent}`, attestationInterface: 'fake', driverInfo: { keylime_agent_uuid: agent, fake_outcome: 'pass' } });
    await orchestrator.clean(node.uuid);
    expect((await orchestrator.deploy(node.uuid)).provisionState).to.equal(STATES.active);
    expect(calls).to.include('putResource');
    calls = [];
    return { orchestrator, uuid: node.uuid };
  }

  /**
   * A rebuild of the deployed node whose attestation fails, while the database refuses to store that
   * node's failed verdict (a check constraint: a real database fault, not an IronlimeError). Resolves what the deploy threw.
   */
  async function rebuildMeetingDatabaseFault(orchestrator: ExampleOrchestrator, uuid: string): Promise<unknown> {
    await orchestrator.nodes.updateNode(uuid, { driverInfo: { keylime_agent_uuid: agent, fake_outcome: 'fail' } });
    const knex = database.database.knex;
    // DDL takes no bind parameters; `agent` is this suite's own `agent-<n>`.
    await knex.raw(`alter table nodes add constraint no_failed_verdict check (driver_info->>'keylime_agent_uuid' <> '${agent}' or last_attestation_status <> 'failed') not valid`);
    try {
      return await orchestrator.deploy(uuid).then(
        () => undefined,
        (error: unknown) => error,
      );
    } finally {
      await knex.raw('alter table nodes drop constraint no_failed_verdict');
    }
  }

  it('a rebuild that fails on an unexpected error (a database fault storing its verdict) still withdraws the earlier secret, and throws that error', async function () {
    const { orchestrator, uuid } = await deployedNode();
    const thrown = await rebuildMeetingDatabaseFault(orchestrator, uuid);
    expect(String(thrown)).to.contain('no_failed_verdict');
    expect((await orchestrator.nodes.getNode(uuid)).provisionState).to.equal(STATES.deployFailed);
    expect(calls).to.deep.equal(['deleteResource', `revoke ${agent}`, 'deleteResource']);
  });

  it('when that withdrawal fails too, both errors are thrown, the original first', async function () {
    const { orchestrator, uuid } = await deployedNode();
    revokeFails = true;
    const thrown = await rebuildMeetingDatabaseFault(orchestrator, uuid);
    expect(thrown).to.be.instanceOf(AggregateError);
    const errors = (thrown as AggregateError).errors.map(String);
    expect(errors).to.have.length(2);
    expect(errors[0]).to.contain('no_failed_verdict');
    expect(errors[1]).to.contain('broker unreachable');
    expect((thrown as Error).message).to.match(/no_failed_verdict.*; withdrawing the node's secret failed too: broker unreachable/);
    // The secret's delete is still tried after the failed revocation.
    expect(calls).to.deep.equal(['deleteResource', `revoke ${agent}`, 'deleteResource']);
  });

  it('a rebuild whose release, withdrawal and move to deploy failed all fail throws the withdrawal failure with the database fault, not the fault alone', async function () {
    const { orchestrator, uuid } = await deployedNode();
    putResourceFails = true;
    revokeFails = true;
    const knex = database.database.knex;
    await knex.raw(`alter table nodes add constraint no_deploy_failed check (driver_info->>'keylime_agent_uuid' <> '${agent}' or provision_state <> 'deploy failed') not valid`);
    let thrown: unknown;
    try {
      thrown = await orchestrator.deploy(uuid).then(
        () => undefined,
        (error: unknown) => error,
      );
    } finally {
      await knex.raw('alter table nodes drop constraint no_deploy_failed');
    }
    expect(thrown).to.be.instanceOf(AggregateError);
    const errors = (thrown as AggregateError).errors.map(String);
    expect(errors[0]).to.contain('broker unreachable');
    expect(errors[1]).to.contain('no_deploy_failed');
    expect((thrown as Error).message).to.match(/^secret not released: broker refused the secret; withdrawing failed: broker unreachable; moving the node to deploy failed failed too: .*no_deploy_failed/);
  });

  it('a rebuild deletes the earlier secret before its attestation runs: one cut short (a killed process) leaves none readable', async function () {
    const { orchestrator, uuid } = await deployedNode();
    await orchestrator.nodes.updateNode(uuid, { driverInfo: { keylime_agent_uuid: agent, fake_outcome: 'fail', fake_delay_ms: 3000 } });
    const rebuild = orchestrator.deploy(uuid);
    // The delete seen within 2.5 s, before the attestation's first 3 s operation ends (a fixed 700 ms wait of
    // a 1.5 s one failed when the host stalled): were the process killed now, nothing after this would run.
    await pollUntil({ timeoutMs: 2500, intervalMs: 20 }, 'the earlier secret deleted', () => Promise.resolve(calls.length > 0));
    expect((await orchestrator.nodes.getNode(uuid)).provisionState).to.equal(STATES.deploying);
    expect(calls).to.deep.equal(['deleteResource']);
    expect((await rebuild).provisionState).to.equal(STATES.deployFailed);
  });

  it('tearing down a deployed node withdraws its secret before it goes back to manageable', async function () {
    const { orchestrator, uuid } = await deployedNode();
    expect((await orchestrator.tearDown(uuid)).provisionState).to.equal(STATES.manageable);
    expect(calls).to.deep.equal([`revoke ${agent}`, 'deleteResource']);
  });
});
