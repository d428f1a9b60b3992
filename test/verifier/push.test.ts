import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { PushAgent } from '../../lib/agent/push/push-agent.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { replayBootLog } from '../../lib/tpm-access/boot-log-replayer.js';
import { ImaEmulator } from '../../lib/tpm-access/ima-emulator.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo } from '../../lib/tpm-access/tpm-port.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { vectorPath } from '../helpers/paths.js';
import { evidenceHandlingResponseProblems, sessionIdResponseProblems } from '../helpers/rust-push-structs.js';

const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const JSON_API = 'application/vnd.api+json';
const SILENT = pino({ level: 'silent' });
/** Files a node may run: the runtime policy allows them; anything else is tampering. */
const ALLOWED = ['/usr/bin/bash', '/usr/bin/ls', '/usr/bin/cat', '/usr/sbin/sshd'];

function contentOf(file: string): Uint8Array {
  return new Uint8Array(Buffer.from(`content of ${file}`));
}

interface PushNode {
  readonly uuid: string;
  readonly tpm: SoftwareTpm;
  readonly ak: AkInfo;
  readonly ima: ImaEmulator;
  readonly agent: PushAgent;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('push model: verifier /v3.0 routes, push agent, liveness (issue 13)', function () {
  this.timeout(60_000);
  let dir: string;
  let opened: OpenedDatabase;
  let verifier: RunningVerifier;
  let url: string;
  const nodes: PushNode[] = [];
  /** Revocation messages (`msg` of each envelope) the verifier sent to its webhook. */
  const announced: Record<string, unknown>[] = [];
  let webhook: Server;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-push-'));
    opened = await openTestSchema();
    webhook = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        announced.push(JSON.parse((JSON.parse(body) as { msg: string }).msg) as Record<string, unknown>);
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const revocationWebhooks = [webhookUrl()];
    verifier = await startVerifier(
      { dataDir: dir, quoteInterval: 1, pushTimeout: 3, pushNonceLifetime: 3, pushChallengeLifetime: 4, revocationWebhooks },
      { database: opened.database, inProcessForTests: true },
    );
    url = await verifier.service.app.listen({ port: 0, host: '127.0.0.1' });
  });

