import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AttestationFailed } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildAgentConfig } from '../../lib/agent/agent-config.js';
import { startHostAgent, type RunningHostAgent } from '../../lib/agent/host-agent.js';
import type { IronlimeConfig } from '../../lib/config/ironlime-config.js';
import { demoConfig } from '../../lib/demo/demo-config.js';
import { startDemoEnvironment, type DemoEnvironment, type DemoNode } from '../../lib/demo/demo-environment.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { createKeylimeClient, type KeylimeClient } from '../../lib/http/keylime-client.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { LivenessClient } from '../../lib/verifier/liveness/liveness-client.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';
import { closedPort } from '../helpers/ports.js';
import { rejection } from './driver-test-node.js';

/**
 * A node checked for liveness while it had no TPM, now registered with one: the verifier refuses to
 * attest an agent it still checks for liveness (409), so the driver removes that enrolment when it is
 * this node's and has not failed, and enrols the agent with its TPM. Real registrar, verifier and an
 * emulated node on the software TPM.
 */
describe('keylime driver: a node checked for liveness that now has a TPM', function () {
  this.timeout(120_000);
  let dir: string;
  let env: DemoEnvironment;
  let node: DemoNode;
  let http: KeylimeClient;
  let liveness: LivenessClient;
  let host: RunningHostAgent | undefined;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-liveness-to-tpm-'));
    env = await startDemoEnvironment({ dir, tpmKind: 'software', nodeCount: 1, quoteIntervalSeconds: 1, imaGrowthMs: 0 });
    node = env.nodes[0] as DemoNode;
    const pem = (file: string): string => readFileSync(file, 'utf8');
    http = createKeylimeClient({ baseUrl: env.verifier.url, tls: { ca: pem(env.tls.caFile), cert: pem(env.tls.certFile), key: pem(env.tls.keyFile) } });
    liveness = new LivenessClient(http);
  });

  afterEach(async function () {
    await host?.close();
    host = undefined;
    await liveness.remove(node.agent.uuid).catch(() => undefined);
    await http.delete(`/v2.3/agents/${node.agent.uuid}`).catch(() => undefined);
    // A polled agent's removal ends after the verifier let go of it.
    await eventually('the agent left the verifier', async () => !(await enrolments()).tpm, 20_000);
  });

  after(async function () {
    http?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (): Readonly<IronlimeConfig> => demoConfig(env, dir, { failFlags: false, statusTimeoutSeconds: 20 });

  function orchestratorNode(uuid: string): Node {
    const now = new Date();
    return {
      uuid,
      name: 'rack2-u7',
      provisionState: 'cleaning',
      attestationInterface: 'keylime',
      driverInfo: {
        keylime_allowlist: env.policies.allowlist.path,
        keylime_allowlist_checksum: env.policies.allowlist.sha256,
        keylime_agent_uuid: node.agent.uuid,
        keylime_agent_address: '127.0.0.1',
        keylime_agent_port: node.port,
      },
      instanceInfo: {},
      lastAttestation: { status: null, reason: null, eventIds: [], at: null },
      createdAt: now,
      updatedAt: now,
    };
  }

  /** What the driver left of the node at the verifier: its TPM enrolment and its liveness enrolment. */
  async function enrolments(): Promise<{ tpm: boolean; liveness: boolean }> {
    const present = async (read: () => Promise<unknown>): Promise<boolean> =>
      read().then(
        () => true,
        (error: unknown) => {
          if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) return false;
          throw error;
        },
      );
    return { tpm: await present(() => http.get(`/v2.3/agents/${node.agent.uuid}`)), liveness: await present(() => liveness.status(node.agent.uuid)) };
  }

  /** The liveness enrolment the driver made while the node had no TPM, checked at `port` with `cert`. */
  async function enrolForLiveness(nodeUuid: string, port: number, cert: string): Promise<void> {
    await liveness.enrol(node.agent.uuid, { mode: 'id-only', ip: '127.0.0.1', port, mtlsCert: cert, proofKey: null, metadata: { node: nodeUuid } });
  }

  it("removes this node's liveness enrolment and enrols the agent with its TPM", async function () {
    const nodeUuid = '3f8a1c52-5d0e-4b7a-9c1e-2a6d8b4f7e01';
    await enrolForLiveness(nodeUuid, await closedPort(), node.agent.agentCertPem);
    await new KeylimeAttestation({ extraEkCaDirs: [env.ekCaDir] }).startAttestation(createTask(orchestratorNode(nodeUuid), config()));
    expect(await enrolments()).to.deep.equal({ tpm: true, liveness: false });
  });

  it("leaves another node's liveness enrolment and enrols nothing", async function () {
    await enrolForLiveness('0c4d2b7e-8a1f-4e6c-b3d5-9f2a7e1c4b02', await closedPort(), node.agent.agentCertPem);
    const refused = await rejection(new KeylimeAttestation({ extraEkCaDirs: [env.ekCaDir] }).startAttestation(createTask(orchestratorNode('6b2e9d41-1c7f-4a3e-8d5b-0e9f6a2c3d03'), config())));
    expect(refused, refused.message).to.be.instanceOf(AttestationFailed);
    expect((refused as AttestationFailed).reasons.join()).to.include('enrolled for liveness checks with the verifier');
    expect(await enrolments()).to.deep.equal({ tpm: false, liveness: true });
  });

  it('keeps a failed liveness enrolment: the node is torn down before it is attested', async function () {
    const nodeUuid = '9d1f3a6b-2e4c-4f8a-a7b1-5c3e8d2f6a04';
    // A host agent that answers as another agent: the first check fails the enrolment.
    host = await startHostAgent(
      buildAgentConfig({ dataDir: path.join(dir, 'other-host'), registrarUrl: env.registrar.httpUrl, port: 0, clientCaFile: env.tls.caFile, identity: 'id-only', hostId: 'mac:02:00:5e:10:00:07' }),
    );
    await enrolForLiveness(nodeUuid, Number(new URL(host.url).port), host.agentCertPem);
    await eventually('the liveness enrolment failed', async () => (await liveness.status(node.agent.uuid)).liveness_status === 'failed', 20_000);
    const refused = await rejection(new KeylimeAttestation({ extraEkCaDirs: [env.ekCaDir] }).startAttestation(createTask(orchestratorNode(nodeUuid), config())));
    expect(refused, refused.message).to.be.instanceOf(AttestationFailed);
    expect((refused as AttestationFailed).reasons.join()).to.include('failed its liveness checks before it was registered with a TPM');
    expect(await enrolments()).to.deep.equal({ tpm: false, liveness: true });
  });
});
