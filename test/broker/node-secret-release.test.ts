import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { ExampleOrchestrator, STATES, type Transition } from '../../lib/provisioning/example-orchestrator.js';
import { NodeSecretRelease, type NodeSecretReleaseOptions } from '../../lib/provisioning/node-secret-release.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';

/**
 * The provisioning tie-in with a real broker and a software-TPM node: the orchestrator (driven by the
 * scripted `fake` driver, so the deploy verdict is the test's choice) stores a fresh secret after a
 * passing deploy; the node fetches it with its own TPM evidence; a failed deploy withdraws it and the
 * node's credentials at once; a broker that cannot take the secret fails the deploy.
 */
describe('provisioning tie-in: a per-node secret released at deploy', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let node: TestNode;
  let database: OpenedDatabase;
  let dir: string;
  const transitions: Transition[] = [];

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-node-secret-'));
    broker = await startTestBroker();
    node = await softwareTestNode();
    database = await openTestSchema();
  });

  after(async function () {
    await node?.dispose();
    await broker?.dispose();
    await database?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function orchestrator(brokerAdmin: BrokerAdminClient, secrets: Partial<NodeSecretReleaseOptions> = {}): Promise<ExampleOrchestrator> {
    return ExampleOrchestrator.create({
      config: buildConfig({
        dataDir: path.join(dir, 'orchestrator'),
        enabledAttestationInterfaces: ['fake'],
        keylime: { failCleanOnAttestationFailure: true, failDeployOnAttestationFailure: true },
      }),
      database: database.database,
      onTransition: (transition) => transitions.push(transition),
      nodeSecrets: new NodeSecretRelease({
        broker: brokerAdmin,
        // No verifier here: good standing is covered by broker-verifier.test.ts (without a verifier it refuses).
        verifierStanding: false,
        nodeRecord: async () => ({ akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() }),
        ...secrets,
      }),
    });
  }

  async function fetchDiskKey(uri: string): Promise<Uint8Array> {
    const built = new KbsClientBuilder(broker.running.url)
      .ca(broker.running.caCert)
      .evidenceProvider(
        new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath }),
      )
      .build();
    try {
      return await built.client.getResource(uri);
    } finally {
      await built.close();
    }
  }

  it('passing deploy: a fresh secret only this node can fetch; failed deploy: withdrawn at once; rebuild: a new one', async function () {
    const orchestration = await orchestrator(broker.admin);
    const enrolled = await orchestration.enrollNode({
      name: 'rack4-u12',
      attestationInterface: 'fake',
      driverInfo: { fake_outcome: 'pass', keylime_agent_uuid: node.agentId },
    });
    await orchestration.clean(enrolled.uuid);
    expect((await orchestration.deploy(enrolled.uuid)).provisionState).to.equal(STATES.active);
    const uri = `kbs:///node/disk-key/${enrolled.uuid}`;
    expect(transitions.map((t) => t.detail)).to.include(`secret released at ${uri}`);
    const first = await fetchDiskKey(uri);
    expect(first).to.have.length(32);

    await orchestration.nodes.updateNode(enrolled.uuid, { driverInfo: { fake_outcome: 'fail', keylime_agent_uuid: node.agentId } });
    expect((await orchestration.deploy(enrolled.uuid)).provisionState).to.equal(STATES.deployFailed);
    const refused = await refusal(fetchDiskKey(uri));
    expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'AttestationError']);
    expect(refused.detail).to.contain('is revoked');

    await orchestration.nodes.updateNode(enrolled.uuid, { driverInfo: { fake_outcome: 'pass', keylime_agent_uuid: node.agentId } });
    expect((await orchestration.deploy(enrolled.uuid)).provisionState).to.equal(STATES.active);
    const second = await fetchDiskKey(uri);
    expect(second).to.have.length(32);
    expect(Buffer.from(second).equals(Buffer.from(first)), 'a rebuild gets a new secret').to.equal(false);
  });

  /** A passport-mode KBS client of the node, as the machine's previous tenant would hold one. */
  const passportClient = (): ReturnType<KbsClientBuilder['build']> =>
    new KbsClientBuilder(broker.running.url)
      .ca(broker.running.caCert)
      .mode('passport')
      .evidenceProvider(new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath }))
      .build();

  it('a rebuild\'s secret is not released to a credential issued before it (the previous tenant\'s token, still unexpired)', async function () {
    const orchestration = await orchestrator(broker.admin);
    // The node of the first test, active with a fetchable secret.
    const [uuid] = await orchestration.nodes.nodesNamingAgent(node.agentId);
    const resourcePath = `/kbs/v0/resource/node/disk-key/${uuid!}`;
    const previous = passportClient();
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      const token = await previous.client.token();
      const headers = { authorization: `Bearer ${token}` };
      expect((await http.send('GET', resourcePath, { headers })).status, 'the token reads the secret before the rebuild').to.equal(200);
      expect((await orchestration.deploy(uuid!)).provisionState).to.equal(STATES.active);
      const refused = await refusal(http.send('GET', resourcePath, { headers }));
      expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'TokenVerifierError']);
      expect(await fetchDiskKey(`kbs:///node/disk-key/${uuid!}`), 'a fresh attestation reads the new secret').to.have.length(32);
    } finally {
      await http.close();
      await previous.close();
    }
  });

  it('a rebuild whose node the broker refuses to store after deleting it fails, leaves nothing readable, and a retry releases', async function () {
    // The broker refuses the record (a runtime policy that does not compile) after the release deleted the node.
    const refusedStore = await orchestrator(broker.admin, { nodeRecord: async () => ({ akTpm: node.akTpm, runtimePolicy: '{' }) });
    const [uuid] = await refusedStore.nodes.nodesNamingAgent(node.agentId);
    const uri = `kbs:///node/disk-key/${uuid!}`;
    const resourcePath = `/kbs/v0/resource/node/disk-key/${uuid!}`;
    const previous = passportClient();
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      const headers = { authorization: `Bearer ${await previous.client.token()}` };
      expect((await http.send('GET', resourcePath, { headers })).status, 'the token reads the secret before the rebuild').to.equal(200);
      expect((await refusedStore.deploy(uuid!)).provisionState).to.equal(STATES.deployFailed);
      expect(transitions.at(-1)?.detail).to.match(/^secret not released: .*400 SerdeError/);
      expect((await refusal(http.send('GET', resourcePath, { headers }))).remoteHttpStatus, 'the old token reads nothing').to.equal(401);
      expect((await refusal(fetchDiskKey(uri))).kbsType, 'a fresh attestation gets nothing').to.equal('AttestationError');

      expect((await (await orchestrator(broker.admin)).deploy(uuid!)).provisionState, 'the retry deploys').to.equal(STATES.active);
      expect(await fetchDiskKey(uri)).to.have.length(32);
      expect((await refusal(http.send('GET', resourcePath, { headers }))).remoteHttpStatus, 'the old token stays refused').to.equal(401);
    } finally {
      await http.close();
      await previous.close();
    }
  });

  it('requiredClaims: a node whose boot the broker cannot check (no refstate given) is refused its secret; with the refstate it gets it', async function () {
    const withoutBootCheck = await orchestrator(broker.admin, {
      requiredClaims: ['configuration', 'executables'],
      nodeRecord: async () => ({ akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy() }),
    });
    // The node of the first test (one node per agent): deployed again, now with the claims required.
    const [uuid] = await withoutBootCheck.nodes.nodesNamingAgent(node.agentId);
    const enrolled = await withoutBootCheck.nodes.getNode(uuid!);
    expect((await withoutBootCheck.deploy(enrolled.uuid)).provisionState).to.equal(STATES.active);
    const uri = `kbs:///node/disk-key/${enrolled.uuid}`;
    const refused = await refusal(fetchDiskKey(uri));
    expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([403, 'PolicyDeny']);
    expect(refused.detail).to.contain('claim configuration is 0');

    const withBootCheck = await orchestrator(broker.admin, { requiredClaims: ['configuration', 'executables'] });
    await withBootCheck.nodes.updateNode(enrolled.uuid, { driverInfo: { fake_outcome: 'pass', keylime_agent_uuid: node.agentId } });
    expect((await withBootCheck.deploy(enrolled.uuid)).provisionState).to.equal(STATES.active);
    expect(await fetchDiskKey(uri)).to.have.length(32);
  });

  it('a rebuild whose release fails withdraws the node: revoked and its old secret deleted, not left fetchable', async function () {
    const failingRelease = await orchestrator(broker.admin, {
      nodeRecord: async () => {
        throw new Error('no reference state for this build');
      },
    });
    // The node of the first tests, active with a fetchable secret (the test before left it so).
    const [uuid] = await failingRelease.nodes.nodesNamingAgent(node.agentId);
    const uri = `kbs:///node/disk-key/${uuid!}`;
    expect(await fetchDiskKey(uri)).to.have.length(32);
    const rebuilt = await failingRelease.deploy(uuid!);
    expect(rebuilt.provisionState).to.equal(STATES.deployFailed);
    expect(transitions.at(-1)?.detail).to.equal('secret not released: no reference state for this build');
    expect(await broker.admin.revocationInForce(node.agentId)).to.be.a('string');
    const refused = await refusal(fetchDiskKey(uri));
    expect(refused.detail).to.contain('is revoked');
    const gone = await refusal(broker.admin.deleteResource({ repository: 'node', type: 'disk-key', tag: uuid! }));
    expect(gone.remoteHttpStatus, 'the old secret was deleted').to.equal(404);
  });

  it('a revocation recorded during the deploy is never ended by its release: 409 when one was in force at the start, withdrawn when none was', async function () {
    const orchestration = await orchestrator(broker.admin);
    const enrolled = await orchestration.enrollNode({
      name: 'rack4-u14',
      attestationInterface: 'fake',
      driverInfo: { fake_outcome: 'pass', keylime_agent_uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c0ff14' },
    });
    const agentId = 'd432fbb3-d2f1-4a97-9ef7-75bd81c0ff14';
    const release = new NodeSecretRelease({
      broker: broker.admin,
      verifierStanding: false,
      nodeRecord: async () => ({ akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() }),
    });
    // An earlier failed deploy revoked the node; the verifier fails it again while this deploy runs.
    await broker.admin.revoke(agentId, 'an earlier deploy failed');
    const revokedAtStart = await release.begin(enrolled);
    expect(revokedAtStart.revocation).to.be.a('string');
    await broker.admin.revoke(agentId, 'the verifier failed it during the deploy');
    const conflict = await refusal(release.release(enrolled, revokedAtStart));
    expect([conflict.remoteHttpStatus, conflict.kbsType]).to.deep.equal([409, 'AdminConflict']);
    expect(await broker.admin.revocationInForce(agentId)).to.be.a('string');

    // Nothing in force when the deploy begins; a revocation lands before the release.
    await broker.admin.reinstate(agentId);
    const cleanStart = await release.begin(enrolled);
    expect(cleanStart.revocation).to.equal(null);
    await broker.admin.revoke(agentId, 'the verifier failed it during the deploy');
    const error = await release.release(enrolled, cleanStart).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(error)).to.contain('was revoked in the broker during its deploy');
    expect(await broker.admin.revocationInForce(agentId)).to.be.a('string');
    const gone = await refusal(broker.admin.deleteResource(release.resourceOf(enrolled)));
    expect(gone.remoteHttpStatus, 'the secret was withdrawn').to.equal(404);
  });

  it('a broker that cannot take the secret fails the deploy (fail closed)', async function () {
    const dead = new BrokerAdminClient({ url: 'https://127.0.0.1:1', ca: broker.running.caCert, cert: '', key: '' });
    try {
      const orchestration = await orchestrator(dead);
      const enrolled = await orchestration.enrollNode({
        name: 'rack4-u13',
        attestationInterface: 'fake',
        // Not node.agentId: rack4-u12 names that agent, and one agent belongs to one node.
        driverInfo: { fake_outcome: 'pass', keylime_agent_uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c0ff13' },
      });
      await orchestration.clean(enrolled.uuid);
      // The broker is read when the deploy begins (the revocation in force): unreachable, the deploy
      // fails there, and withdrawing the secret afterwards fails too, loudly.
      const error = await orchestration.deploy(enrolled.uuid).then(
        () => undefined,
        (e: unknown) => e,
      );
      // Both steps of the withdrawal were tried (revoke, then delete) and both failures surface.
      expect(error).to.be.instanceOf(AggregateError);
      expect((error as AggregateError).errors).to.have.length(2);
      for (const each of (error as AggregateError).errors) expect(each).to.be.instanceOf(ServiceUnreachableError);
      expect((await orchestration.nodes.getNode(enrolled.uuid)).provisionState).to.equal(STATES.deployFailed);
      expect(transitions.at(-1)?.detail).to.match(/admin\/revocations\/.*unreachable/);
    } finally {
      await dead.close();
    }
  });
});