  after(async function () {
    for (const node of nodes) await node.agent.close().catch(() => undefined);
    await verifier?.close();
    await new Promise((resolve) => webhook?.close(resolve));
    await opened?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  function webhookUrl(): string {
    return `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/revoked`;
  }

  async function call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object, token?: string, at: RunningVerifier = verifier): Promise<Reply> {
    const response = await at.service.app.inject({
      method,
      url,
      headers: { 'content-type': JSON_API, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    return { status: response.statusCode, headers: response.headers, body: response.body === '' ? {} : (JSON.parse(response.body) as Record<string, unknown>) };
  }

  async function bootNode(): Promise<PushNode> {
    const uuid = randomUUID();
    const tpm = await createSoftwareTpm();
    await tpm.ensureEk();
    const ak = await tpm.ensureAk('sha256');
    await replayBootLog(tpm, BOOT_LOG);
    const bootLogPath = path.join(dir, `${uuid}.boot`);
    writeFileSync(bootLogPath, BOOT_LOG);
    const imaLogPath = path.join(dir, `${uuid}.ima`);
    const ima = new ImaEmulator({ tpm, logPath: imaLogPath });
    await ima.start();
    await ima.measure([{ path: '/usr/bin/bash', content: contentOf('/usr/bin/bash') }]);
    const agent = new PushAgent({
      uuid,
      verifierUrl: url,
      tpm,
      ak,
      imaLogPath,
      bootLogPath,
      bootTime: new Date(Date.now() - 60_000),
      backoff: { initialDelayMs: 100, maxDelayMs: 400 },
      log: SILENT,
    });
    const node = { uuid, tpm, ak, ima, agent };
    nodes.push(node);
    return node;
  }

  function runtimePolicy(node: PushNode): string {
    const log = readFileSync(path.join(dir, `${node.uuid}.ima`), 'utf8');
    const bootAggregate = log.split('\n')[0]?.split(' ')[3]?.replace(/^sha256:/, '') ?? '';
    const digests: Record<string, string[]> = { boot_aggregate: [bootAggregate] };
    for (const file of ALLOWED) digests[file] = [createHash('sha256').update(contentOf(file)).digest('hex')];
    return JSON.stringify({
      meta: { version: 1, generator: 3 },
      release: 0,
      digests,
      excludes: [],
      keyrings: {},
      ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
      'ima-buf': {},
      'verification-keys': '',
    });
  }

  async function enrol(node: PushNode, overrides: Record<string, unknown> = {}): Promise<Reply> {
    return call('POST', `/v2.5/agents/${node.uuid}`, {
      attestation_mode: 'push',
      tpm_policy: JSON.stringify({ mask: '0x400' }),
      runtime_policy: Buffer.from(runtimePolicy(node)).toString('base64'),
      mb_policy: JSON.stringify(createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true })),
      accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['rsa', 'ecc'],
      accept_tpm_signing_algs: ['rsassa', 'ecdsa'],
      ak_tpm: Buffer.from(node.ak.akPublic).toString('base64'),
      ...overrides,
    });
  }

  /** Waits for the revocation message announcing `uuid`; resolves to its `type` and `event_id`. */
  async function announcement(uuid: string): Promise<Record<string, unknown>> {
    await pollUntil({ timeoutMs: 10_000, intervalMs: 50 }, `the failure of ${uuid} announced`, async () => announced.some((message) => message['agent_id'] === uuid));
    // A second announcement (a pass, or the failure again) would arrive as soon as the first did.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const messages = announced.filter((message) => message['agent_id'] === uuid);
    expect(messages, 'announced once').to.have.length(1);
    return { type: messages[0]?.['type'], event_id: messages[0]?.['event_id'] };
  }

  async function stored(uuid: string) {
    const record = await new VerifierAgentRepository(opened.database.knex).find(uuid);
    if (record === undefined) throw new Error(`${uuid} is not stored`);
    return record;
  }

  async function history(uuid: string) {
    return (await new VerifierAgentRepository(opened.database.knex).history(uuid, 50)).reverse();
  }

  /** Phase 1 by hand: resolves to the reply (201 with what is wanted, or a refusal). */
  async function capabilities(node: PushNode, token: string): Promise<Reply> {
    return call('POST', `/v3.0/agents/${node.uuid}/attestations`, await node.agent.capabilities(), token);
  }

  function requested(reply: Reply): unknown[] {
    return reply.body['data']['attributes']['evidence_requested'] as unknown[];
  }

  it('a push agent enrols without address or port, proves its AK, and attests several rounds with incremental IMA', async function () {
    const node = await bootNode();
    expect((await enrol(node)).status).to.equal(200);
    expect((await stored(node.uuid)).attestationMode).to.equal('push');
    expect(await node.agent.attestOnce()).to.equal(1);
    for (const file of ['/usr/bin/ls', '/usr/bin/cat']) {
      await node.ima.measure([{ path: file, content: contentOf(file) }]);
      await new Promise((resolve) => setTimeout(resolve, 1050));
      expect(await node.agent.attestOnce()).to.equal(1);
    }
    const rows = await history(node.uuid);
    expect(rows.map((r) => r.outcome)).to.deep.equal(['pass', 'pass', 'pass']);
    // Round 1 replays boot_aggregate and bash from 0; each later round gets the new line only.
    expect(rows.map((r) => [r.imaMlEntry, r.imaEntriesReceived])).to.deep.equal([
      [0, 2],
      [2, 1],
      [3, 1],
    ]);
    const record = await stored(node.uuid);
    expect(record.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(record.state.attestationCount).to.equal(3);
    expect(record.state.ima.nextEntry).to.equal(4);
    const status = await call('GET', `/v2.5/agents/${node.uuid}`);
    expect(status.body['results']['attestation_status']).to.equal('PASS');
  });

  it('the 202 parses as the Rust agent\'s EvidenceHandlingResponse: each item\'s capabilities as received, chosen_parameters and data (logs without their text), system_info, a whole seconds_to_next_attestation', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    // The Rust agent's certification key has every CertificationKey field (ours has no local_identifier).
    const sent = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    sent.data.attributes.evidence_supported[0].capabilities.certification_keys[0].local_identifier = 'att_local_identifier';
    const created = await call('POST', `/v3.0/agents/${node.uuid}/attestations`, sent, token);
    expect(created.status).to.equal(201);
    const evidence = (await node.agent.evidence(requested(created))) as { data: { attributes: { evidence_collected: { evidence_type: string; data: Record<string, unknown> }[] } } };
    const accepted = await call('PATCH', created.headers['location'] as string, evidence, token);
    expect(accepted.status).to.equal(202);
    expect(evidenceHandlingResponseProblems(accepted.body)).to.deep.equal([]);
    expect(accepted.body['meta']).to.deep.equal({ seconds_to_next_attestation: 1 });
    const items = accepted.body['data']['attributes']['evidence'] as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(items.map((i) => i['evidence_type'])).to.deep.equal(['tpm_quote', 'uefi_log', 'ima_log']);
    for (const item of items) {
      const offered = sent.data.attributes.evidence_supported.find((s: { evidence_type: string }) => s.evidence_type === item['evidence_type']);
      expect(item['capabilities'], item['evidence_type']).to.deep.equal(offered.capabilities);
    }
    const collected = evidence.data.attributes.evidence_collected;
    expect(items[0]?.['data']).to.deep.equal(collected[0]?.data);
    expect(items[0]?.['chosen_parameters']).to.deep.equal((requested(created)[0] as { chosen_parameters: unknown }).chosen_parameters);
    expect(items[1]?.['data']).to.deep.equal({ entries: '' });
    expect(items[2]?.['data']).to.deep.equal({ entries: '', entry_count: collected[2]?.data['entry_count'] });
    expect(accepted.body['data']['attributes']['system_info']).to.deep.equal(sent.data.attributes.system_info);
  });

  it('phase 1 after a verdict this process stored follows the agent\'s row: a changed tpm_policy, then pull mode', async function () {
    const node = await bootNode();
    await enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    // Changed behind this process's back, as the tenant or another verifier process would.
    await opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ tpm_policy: JSON.stringify({ mask: '0x800400' }) });
    const token = await node.agent.openSession();
    const next = await capabilities(node, token);
    expect(next.status).to.equal(201);
    expect(next.headers['location']).to.equal(`/v3.0/agents/${node.uuid}/attestations/1`);
    const quoteItem = requested(next)[0] as { chosen_parameters: { selected_subjects: Record<string, number[]> } };
    expect(quoteItem.chosen_parameters.selected_subjects['sha256']).to.include(23);
    const indexes = (await opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid }).orderBy('index').select('index')) as { index: number }[];
    expect(indexes.map((row) => row.index)).to.deep.equal([0, 1]);
    const accepted = await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, await node.agent.evidence(requested(next)), token);
    expect(accepted.status).to.equal(202);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    await opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ attestation_mode: 'pull' });
    const refused = await capabilities(node, token);
    expect(refused.status).to.equal(403);
    expect(refused.body['errors'][0]['code']).to.equal('agent_attestations_disabled');
    expect(await opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 2 }).first()).to.equal(undefined);
    expect((await history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
  });

  it('the agent\'s run loop attests on the returned interval and stops cleanly when aborted', async function () {
    const node = await bootNode();
    await enrol(node);
    const stop = new AbortController();
    const running = node.agent.run(stop.signal);
    // Waits for rounds rather than counting them in a fixed time: on a loaded machine the first session
    // alone can take a second, and the point is the spacing and the clean stop, not the speed.
    await pollUntil({ timeoutMs: 30_000, intervalMs: 100 }, 'three push rounds', async () => (await history(node.uuid)).length >= 3);
    stop.abort();
    await running;
    const rows = await history(node.uuid);
    expect(rows.every((r) => r.outcome === 'pass')).to.equal(true);
    const gaps = rows.slice(1).map((row, i) => row.attemptedAt - (rows[i]?.attemptedAt ?? 0));
    // quoteInterval is 1 s: the agent waits seconds_to_next_attestation between rounds (100 ms of clock slack).
    expect(Math.min(...gaps)).to.be.at.least(900);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await history(node.uuid)).length, 'no round after the abort').to.equal(rows.length);
  });

  it('is refused after IMA tampering (a file outside the runtime policy): policy_violation, FAIL, announced to the revocation webhook', async function () {
    const node = await bootNode();
    await enrol(node);
    await node.agent.attestOnce();
    await node.ima.measure([{ path: '/tmp/rootkit', content: new Uint8Array([1, 2, 3]) }]);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    await node.agent.attestOnce();
    const rows = await history(node.uuid);
    expect(rows.at(-1)?.outcome).to.equal('fail');
    expect(rows.at(-1)?.failures.map((f) => f.event_id)).to.include('ima.validation.ima-ng.not_in_allowlist');
    expect((await stored(node.uuid)).state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
    const token = await node.agent.openSession();
    const latest = await call('GET', `/v3.0/agents/${node.uuid}/attestations/latest`, undefined, token);
    expect(latest.status).to.equal(201);
    expect(latest.body['data']['attributes']).to.include({ stage: 'verification_complete', evaluation: 'fail', failure_reason: 'policy_violation' });
    expect((await call('GET', `/v2.5/agents/${node.uuid}`)).body['results']['attestation_status']).to.equal('FAIL');
    expect(await announcement(node.uuid)).to.deep.equal({ type: 'revocation', event_id: 'ima.validation.ima-ng.not_in_allowlist' });
  });

  it('is refused after measured-boot tampering (PCR 4 no longer replays the boot log): broken_evidence_chain', async function () {
    const node = await bootNode();
    await enrol(node);
    await node.agent.attestOnce();
    await node.tpm.extendPcr(4, 'sha256', new Uint8Array(32).fill(0xee));
    await new Promise((resolve) => setTimeout(resolve, 1050));
    await node.agent.attestOnce();
    const rows = await history(node.uuid);
    expect(rows.at(-1)?.outcome).to.equal('fail');
    expect(rows.at(-1)?.failures.map((f) => f.event_id)).to.include('measured_boot.invalid_pcr_4');
    const token = await node.agent.openSession();
    const latest = await call('GET', `/v3.0/agents/${node.uuid}/attestations/latest`, undefined, token);
    expect(latest.body['data']['attributes']['failure_reason']).to.equal('broken_evidence_chain');
  });

  it('is timed out (FAILED, not pending) when it stops sending, announced as comm_error, and recovers when enrolled again', async function () {
    const node = await bootNode();
    await enrol(node);
    await node.agent.attestOnce();
    await new Promise((resolve) => setTimeout(resolve, 3200));
    await verifier.push.silenceSweep.tick();
    const failed = await stored(node.uuid);
    expect(failed.state.operationalState).to.equal(OperationalState.FAILED);
    expect(failed.state.lastEventId).to.equal('internal.verifier.not_reachable');
    expect(await announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.not_reachable' });
    expect((await call('GET', `/v2.5/agents/${node.uuid}`)).body['results']['attestation_status']).to.equal('FAIL');
    // Still failed after a pass: a push agent stays failed until it is enrolled again.
    await node.agent.attestOnce();
    expect((await stored(node.uuid)).state.operationalState).to.equal(OperationalState.FAILED);
    expect((await call('DELETE', `/v2.5/agents/${node.uuid}`)).status).to.equal(200);
    expect((await enrol(node)).status).to.equal(200);
    await node.agent.attestOnce().catch(() => node.agent.attestOnce());
    const recovered = await stored(node.uuid);
    expect(recovered.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(recovered.state.attestationCount).to.equal(1);
  });

  it('two verifier processes sweeping the same silent agents at once fail each once: one FAIL row and one announcement per agent', async function () {
    const second = await startVerifier(
      { dataDir: dir, quoteInterval: 1, pushTimeout: 3, pushNonceLifetime: 3, pushChallengeLifetime: 4, instanceId: 'second-sweeper', revocationWebhooks: [webhookUrl()] },
      { database: opened.database, inProcessForTests: true },
    );
    try {
      const silent = await Promise.all([1, 2, 3].map(() => bootNode()));
      for (const node of silent) {
        await enrol(node);
        await node.agent.attestOnce();
      }
      await new Promise((resolve) => setTimeout(resolve, 3200));
      await Promise.all([verifier.push.silenceSweep.tick(), second.push.silenceSweep.tick()]);
      for (const node of silent) {
        expect((await stored(node.uuid)).state.operationalState).to.equal(OperationalState.FAILED);
        expect((await history(node.uuid)).map((r) => r.outcome), node.uuid).to.deep.equal(['pass', 'fail']);
        expect(await announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.not_reachable' });
      }
    } finally {
      await second.close();
    }
  });

  it('a forged certify (another TPM\'s AK over the challenge) is 401 evaluation "fail"; no token is issued', async function () {
    const node = await bootNode();
    await enrol(node);
    // Everything slow (a second TPM's keys, a certify over a wrong challenge) is made before the session
    // opens: the challenge lives 4 s here, and an expired one is answered 200 "fail", not 401.
    const other = await createSoftwareTpm();
    const wrong = await node.tpm.certifyAk('sha256', new Uint8Array(16));
    const opened = await call('POST', '/v3.0/sessions', {
      data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
    });
    expect(opened.status).to.equal(200);
    expect(opened.headers['content-type']).to.equal(JSON_API);
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    expect(Buffer.from(challenge, 'base64')).to.have.length(16);
    const forged = await other.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
    const proof = (message: Uint8Array, signature: Uint8Array) => ({
      data: {
        type: 'session',
        attributes: {
          agent_id: node.uuid,
          authentication_provided: [
            { authentication_class: 'pop', authentication_type: 'tpm_pop', data: { message: Buffer.from(message).toString('base64'), signature: Buffer.from(signature).toString('base64') } },
          ],
        },
      },
    });
    const refused = await call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof(forged.attest, forged.signature));
    expect(refused.status).to.equal(401);
    expect(refused.body['data']['attributes']).to.include({ agent_id: node.uuid, evaluation: 'fail' });
    expect(refused.body['data']['attributes']).to.not.have.any.keys('token', 'token_expires_at');
    expect(sessionIdResponseProblems(refused.body), 'the fail reply parses as the Rust agent reads it').to.deep.equal([]);
    expect(refused.body['data']['attributes']['authentication'][0]).to.deep.equal({
      authentication_class: 'pop',
      authentication_type: 'tpm_pop',
      chosen_parameters: { challenge },
      data: { message: Buffer.from(forged.attest).toString('base64'), signature: Buffer.from(forged.signature).toString('base64') },
    });
    // The right TPM over a different challenge is refused too.
    expect((await call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof(wrong.attest, wrong.signature))).status).to.equal(401);
    // Random bytes are a refusal, not a crash.
    expect((await call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof(new Uint8Array(40).fill(7), new Uint8Array(9)))).status).to.equal(401);
  });

  it('a session PATCH reply carries what the Rust agent requires; an unknown session is 404, another agent\'s 400', async function () {
    const node = await bootNode();
    await enrol(node);
    const open = () =>
      call('POST', '/v3.0/sessions', {
        data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
      });
    const proofFor = async (agentId: string, challenge: string) => {
      const proof = await node.tpm.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
      const data = { message: Buffer.from(proof.attest).toString('base64'), signature: Buffer.from(proof.signature).toString('base64') };
      return { data, body: { data: { type: 'session', attributes: { agent_id: agentId, authentication_provided: [{ authentication_class: 'pop', authentication_type: 'tpm_pop', data }] } } } };
    };
    const opened = await open();
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    const proof = await proofFor(node.uuid, challenge);
    const passed = await call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, proof.body);
    expect(passed.status).to.equal(200);
    expect(sessionIdResponseProblems(passed.body)).to.deep.equal([]);
    const attributes = passed.body['data']['attributes'];
    expect(attributes).to.include({ agent_id: node.uuid, evaluation: 'pass' });
    expect(attributes['token']).to.be.a('string');
    expect(attributes['authentication']).to.deep.equal([{ authentication_class: 'pop', authentication_type: 'tpm_pop', chosen_parameters: { challenge }, data: proof.data }]);
    expect(attributes['created_at']).to.equal(opened.body['data']['attributes']['created_at']);
    expect(attributes['challenges_expire_at']).to.equal(opened.body['data']['attributes']['challenges_expire_at']);
    expect(Date.parse(attributes['token_expires_at'] as string)).to.be.greaterThan(Date.parse(attributes['response_received_at'] as string));
    // Keylime's session controller: an unknown session is 404, a session opened for another agent 400.
    const other = await open();
    const otherChallenge = other.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    const unknown = await call('PATCH', `/v3.0/sessions/${randomUUID()}`, (await proofFor(node.uuid, otherChallenge)).body);
    expect([unknown.status, unknown.body['errors'][0]['status']]).to.deep.equal([404, '404']);
    expect((await call('PATCH', '/v3.0/sessions/not-a-uuid', (await proofFor(node.uuid, otherChallenge)).body)).status).to.equal(404);
    const mismatch = await call('PATCH', `/v3.0/sessions/${other.body['data']['id']}`, (await proofFor(randomUUID(), otherChallenge)).body);
    expect([mismatch.status, mismatch.body['errors'][0]['status']]).to.deep.equal([400, '400']);
  });

  it('an expired session challenge gets evaluation "fail" (200, as Keylime 7.14) and no token', async function () {
    const node = await bootNode();
    await enrol(node);
    const opened = await call('POST', '/v3.0/sessions', {
      data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } },
    });
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    const proof = await node.tpm.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const late = await call('PATCH', `/v3.0/sessions/${opened.body['data']['id']}`, {
      data: {
        type: 'session',
        attributes: {
          agent_id: node.uuid,
          authentication_provided: [
            { authentication_class: 'pop', authentication_type: 'tpm_pop', data: { message: Buffer.from(proof.attest).toString('base64'), signature: Buffer.from(proof.signature).toString('base64') } },
          ],
        },
      },
    });
    expect(late.status).to.equal(200);
    expect(late.body['data']['attributes']['evaluation']).to.equal('fail');
    expect(late.body['data']['attributes']).to.not.have.property('token');
    expect(sessionIdResponseProblems(late.body)).to.deep.equal([]);
  });

  it('a replayed evidence PATCH is 403 evidence_immutable; a PATCH on an old index is 403 old_attestation', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    const first = await capabilities(node, token);
    expect(first.status).to.equal(201);
    expect(first.headers['location']).to.equal(`/v3.0/agents/${node.uuid}/attestations/0`);
    // A second capabilities POST while 0 has no evidence: attestation 1; 0 is now old.
    const second = await capabilities(node, token);
    expect(second.headers['location']).to.equal(`/v3.0/agents/${node.uuid}/attestations/1`);
    const evidence0 = await node.agent.evidence(requested(first));
    const old = await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/0`, evidence0, token);
    expect(old.status).to.equal(403);
    expect(old.body['errors'][0]['code']).to.equal('old_attestation');
    const evidence1 = await node.agent.evidence(requested(second));
    const accepted = await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence1, token);
    expect(accepted.status).to.equal(202);
    expect(accepted.body['data']['attributes']['stage']).to.equal('evaluating_evidence');
    expect(accepted.body['meta']).to.deep.equal({ seconds_to_next_attestation: 1 });
    const replay = await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/1`, evidence1, token);
    expect(replay.status).to.equal(403);
    expect(replay.body['errors'][0]['code']).to.equal('evidence_immutable');
    // The next attestation before quote_interval is 429 with Retry-After.
    const premature = await capabilities(node, token);
    expect(premature.status).to.equal(429);
    expect(premature.body['errors'][0]['code']).to.equal('premature_attestation');
    expect(Number(premature.headers['retry-after'])).to.be.within(1, 2);
    expect((await history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass']);
  });

  it('evidence is taken once across two verifier processes: a replay at the other is 403 evidence_immutable; of two concurrent PATCHes, one is judged', async function () {
    const second = await startVerifier(
      { dataDir: dir, quoteInterval: 1, pushTimeout: 3, pushNonceLifetime: 3, pushChallengeLifetime: 4, instanceId: 'second-verifier-process' },
      { database: opened.database, inProcessForTests: true },
    );
    try {
      const node = await bootNode();
      await enrol(node);
      const token = await node.agent.openSession();
      const patch = async (evidence: object, at: RunningVerifier) => call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token, at);
      const first = await capabilities(node, token);
      const evidence0 = await node.agent.evidence(requested(first));
      expect((await patch(evidence0, verifier)).status).to.equal(202);
      // The second process has not seen this agent: it reads the attestation back and refuses the replay.
      const replay = await patch(evidence0, second);
      expect(replay.status).to.equal(403);
      expect(replay.body['errors'][0]['code']).to.equal('evidence_immutable');
      // The first process judges without a read and takes the evidence with its verdict; the second
      // takes it at once. Sent together (the second a moment later, while the first's verdict waits
      // for its batch), exactly one is judged and stored; the other is refused as a replay.
      await new Promise((resolve) => setTimeout(resolve, 1050));
      const next = await capabilities(node, token);
      expect(next.status).to.equal(201);
      const evidence1 = await node.agent.evidence(requested(next));
      const firstPatch = patch(evidence1, verifier);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const answers = await Promise.all([firstPatch, patch(evidence1, second)]);
      expect(answers.map((a) => a.status).sort()).to.deep.equal([202, 403]);
      expect(answers.find((a) => a.status === 403)?.body['errors'][0]['code']).to.equal('evidence_immutable');
      expect((await history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
      expect((await stored(node.uuid)).state.attestationCount).to.equal(2);
      const latest = (await opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()) as { stage: string; evaluation: string };
      expect(latest).to.include({ stage: 'verification_complete', evaluation: 'pass' });
    } finally {
      await second.close();
    }
  });

  it('a database outage during phase 2: the PATCH waits, /health is not ready, nothing reads as judged, and the verdict (a FAIL) is stored once the database is back', async function () {
    const node = await bootNode();
    await enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await node.ima.measure([{ path: '/tmp/rootkit', content: new Uint8Array([1, 2, 3]) }]);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const token = await node.agent.openSession();
    const next = await capabilities(node, token);
    const evidence = await node.agent.evidence(requested(next));
    const knex = opened.database.knex;
    // The audit records' table gone: every verdict transaction fails at its audit step.
    await knex.raw('alter table audit_records rename to audit_records_away');
    let settled = false;
    let patching: Promise<Reply> | undefined;
    try {
      patching = call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(settled, 'no answer while the verdict is not stored').to.equal(false);
      expect((await verifier.service.app.inject({ method: 'GET', url: '/health' })).statusCode, 'not ready while a verdict waits').to.equal(503);
      expect((await history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass']);
      expect((await stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
      const waiting = await capabilities(node, token);
      expect(waiting.status).to.equal(503);
      expect(waiting.body['errors'][0]['code']).to.equal('verification_in_progress');
    } finally {
      await knex.raw('alter table audit_records_away rename to audit_records');
    }
    expect((await patching).status).to.equal(202);
    const rows = await history(node.uuid);
    // On a loaded machine the liveness timeout (3 s here) may also fire while the verdict waits: a
    // second FAIL ("not reachable") before the stored one, never a PASS.
    expect(rows[0]?.outcome).to.equal('pass');
    expect(rows.slice(1).map((r) => r.outcome)).to.satisfy((outcomes: string[]) => outcomes.length >= 1 && outcomes.every((o) => o === 'fail'));
    expect(rows.at(-1)?.failures.map((f) => f.event_id)).to.include('ima.validation.ima-ng.not_in_allowlist');
    expect((await stored(node.uuid)).state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
  });

  it('evidence after the attestation challenge expired is 403 challenges_expired', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    const created = await capabilities(node, token);
    const evidence = await node.agent.evidence(requested(created));
    await new Promise((resolve) => setTimeout(resolve, 4100));
    const late = await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token);
    expect(late.status).to.equal(403);
    expect(late.body['errors'][0]['code']).to.equal('challenges_expired');
  });

  it('a quote over the challenge\'s base64 text (the Rust agent) passes as one over its bytes does; a quote over anything else fails', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    const attestWith = async (qualifyingData: (challenge: string) => Uint8Array): Promise<number> => {
      const created = await capabilities(node, token);
      const quoteItem = requested(created)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]> } };
      const evidence = (await node.agent.evidence(requested(created))) as { data: { attributes: { evidence_collected: { data: Record<string, string> }[] } } };
      const made = await node.tpm.quote({ nonce: qualifyingData(quoteItem.chosen_parameters.challenge), pcrs: quoteItem.chosen_parameters.selected_subjects['sha256'] ?? [], hashAlg: 'sha256' });
      (evidence.data.attributes.evidence_collected[0] as { data: Record<string, string> }).data = {
        message: Buffer.from(made.attest).toString('base64'),
        signature: Buffer.from(made.signature).toString('base64'),
        subject_data: Buffer.from(made.pcrBlob).toString('base64'),
      };
      const accepted = await call('PATCH', created.headers['location'] as string, evidence, token);
      await new Promise((resolve) => setTimeout(resolve, 1050));
      return accepted.status;
    };
    expect(await attestWith((challenge) => new Uint8Array(Buffer.from(challenge, 'ascii')))).to.equal(202);
    expect(await attestWith((challenge) => new Uint8Array(Buffer.from(challenge, 'base64')))).to.equal(202);
    expect((await history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
    // The text of an earlier challenge (answered in between) is not this attestation's challenge.
    const previous = requested(await capabilities(node, token));
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const stale = (previous[0] as { chosen_parameters: { challenge: string } }).chosen_parameters.challenge;
    await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, await node.agent.evidence(previous), token);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    expect(await attestWith(() => new Uint8Array(Buffer.from(stale, 'ascii')))).to.equal(202);
    const rows = await history(node.uuid);
    expect(rows.map((r) => r.outcome)).to.deep.equal(['pass', 'pass', 'pass', 'fail']);
    expect(rows[3]?.failures.map((f) => f.event_id)).to.deep.equal(['qoute_validation.quote_validation']);
  });

  it('whatever certification key is chosen, the quote is verified against the enrolled ak_tpm: another TPM\'s AK offered as "ak" is echoed, and its quote fails', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    const other = await createSoftwareTpm();
    await other.ensureEk();
    const otherAk = await other.ensureAk('sha256');
    const offer = async () => {
      const body = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
      body.data.attributes.evidence_supported[0].capabilities.certification_keys[0].public = Buffer.from(otherAk.akPublic).toString('base64');
      const created = await call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
      expect(created.status).to.equal(201);
      const quoteItem = requested(created)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]>; certification_key: { public: string } } };
      expect(quoteItem.chosen_parameters.certification_key.public).to.equal(Buffer.from(otherAk.akPublic).toString('base64'));
      return created;
    };
    // The enrolled AK's quote passes although the key chosen (and echoed) is the other TPM's.
    const first = await offer();
    expect((await call('PATCH', first.headers['location'] as string, await node.agent.evidence(requested(first)), token)).status).to.equal(202);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    // A quote by the offered key fails.
    const second = await offer();
    const quoteItem = requested(second)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]> } };
    const forged = await other.quote({ nonce: new Uint8Array(Buffer.from(quoteItem.chosen_parameters.challenge, 'base64')), pcrs: quoteItem.chosen_parameters.selected_subjects['sha256'] ?? [], hashAlg: 'sha256' });
    const evidence = (await node.agent.evidence(requested(second))) as { data: { attributes: { evidence_collected: { data: Record<string, string> }[] } } };
    (evidence.data.attributes.evidence_collected[0] as { data: Record<string, string> }).data = {
      message: Buffer.from(forged.attest).toString('base64'),
      signature: Buffer.from(forged.signature).toString('base64'),
      subject_data: Buffer.from(forged.pcrBlob).toString('base64'),
    };
    expect((await call('PATCH', second.headers['location'] as string, evidence, token)).status).to.equal(202);
    const rows = await history(node.uuid);
    expect(rows.map((r) => r.outcome)).to.deep.equal(['pass', 'fail']);
    expect(rows[1]?.failures.map((f) => f.event_id)).to.deep.equal(['qoute_validation.quote_validation']);
  });

  it('a quote missing a requested PCR is 422, and nothing is judged', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    const created = await capabilities(node, token);
    const quoteItem = requested(created)[0] as { chosen_parameters: { challenge: string; selected_subjects: Record<string, number[]> } };
    expect(quoteItem.chosen_parameters.selected_subjects['sha256']).to.include.members([0, 7, 10, 14]);
    const short = await node.tpm.quote({
      nonce: new Uint8Array(Buffer.from(quoteItem.chosen_parameters.challenge, 'base64')),
      pcrs: (quoteItem.chosen_parameters.selected_subjects['sha256'] ?? []).filter((pcr) => pcr !== 7),
      hashAlg: 'sha256',
    });
    const evidence = (await node.agent.evidence(requested(created))) as { data: { attributes: { evidence_collected: { data: Record<string, string> }[] } } };
    const quote = evidence.data.attributes.evidence_collected[0] as { data: Record<string, string> };
    quote.data = {
      message: Buffer.from(short.attest).toString('base64'),
      signature: Buffer.from(short.signature).toString('base64'),
      subject_data: Buffer.from(short.pcrBlob).toString('base64'),
    };
    const refused = await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token);
    expect(refused.status).to.equal(422);
    expect(refused.body['errors'][0]['detail']).to.contain('PCR 7');
    expect(await history(node.uuid)).to.deep.equal([]);
  });

  it('refuses attestations without a token (403), with a wrong one or another agent\'s (401)', async function () {
    const node = await bootNode();
    await enrol(node);
    const body = await node.agent.capabilities();
    expect((await call('POST', `/v3.0/agents/${node.uuid}/attestations`, body)).status).to.equal(403);
    const wrong = await call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, `${randomUUID()}.bm90LWEtdG9rZW4`);
    expect(wrong.status).to.equal(401);
    const token = await node.agent.openSession();
    const other = await bootNode();
    await enrol(other);
    expect((await call('POST', `/v3.0/agents/${other.uuid}/attestations`, body, token)).status).to.equal(401);
  });

  it('a pull-enrolled agent gets 403 agent_attestations_disabled on the push routes', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    await opened.database.knex('verifier_agents').update({ attestation_mode: 'pull' }).where({ agent_id: node.uuid });
    const refused = await capabilities(node, token);
    expect(refused.status).to.equal(403);
    expect(refused.body['errors'][0]['code']).to.equal('agent_attestations_disabled');
  });

  it('rate-limits sessions per agent: the 16th in a minute is 429 with Retry-After', async function () {
    const agentId = randomUUID();
    const body = { data: { type: 'session', attributes: { agent_id: agentId, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } } };
    for (let i = 0; i < 15; i += 1) expect((await call('POST', '/v3.0/sessions', body)).status).to.equal(200);
    const limited = await call('POST', '/v3.0/sessions', body);
    expect(limited.status).to.equal(429);
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 60);
  });

  it('stores the token only as a salted PBKDF2 hash', async function () {
    const node = await bootNode();
    await enrol(node);
    const token = await node.agent.openSession();
    const [sessionId, secret] = token.split('.') as [string, string];
    const row = (await opened.database.knex('verifier_push_sessions').where({ session_id: sessionId }).first()) as Record<string, string>;
    expect(JSON.stringify(row)).to.not.contain(secret);
    expect(Buffer.from(row['token_salt'] ?? '', 'base64')).to.have.length(16);
    expect(Buffer.from(row['token_hash'] ?? '', 'base64')).to.have.length(32);
  });

  describe('body validation', function () {
    let node: PushNode;
    let token: string;

    before(async function () {
      node = await bootNode();
      await enrol(node);
      token = await node.agent.openSession();
    });

    const cases: [string, (body: any) => void][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
      ['available_subjects as a list', (b) => (b.data.attributes.evidence_supported[0].capabilities.available_subjects = [0, 1, 2])],
      ['a PCR above 23', (b) => (b.data.attributes.evidence_supported[0].capabilities.available_subjects = { sha256: [24] })],
      ['a wrong data.type', (b) => (b.data.type = 'session')],
      ['an unknown evidence_type', (b) => (b.data.attributes.evidence_supported[0].evidence_type = 'tee_report')],
      ['an unknown field', (b) => (b.data.attributes.extra = 1)],
      ['a boot_time that is not ISO 8601', (b) => (b.data.attributes.system_info.boot_time = 'yesterday')],
      ['a certification key with non-base64 public', (b) => (b.data.attributes.evidence_supported[0].capabilities.certification_keys[0].public = 'not base64!')],
    ];
    for (const [name, mutate] of cases) {
      it(`capabilities with ${name} are 400 (JSON:API error)`, async function () {
        const body = JSON.parse(JSON.stringify(await node.agent.capabilities())) as Record<string, unknown>;
        mutate(body);
        const refused = await call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
        expect(refused.status).to.equal(400);
        expect(refused.headers['content-type']).to.equal(JSON_API);
        expect(refused.body['errors'][0]['status']).to.equal('400');
      });
    }

    it('capabilities offering a bank not in hash_algorithms are 422 (Keylime 7.14)', async function () {
      const body = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
      body.data.attributes.evidence_supported[0].capabilities.available_subjects.sha1 = [0];
      const refused = await call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
      expect(refused.status).to.equal(422);
    });

    it('judges the token before the body (403, 401 before a 400) and refuses a query string (400)', async function () {
      const bad = { data: { type: 'session' } };
      expect((await call('POST', `/v3.0/agents/${node.uuid}/attestations`, bad)).status).to.equal(403);
      expect((await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, bad, `${randomUUID()}.bm90LWEtdG9rZW4`)).status).to.equal(401);
      expect((await call('POST', `/v3.0/agents/${node.uuid}/attestations`, bad, token)).status).to.equal(400);
      const queried = await call('GET', `/v3.0/agents/${node.uuid}/attestations?page=2`, undefined, token);
      expect([queried.status, queried.body['errors'][0]['detail']]).to.deep.equal([400, 'query: not expected on this route']);
    });

    it('a session body that is not JSON:API, and evidence whose quote is not base64, are 400', async function () {
      expect((await call('POST', '/v3.0/sessions', { agent_id: node.uuid })).status).to.equal(400);
      // As Keylime: the authentication type must be tpm_pop (else 400); its class is not looked at.
      const session = (supported: object) => call('POST', '/v3.0/sessions', { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [supported] } } });
      expect((await session({ authentication_class: 'pop', authentication_type: 'password' })).status).to.equal(400);
      expect((await session({ authentication_class: 'proof', authentication_type: 'tpm_pop' })).status).to.equal(200);
      const evidence = { data: { type: 'attestation', attributes: { evidence_collected: [{ evidence_class: 'certification', evidence_type: 'tpm_quote', data: { message: '%%%', signature: 'AA==', subject_data: 'AA==' } }] } } };
      expect((await call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token)).status).to.equal(400);
    });

    it('capabilities and evidence carrying meta are accepted, and meta is ignored (not repeated, not stored)', async function () {
      const body = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
      body.data.attributes.evidence_supported[0].capabilities.meta = { note: 'ignored' };
      const created = await call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
      expect(created.status).to.equal(201);
      const evidence = (await node.agent.evidence(requested(created))) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
      evidence.data.attributes.evidence_collected[0].data.meta = { pcrs: {} };
      const accepted = await call('PATCH', created.headers['location'] as string, evidence, token);
      expect(accepted.status).to.equal(202);
      expect(accepted.body['data']['attributes']['evidence'][0]['capabilities']).to.not.have.property('meta');
      expect(accepted.body['data']['attributes']['evidence'][0]['data']).to.not.have.property('meta');
    });
  });
});
