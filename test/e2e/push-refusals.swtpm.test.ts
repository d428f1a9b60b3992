import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';
import { PushAgent } from '../../lib/agent/push/push-agent.js';
import { startPushAgent, type RunningPushAgent } from '../../lib/agent/push/push-agent-server.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { startSwtpm, type SwtpmHandle } from '../../lib/tpm-access/swtpm-manager.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import type { Tpm } from '../../lib/tpm-access/tpm-port.js';
import type { RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { createDeployment, eventually, policyForImaLog, type Deployment } from '../verifier/helpers/verifier-fixture.js';

const JSON_API = 'application/vnd.api+json';
/**
 * Seconds: short, so that silence and expiry show within a test (the sweep runs every timeout / 4), yet
 * long enough for a few tpm2-tools commands between a challenge and its answer, and for a re-started
 * agent's registration, session and first evidence, on a loaded machine (a silence timeout of 6 s
 * failed the re-enrolled agent before its first round there).
 */
const PUSH = { quoteInterval: 1, pushTimeout: 15, pushNonceLifetime: 10, pushChallengeLifetime: 15 } as const;

interface Reply {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

type Evidence = { data: { attributes: { evidence_collected: { data: Record<string, string> }[] } } };
type QuoteItem = { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]> } };

/**
 * The rest of issue 13's "Done when" on a real swtpm (push.swtpm.test.ts has registration, rounds and
 * IMA tampering): a running push agent stopped is failed by the verifier's own sweep timer, recovers
 * when re-enrolled through the tenant, is refused after measured-boot tampering; and §10's refusals
 * with evidence and proofs made by swtpm. Registrar and verifier in-process on a PostgreSQL schema
 * (createDeployment); the agent's TPM is a swtpm driven through tpm2-tools. Tests run in order.
 */
