import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { AgentClient } from '../../lib/agent/agent-client.js';
import type { QuoteResults } from '../../lib/agent/agent-reply-dtos.js';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase } from '../../lib/db/database-factory.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { buildEnrolmentBody, checkEnrolmentPolicies } from '../../lib/tenant/enrolment-request.js';
import { showRegistrarAgent } from '../../lib/tenant/registrar-agents.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import type { VerifierHistoryEntry } from '../../lib/verifier/verifier-client.js';
import { openTpm2ToolsTpm, type Tpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { runCli, spawnCli, type CliProcess } from '../helpers/cli-runner.js';
import {
  createDeployment,
  digestOf,
  eventually,
  policyForAgent,
  refstateForAgent,
  type Deployment,
} from '../verifier/helpers/verifier-fixture.js';
import { closedPort } from '../helpers/ports.js';


/** A TCP forwarder in front of an agent that can be taken down and brought back on the same port. */
class TcpProxy {
  private server: TcpServer | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async up(): Promise<void> {
    const { createConnection } = await import('node:net');
    this.server = createTcpServer((client) => {
      const upstream = createConnection(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
  }

  async down(): Promise<void> {
    for (const socket of this.sockets) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
    this.server = undefined;
  }
}

/** A TPM handle on the agent's own swtpm (the TCTI it records for `ima-append`). */
async function agentTpm(agent: RunningAgent): Promise<Tpm2ToolsTpm> {
  const state = JSON.parse(readFileSync(path.join(agent.config.dataDir, 'emulation.json'), 'utf8')) as { tcti: string };
  return openTpm2ToolsTpm({ tcti: state.tcti });
}

function sha256Of(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(digestOf(text), 'hex'));
}

async function notFound(promise: Promise<unknown>): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (error) {
    return error instanceof KeylimeHttpError && error.remoteHttpStatus === 404;
  }
}

/**
 * The verifier end to end with real swtpm nodes: registrar in-process, the verifier as a child process
 * (`ironlime verifier` from the compiled tree, zero-config: embedded PGlite in its data folder), agents emulating nodes on their own
 * swtpm, the tenant as a library and as the CLI. Quote interval 0.5 s, retries 0.2 s.
 */
describe('verifier end to end (swtpm nodes, verifier child process)', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let verifier: CliProcess | undefined;
  let verifierUrl: string;
  let verifierPort: number;
  let tenant: TenantClient;
  let nodeA: RunningAgent;
  let nodeB: RunningAgent;
  let proxyB: TcpProxy;
  const tpms: Tpm2ToolsTpm[] = [];
  const relays: HttpsServer[] = [];
  const good = digestOf('/usr/bin/good v1');
  let policyA: string;
  let refstateA: string;

  async function startVerifierProcess(): Promise<void> {
    verifier = spawnCli([
      'verifier',
      '--data-dir', deployment.servicesDir,
      '--port', String(verifierPort),
      '--quote-interval', '0.5',
      '--retry-interval', '0.2',
      '--max-retries', '3',
      '--lease-seconds', '5',
      '--log-level', 'warn',
    ]);
    await verifier.waitForOutput('verifier listening on', 60_000);
  }

  async function roundsOf(agentId: string): Promise<VerifierHistoryEntry[]> {
    return tenant.history(agentId, 1000);
  }

  before(async function () {
    deployment = await createDeployment();
    verifierPort = await closedPort();
    verifierUrl = `https://127.0.0.1:${verifierPort}`;
    await startVerifierProcess();
    [nodeA, nodeB] = await Promise.all([
      deployment.startAgent('node-a', { tpm: 'swtpm' }),
      deployment.startAgent('node-b', { tpm: 'swtpm' }),
    ]);
    // The tenant checks EK certificates against each node's swtpm CA (Keylime's require_ek_cert).
    tenant = deployment.tenant(verifierUrl, { ekCheck: 'require', extraEkCaDirs: [nodeA.ekCaDir as string, nodeB.ekCaDir as string] });
    const bUrl = new URL(nodeB.url);
    proxyB = new TcpProxy(await closedPort(), { host: bUrl.hostname, port: Number(bUrl.port) });
    await proxyB.up();
    policyA = policyForAgent(nodeA, { '/usr/bin/good': good });
    refstateA = refstateForAgent(nodeA);
  });

  after(async function () {
    for (const relay of relays) {
      relay.close();
    }
    await Promise.all(tpms.map((tpm) => tpm.close().catch(() => undefined)));
    await proxyB?.down();
    verifier?.child.kill('SIGTERM');
    await verifier?.exited();
    await deployment?.dispose();
  });

  it('enrols node A (runtime policy, refstate, PCR policy, payload key): it reaches and stays in Get Quote', async function () {
    const added = await tenant.addAgent(nodeA.uuid, {
      runtimePolicy: policyA,
      mbPolicy: refstateA,
      tpmPolicy: { '23': ['0'.repeat(64)] },
      deliverKeys: true,
    });
    expect(added.identity.ekAnchor).to.be.a('string');
    await tenant.waitForState(nodeA.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 20_000 });
    await eventually('4 attestations', async () => ((await tenant.getStatus(nodeA.uuid)).attestation_count ?? 0) >= 4, 30_000);
    const status = await tenant.getStatus(nodeA.uuid);
    expect(status).to.include({ operational_state: OperationalState.GET_QUOTE, attestation_status: 'PASS', has_mb_refstate: 1, has_runtime_policy: 1 });
    expect(await tenant.verifyBootstrapKey(nodeA.uuid, added.bootstrapKey as Buffer, { timeoutMs: 10_000 })).to.equal(true);
    expect((await roundsOf(nodeA.uuid)).every((round) => round.outcome === 'pass')).to.equal(true);
  });

  it('survives SIGKILL: the restarted verifier resumes every agent, keeps the history, and asks only for new IMA entries', async function () {
    await nodeA.appendIma('/usr/bin/good', good);
    await eventually('the new entry attested', async () => {
      const [latest] = await roundsOf(nodeA.uuid);
      return latest?.outcome === 'pass' && (latest.imaEntriesReceived ?? 0) >= 1;
    });
    await eventually('a round after it', async () => {
      const [latest] = await roundsOf(nodeA.uuid);
      return latest?.outcome === 'pass' && latest.imaEntriesReceived === 0;
    });
    verifier?.child.kill('SIGKILL');
    await verifier?.exited();
    const before = await (async () => {
      // Read straight from the verifier's embedded database (PGlite in its data folder): the verifier is down.
      const db = await createDatabase({ dataDir: deployment.servicesDir });
      try {
        const rows = (await db.knex('verifier_attestation_history').where({ agent_id: nodeA.uuid }).select('id')) as { id: string }[];
        const agent = (await db.knex('verifier_agents').where({ agent_id: nodeA.uuid }).first()) as { next_ima_ml_entry: number; attestation_count: number };
        return { ids: rows.map((r) => Number(r.id)), nextEntry: agent.next_ima_ml_entry, count: agent.attestation_count };
      } finally {
        await db.close();
      }
    })();
    expect(before.nextEntry).to.be.greaterThan(1);
    await startVerifierProcess();
    await eventually('rounds after the restart', async () => (await roundsOf(nodeA.uuid)).length >= before.ids.length + 2, 20_000);
    const after = await roundsOf(nodeA.uuid);
    const afterIds = new Set(after.map((round) => round.id));
    expect(before.ids.every((id) => afterIds.has(id))).to.equal(true);
    const firstAfter = after.filter((round) => round.id > Math.max(...before.ids)).at(-1) as VerifierHistoryEntry;
    expect(firstAfter.outcome).to.equal('pass');
    expect(firstAfter.imaMlEntry).to.equal(before.nextEntry);
    expect(firstAfter.imaEntriesReceived).to.equal(0);
    const status = await tenant.getStatus(nodeA.uuid);
    expect(status.operational_state).to.equal(OperationalState.GET_QUOTE);
    expect(status.attestation_count).to.be.greaterThan(before.count);
  });

  it('POST /verify/evidence agrees with the pull loop, and a file outside the policy is Invalid Quote (seen in `tenant status`)', async function () {
    const registered = await showRegistrarAgent(tenant.registrar, nodeA.uuid);
    const client = new AgentClient({ baseUrl: nodeA.url, agentCert: nodeA.agentCertPem, clientTls: deployment.tenantTls });
    const evidenceNow = async (): Promise<Awaited<ReturnType<TenantClient['verifier']['verifyEvidence']>>> => {
      const nonce = 'evidence0123456789ab';
      const reply = await client.integrityQuote({ nonce, mask: '0x80c7ff', partial: false, imaEntry: 0 });
      return tenant.verifier.verifyEvidence({
        quote: reply.quote,
        nonce,
        hash_alg: reply.hash_alg,
        tpm_ak: Buffer.from(registered.akPublic).toString('base64'),
        tpm_policy: JSON.stringify({ '23': ['0'.repeat(64)] }),
        runtime_policy: policyA,
        mb_policy: refstateA,
        ima_measurement_list: reply.ima_measurement_list,
        mb_log: reply.mb_measurement_list,
      });
    };
    try {
      const passing = await evidenceNow();
      expect(passing.valid).to.equal(true);
      expect(passing.failures).to.deep.equal([]);
      await nodeA.appendIma('/usr/bin/evil', digestOf('evil'));
      const status = await tenant.waitForState(nodeA.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
      expect(status.last_event_id).to.equal('ima.validation.ima-ng.not_in_allowlist');
      const [failing] = await roundsOf(nodeA.uuid);
      const evidence = await evidenceNow();
      expect(evidence.valid).to.equal(false);
      expect(evidence.failures.map((f) => f.type)).to.deep.equal(failing?.failures.map((f) => f.event_id));
    } finally {
      client.close();
    }
    const cli = await runCli(['tenant', 'status', '--uuid', nodeA.uuid, '--verifier', verifierUrl, '--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir]);
    expect(cli.code).to.equal(1);
    const printed = JSON.parse(cli.stdout) as Record<string, unknown>;
    expect(printed).to.include({ operational_state: 9, operational_state_label: 'Invalid Quote', attestation_status: 'FAIL', last_event_id: 'ima.validation.ima-ng.not_in_allowlist' });
  });

  it('node B: a PCR outside tpm_policy fails; reset and reactivate brings Get Quote back', async function () {
    await tenant.addAgent(nodeB.uuid, { agentUrl: `https://127.0.0.1:${proxyB.port}`, mbPolicy: refstateForAgent(nodeB), tpmPolicy: { '23': ['0'.repeat(64)] } });
    await tenant.waitForState(nodeB.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 20_000 });
    const tpm = await agentTpm(nodeB);
    tpms.push(tpm);
    await tpm.extendPcr(23, 'sha256', sha256Of('unexpected'));
    const failed = await tenant.waitForState(nodeB.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    expect(failed.last_event_id).to.equal('pcr_validation.invalid_pcr_23');
    await tpm.resetPcr(23);
    await tenant.reactivateAgent(nodeB.uuid);
    await tenant.waitForState(nodeB.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
    const [latest] = await roundsOf(nodeB.uuid);
    expect(latest?.outcome).to.equal('pass');
  });

  it('node B unreachable: retries, then Failed (internal.verifier.not_reachable); back up and reactivated: Get Quote', async function () {
    await proxyB.down();
    const failed = await tenant.waitForState(nodeB.uuid, [OperationalState.FAILED], { timeoutMs: 20_000 });
    expect(failed.last_event_id).to.equal('internal.verifier.not_reachable');
    const rounds = await roundsOf(nodeB.uuid);
    const lastPass = rounds.findIndex((round) => round.outcome === 'pass');
    expect(rounds.slice(0, lastPass).map((round) => round.outcome)).to.deep.equal(['fail', 'retry', 'retry', 'retry']);
    await proxyB.up();
    await tenant.reactivateAgent(nodeB.uuid);
    await tenant.waitForState(nodeB.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
  });

  it('node B: a changed boot component (PCR 4 extended) fails measured boot', async function () {
    const tpm = tpms[0] as Tpm2ToolsTpm;
    await tpm.extendPcr(4, 'sha256', sha256Of('rogue boot loader'));
    const failed = await tenant.waitForState(nodeB.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    expect(failed.last_event_id).to.match(/^measured_boot\./);
    const [latest] = await roundsOf(nodeB.uuid);
    expect(latest?.failures.map((f) => f.event_id)).to.include('measured_boot.invalid_pcr_4');
  });

  it('refuses a replayed old quote and a quote from another TPM (pull loop and verify/identity)', async function () {
    const a = await showRegistrarAgent(tenant.registrar, nodeA.uuid);
    const clientA = new AgentClient({ baseUrl: nodeA.url, agentCert: nodeA.agentCertPem, clientTls: deployment.tenantTls });
    const clientB = new AgentClient({ baseUrl: nodeB.url, agentCert: nodeB.agentCertPem, clientTls: deployment.tenantTls });
    try {
      const identityA = await clientA.identityQuote('identityNonce0000001');
      const identityB = await clientB.identityQuote('identityNonce0000001');
      const check = (quote: string, nonce: string): Promise<{ valid: number; reason?: string }> =>
        tenant.verifier.verifyIdentity({ agentId: nodeA.uuid, quote, nonce, hashAlg: 'sha256' });
      expect((await check(identityA.quote, 'identityNonce0000001')).valid).to.equal(1);
      expect((await check(identityA.quote, 'identityNonce0000002')).valid).to.equal(0);
      expect((await check(identityB.quote, 'identityNonce0000001')).valid).to.equal(0);

      // Two relays holding node A's TLS identity: one replays a recorded reply, one forwards to node B.
      const recorded = await clientA.integrityQuote({ nonce: 'recordedNonce0000001', mask: '0x400', partial: false, imaEntry: 0 });
      const tlsDir = path.join(nodeA.config.dataDir, 'tls');
      const relay = async (answer: (nonce: string) => Promise<QuoteResults>): Promise<number> => {
        const server = createHttpsServer({ cert: readFileSync(path.join(tlsDir, 'agent-cert.crt')), key: readFileSync(path.join(tlsDir, 'agent-private.pem')) }, (req, res) => {
          const nonce = new URL(req.url ?? '/', 'https://relay').searchParams.get('nonce') ?? '';
          void answer(nonce).then((results) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ code: 200, status: 'Success', results }));
          });
        });
        relays.push(server);
        const port = await closedPort();
        await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
        return port;
      };
      const cases = [
        { id: `${nodeA.uuid}-replayed`, port: await relay(() => Promise.resolve(recorded)) },
        { id: `${nodeA.uuid}-other-tpm`, port: await relay((nonce) => clientB.integrityQuote({ nonce, mask: '0x400', partial: false, imaEntry: 0 })) },
      ];
      for (const { id, port } of cases) {
        await tenant.verifier.addAgent(id, buildEnrolmentBody({ agent: a, ip: '127.0.0.1', port, v: null, supportedVersion: '2.6' }, checkEnrolmentPolicies({})));
        const status = await tenant.waitForState(id, [OperationalState.INVALID_QUOTE, OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
        expect(status.operational_state, id).to.equal(OperationalState.INVALID_QUOTE);
        expect(status.last_event_id, id).to.equal('qoute_validation.quote_validation');
        await tenant.deleteAgent(id, { timeoutMs: 10_000 });
      }
    } finally {
      clientA.close();
      clientB.close();
    }
  });

  it('delete: the TERMINATED handshake ends in 404 and the agent is no longer listed', async function () {
    await tenant.reactivateAgent(nodeA.uuid);
    await tenant.deleteAgent(nodeA.uuid, { timeoutMs: 15_000 });
    await tenant.deleteAgent(nodeB.uuid, { timeoutMs: 15_000 });
    expect(await notFound(tenant.getStatus(nodeA.uuid))).to.equal(true);
    expect(await tenant.listAgents()).to.not.include(nodeA.uuid);
  });
});