describe('push agent on swtpm: silence, re-enrolment, measured-boot tampering and §10 refusals', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let verifier: RunningVerifier;
  let tenant: TenantClient;
  let swtpm: SwtpmHandle;
  let tpm: Tpm;
  let running: RunningPushAgent | undefined;
  let policies: { runtimePolicy: string; mbPolicy: string };
  let probe: PushAgent | undefined;

  before(async function () {
    deployment = await createDeployment();
    verifier = await deployment.startVerifier(PUSH);
    swtpm = await startSwtpm({ stateDir: path.join(deployment.root, 'swtpm'), caDir: path.join(deployment.root, 'swtpm-ca') });
    tpm = await openTpm2ToolsTpm({ tcti: swtpm.tcti });
    running = await startPushAgent(deployment.pushAgentInput('push-node', verifier.url, { tpm: 'swtpm' }), { tpm });
    policies = {
      runtimePolicy: policyForImaLog(running.imaLogPath),
      mbPolicy: JSON.stringify(createRefstate(parseEventLog(new Uint8Array(readFileSync(running.bootLogPath))), { withoutSecureBoot: true })),
    };
    tenant = deployment.tenant();
    expect((await tenant.addPushAgent(running.uuid, policies)).apiVersion).to.equal('3.0');
  });

  after(async function () {
    await probe?.close();
    await running?.close();
    await tpm?.close();
    await swtpm?.stop();
    await deployment?.dispose();
  });

  const uuid = (): string => (running as RunningPushAgent).uuid;
  const outcomes = async (): Promise<string[]> => (await tenant.history(uuid(), 100)).map((round) => round.outcome).reverse();

  /** A request to the verifier's push routes, as the agent sends it. */
  async function call(method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object, token?: string): Promise<Reply> {
    const response = await verifier.service.app.inject({
      method,
      url,
      headers: { 'content-type': JSON_API, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    return { status: response.statusCode, headers: response.headers, body: response.body === '' ? {} : (JSON.parse(response.body) as Record<string, unknown>) };
  }

  /**
   * A push agent on the same swtpm and node that attests only when told (its requests are built by
   * hand), for the refusals while the node's running agent is stopped.
   */
  async function probeAgent(): Promise<PushAgent> {
    const node = running as RunningPushAgent;
    return (probe ??= new PushAgent({
      uuid: node.uuid,
      verifierUrl: verifier.url,
      caCert: readFileSync(deployment.caFile, 'utf8'),
      tpm,
      ak: await tpm.ensureAk('sha256'),
      logs: fileAgentLogs(node.imaLogPath, node.bootLogPath),
      // Not before the stopped agent's (an emulated node's boot time is its agent's start): else 422.
      bootTime: new Date(),
      log: pino({ level: 'silent' }),
    }));
  }

  function requested(reply: Reply): unknown[] {
    return reply.body['data']['attributes']['evidence_requested'] as unknown[];
  }

  function sessionBody(message: Uint8Array, signature: Uint8Array): object {
    const data = { message: Buffer.from(message).toString('base64'), signature: Buffer.from(signature).toString('base64') };
    return { data: { type: 'session', attributes: { agent_id: uuid(), authentication_provided: [{ authentication_class: 'pop', authentication_type: 'tpm_pop', data }] } } };
  }

  async function openSession(): Promise<{ id: string; challenge: Uint8Array }> {
    const opened = await call('POST', '/v3.0/sessions', {
      data: { type: 'session', attributes: { agent_id: uuid(), authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
    });
    expect(opened.status).to.equal(200);
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    return { id: opened.body['data']['id'] as string, challenge: new Uint8Array(Buffer.from(challenge, 'base64')) };
  }

  it('registers with its swtpm and attests several rounds', async function () {
    await eventually('three passed push rounds', async () => (await outcomes()).filter((o) => o === 'pass').length >= 3, 60_000, 250);
    expect(await outcomes()).to.not.include('fail');
    expect((await tenant.getStatus(uuid())).operational_state).to.equal(OperationalState.GET_QUOTE);
  });

  it('is failed (FAILED, not pending) by the verifier\'s own sweep timer once its running agent is stopped', async function () {
    await (running as RunningPushAgent).close();
    const stoppedAt = Date.now();
    // Read once stopped: the round in flight at close() is finished and judged first.
    const before = await outcomes();
    expect(before.every((o) => o === 'pass'), JSON.stringify(before)).to.equal(true);
    // No tick by hand: the sweep runs every timeout / 4 (3.75 s), so FAILED comes 15–18.75 s after the last round.
    await eventually('the stopped agent failed', async () => (await tenant.getStatus(uuid())).operational_state === OperationalState.FAILED, 60_000, 100);
    expect(Date.now() - stoppedAt).to.be.at.most(45_000);
    const status = await tenant.getStatus(uuid());
    expect(status).to.include({ operational_state: OperationalState.FAILED, attestation_status: 'FAIL', last_event_id: 'internal.verifier.not_reachable' });
    expect((await outcomes()).slice(before.length)).to.deep.equal(['fail']);
  });

  it('a forged certify (another TPM\'s AK over the challenge) is 401 evaluation "fail", no token; the swtpm\'s own certify passes', async function () {
    // The other TPM's keys are made before the session opens: its challenge lives 10 s.
    const other = await createSoftwareTpm();
    await other.ensureEk();
    await other.ensureAk('sha256');
    const session = await openSession();
    const forged = await other.certifyAk('sha256', session.challenge);
    const refused = await call('PATCH', `/v3.0/sessions/${session.id}`, sessionBody(forged.attest, forged.signature));
    expect(refused.status).to.equal(401);
    expect(refused.body['data']['attributes']).to.include({ agent_id: uuid(), evaluation: 'fail' });
    expect(refused.body['data']['attributes']).to.not.have.any.keys('token', 'token_expires_at');
    const own = await tpm.certifyAk('sha256', session.challenge);
    const passed = await call('PATCH', `/v3.0/sessions/${session.id}`, sessionBody(own.attest, own.signature));
    expect([passed.status, passed.body['data']['attributes']['evaluation']]).to.deep.equal([200, 'pass']);
    expect(passed.body['data']['attributes']['token']).to.be.a('string');
  });

  it('a certify sent after the session challenge expired is 200 evaluation "fail" (Keylime 7.14), no token', async function () {
    const session = await openSession();
    const proof = await tpm.certifyAk('sha256', session.challenge);
    await new Promise((resolve) => setTimeout(resolve, PUSH.pushNonceLifetime * 1000 + 200));
    const late = await call('PATCH', `/v3.0/sessions/${session.id}`, sessionBody(proof.attest, proof.signature));
    expect(late.status).to.equal(200);
    expect(late.body['data']['attributes']['evaluation']).to.equal('fail');
    expect(late.body['data']['attributes']).to.not.have.property('token');
  });

  it('evidence on an old index is 403 old_attestation; replayed evidence is 403 evidence_immutable', async function () {
    const agent = await probeAgent();
    const token = await agent.openSession();
    const capabilities = await agent.capabilities();
    const first = await call('POST', `/v3.0/agents/${uuid()}/attestations`, capabilities, token);
    expect(first.status, JSON.stringify(first.body)).to.equal(201);
    // While the first awaits its evidence, the next phase 1 is due a quote interval after it was created (else 429).
    await new Promise((resolve) => setTimeout(resolve, PUSH.quoteInterval * 1000 + 50));
    const second = await call('POST', `/v3.0/agents/${uuid()}/attestations`, capabilities, token);
    expect(second.status).to.equal(201);
    const [firstIndex, secondIndex] = [first, second].map((reply) => Number(String(reply.headers['location']).split('/').at(-1)));
    expect(secondIndex).to.equal((firstIndex as number) + 1);
    const old = await call('PATCH', `/v3.0/agents/${uuid()}/attestations/${firstIndex}`, await agent.evidence(requested(first)), token);
    expect(old.status).to.equal(403);
    expect(old.body['errors'][0]['code']).to.equal('old_attestation');
    const evidence = await agent.evidence(requested(second));
    const accepted = await call('PATCH', `/v3.0/agents/${uuid()}/attestations/${secondIndex}`, evidence, token);
    expect(accepted.status).to.equal(202);
    const replay = await call('PATCH', `/v3.0/agents/${uuid()}/attestations/${secondIndex}`, evidence, token);
    expect(replay.status).to.equal(403);
    expect(replay.body['errors'][0]['code']).to.equal('evidence_immutable');
  });

  it('a swtpm quote missing a requested PCR is 422 (the documented choice) and nothing is judged', async function () {
    const agent = await probeAgent();
    // The previous test's attestation was 202: the next one is due a quote interval later (else 429).
    await new Promise((resolve) => setTimeout(resolve, PUSH.quoteInterval * 1000 + 50));
    const token = await agent.openSession();
    const created = await call('POST', `/v3.0/agents/${uuid()}/attestations`, await agent.capabilities(), token);
    expect(created.status).to.equal(201);
    const quoteItem = requested(created)[0] as QuoteItem;
    const pcrs = quoteItem.chosen_parameters.selected_subjects['sha256'] ?? [];
    expect(pcrs).to.include(4);
    const evidence = (await agent.evidence(requested(created))) as Evidence;
    const short = await tpm.quote({ nonce: new Uint8Array(Buffer.from(quoteItem.chosen_parameters.challenge, 'base64')), pcrs: pcrs.filter((pcr) => pcr !== 4), hashAlg: 'sha256' });
    (evidence.data.attributes.evidence_collected[0] as { data: Record<string, string> }).data = {
      message: Buffer.from(short.attest).toString('base64'),
      signature: Buffer.from(short.signature).toString('base64'),
      subject_data: Buffer.from(short.pcrBlob).toString('base64'),
    };
    const rounds = (await outcomes()).length;
    const refused = await call('PATCH', created.headers['location'] as string, evidence, token);
    expect(refused.status).to.equal(422);
    expect(refused.body['errors'][0]['detail']).to.contain('PCR 4');
    expect((await outcomes()).length).to.equal(rounds);
  });
  it('recovers when re-enrolled: tenant delete and add --push, the agent started again, passing rounds', async function () {
    await tenant.deleteAgent(uuid(), { timeoutMs: 20_000 });
    expect((await tenant.addPushAgent(uuid(), policies)).apiVersion).to.equal('3.0');
    // Whether the old rounds were kept or removed with the enrolment, only the rounds from here count.
    const before = (await outcomes()).length;
    const node = running as RunningPushAgent;
    // The same node's agent process started again (not a reboot): it registers again and serves the
    // logs the emulated node wrote, without replaying the boot log into the TPM a second time.
    running = await startPushAgent(
      deployment.pushAgentInput('push-node', verifier.url, { tpm: 'swtpm', emulate: false, imaLog: node.imaLogPath, bootLog: node.bootLogPath }),
      { tpm },
    );
    expect(running.uuid).to.equal(node.uuid);
    const newRounds = async (): Promise<string[]> => (await outcomes()).slice(before);
    await eventually('two passed rounds after re-enrolment', async () => (await newRounds()).length >= 2, 60_000, 250);
    expect(await newRounds()).to.not.include('fail');
    const status = await tenant.getStatus(uuid());
    expect(status).to.include({ operational_state: OperationalState.GET_QUOTE, attestation_status: 'PASS' });
  });

  it('is refused after measured-boot tampering on the swtpm (PCR 4 extended outside the boot log)', async function () {
    const before = (await outcomes()).length;
    await tpm.extendPcr(4, 'sha256', new Uint8Array(32).fill(0xee));
    await eventually('a failed round', async () => (await outcomes()).slice(before).includes('fail'), 30_000, 250);
    // History is newest first: the newest failure is this one.
    const failed = (await tenant.history(uuid(), 100)).find((round) => round.outcome === 'fail');
    expect(failed?.failures.map((f) => f.event_id)).to.include('measured_boot.invalid_pcr_4');
    const status = await tenant.getStatus(uuid());
    expect(status).to.include({ operational_state: OperationalState.INVALID_QUOTE, attestation_status: 'FAIL' });
    // Stopped, so that the latest attestation is a judged one; as the agent reads it, by its own session.
    await (running as RunningPushAgent).close();
    const latest = await call('GET', `/v3.0/agents/${uuid()}/attestations/latest`, undefined, await (await probeAgent()).openSession());
    expect(latest.status).to.equal(201);
    expect(latest.body['data']['attributes']).to.include({ stage: 'verification_complete', evaluation: 'fail', failure_reason: 'broken_evidence_chain' });
  });
});
