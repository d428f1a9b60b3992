import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { fileAgentLogs } from '../../../lib/agent/agent-logs.js';
import { PushAgent } from '../../../lib/agent/push/push-agent.js';
import { createRefstate } from '../../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../../lib/mb/parse-event-log.js';
import { pollUntil } from '../../../lib/timing/poll-until.js';
import { replayBootLog } from '../../../lib/tpm-access/boot-log-replayer.js';
import { ImaEmulator } from '../../../lib/tpm-access/ima-emulator.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo } from '../../../lib/tpm-access/tpm-port.js';
import { VerifierAgentRepository } from '../../../lib/verifier/verifier-agent-repository.js';
import { startVerifier, type RunningVerifier } from '../../../lib/verifier/verifier-server.js';
import { collectingLogger } from '../../helpers/collecting-logger.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../../helpers/databases.js';
import { vectorPath } from '../../helpers/paths.js';
import { policyForImaLog } from './verifier-fixture.js';

export const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
export const JSON_API = 'application/vnd.api+json';
/**
 * The push settings of the tests' verifiers (seconds): a short interval and silence timeout, so that
 * silence shows quickly; session and attestation challenges that live a minute, as a stall of seconds
 * between a challenge and its answer failed tests at 3 and 4 s (a test of their expiry sets its own).
 * The session challenge's lifetime is also the grace before a first attestation (`PushLiveness`).
 */
export const PUSH_SETTINGS = { quoteInterval: 1, pushTimeout: 3, pushNonceLifetime: 60, pushChallengeLifetime: 60, pushEvidenceBodyBudget: 128 * 1024 * 1024 } as const;
type PushSettings = { readonly [K in keyof typeof PUSH_SETTINGS]: number };
const SILENT = pino({ level: 'silent' });

export function contentOf(file: string): Uint8Array {
  return new Uint8Array(Buffer.from(`content of ${file}`));
}

/** Files a node may run (path → sha256 hex): the runtime policy allows them; anything else is tampering. */
const ALLOWED_DIGESTS = Object.fromEntries(
  ['/usr/bin/bash', '/usr/bin/ls', '/usr/bin/cat', '/usr/sbin/sshd'].map((file) => [file, createHash('sha256').update(contentOf(file)).digest('hex')]),
);

export interface PushNode {
  readonly uuid: string;
  readonly tpm: SoftwareTpm;
  readonly ak: AkInfo;
  readonly ima: ImaEmulator;
  readonly agent: PushAgent;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

interface Started {
  readonly dir: string;
  readonly opened: OpenedDatabase;
  readonly verifier: RunningVerifier;
  readonly url: string;
  readonly webhook: Server;
}

/**
 * One in-process verifier (on a fresh schema) for a suite of push tests, with booted software-TPM
 * nodes and a revocation webhook that collects what the verifier announces (`usePushVerifier` adds
 * the `before` and `after` hooks of a suite that start and stop it).
 */
export class PushVerifier {
  /** Revocation messages (`msg` of each envelope) the verifier sent to its webhook. */
  readonly announced: Record<string, unknown>[] = [];
  /** What the verifier logged at warn level and above, one parsed pino line each. */
  readonly logged: Record<string, unknown>[] = [];
  private readonly nodes: PushNode[] = [];
  private started: Started | undefined;

  /** `settings` replace some of PUSH_SETTINGS for this verifier. */
  constructor(private readonly settings: Partial<PushSettings> = {}) {}

  get dir(): string {
    return this.running().dir;
  }

  get opened(): OpenedDatabase {
    return this.running().opened;
  }

  get verifier(): RunningVerifier {
    return this.running().verifier;
  }

  /** The verifier's plain HTTP address (127.0.0.1), for a test that needs a real connection it can cut. */
  get url(): string {
    return this.running().url;
  }

  async start(): Promise<void> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-push-'));
    const opened = await openMigratedTestSchema();
    const webhook = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        this.announced.push(JSON.parse((JSON.parse(body) as { msg: string }).msg) as Record<string, unknown>);
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const revocationWebhooks = [webhookUrlOf(webhook)];
    const verifier = await startVerifier({ dataDir: dir, ...PUSH_SETTINGS, ...this.settings, revocationWebhooks }, { database: opened.database, inProcessForTests: true, logger: collectingLogger('warn', this.logged) });
    const url = await verifier.service.app.listen({ port: 0, host: '127.0.0.1' });
    this.started = { dir, opened, verifier, url, webhook };
  }

  async close(): Promise<void> {
    for (const node of this.nodes) await node.agent.close().catch(() => undefined);
    const started = this.started;
    if (started === undefined) return;
    await started.verifier.close();
    await new Promise((resolve) => started.webhook.close(resolve));
    await started.opened.dispose();
    rmSync(started.dir, { recursive: true, force: true });
  }

  webhookUrl(): string {
    return webhookUrlOf(this.running().webhook);
  }

  async call(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object, token?: string, at: RunningVerifier = this.verifier): Promise<Reply> {
    const response = await at.service.app.inject({
      method,
      url,
      headers: { 'content-type': JSON_API, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    return { status: response.statusCode, headers: response.headers, body: response.body === '' ? {} : (JSON.parse(response.body) as Record<string, unknown>) };
  }

  async bootNode(): Promise<PushNode> {
    const { dir, url } = this.running();
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
    const agent = this.agentOf({ uuid, tpm, ak }, url);
    const node = { uuid, tpm, ak, ima, agent };
    this.nodes.push(node);
    return node;
  }

  /** A push agent of `node`'s TPM and logs (in this fixture's folder) attesting to `verifierUrl`, booted a minute ago. */
  agentOf(node: Pick<PushNode, 'uuid' | 'tpm' | 'ak'>, verifierUrl: string, backoff = { initialDelayMs: 100, maxDelayMs: 400 }): PushAgent {
    const { dir } = this.running();
    return new PushAgent({
      uuid: node.uuid,
      verifierUrl,
      tpm: node.tpm,
      ak: node.ak,
      logs: fileAgentLogs(path.join(dir, `${node.uuid}.ima`), path.join(dir, `${node.uuid}.boot`)),
      bootTime: new Date(Date.now() - 60_000),
      backoff,
      log: SILENT,
    });
  }

  async enrol(node: PushNode, overrides: Record<string, unknown> = {}): Promise<Reply> {
    return this.call('POST', `/v2.5/agents/${node.uuid}`, {
      attestation_mode: 'push',
      tpm_policy: JSON.stringify({ mask: '0x400' }),
      runtime_policy: Buffer.from(policyForImaLog(path.join(this.dir, `${node.uuid}.ima`), ALLOWED_DIGESTS)).toString('base64'),
      mb_policy: JSON.stringify(createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true })),
      accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['rsa', 'ecc'],
      accept_tpm_signing_algs: ['rsassa', 'ecdsa'],
      ak_tpm: Buffer.from(node.ak.akPublic).toString('base64'),
      ...overrides,
    });
  }

  /**
   * `DELETE /agents/{id}` at `at`, then the node enrolled again at the suite's process: a new enrolment number, the
   * same TPM, AK and boot. The process that takes the DELETE forgets the boot log it held for the agent; the others keep theirs.
   */
  async reenrol(node: PushNode, at: RunningVerifier = this.verifier): Promise<void> {
    expect((await this.call('DELETE', `/v2.5/agents/${node.uuid}`, undefined, undefined, at)).status).to.equal(200);
    expect((await this.enrol(node)).status).to.equal(200);
  }

  /**
   * A new node, booted and enrolled, with a token: the path of its phase 2 for attestation 1 (never
   * issued, so evidence sent there is refused once its body is read and parsed) and its `Authorization` header.
   */
  async evidencePathWithToken(): Promise<{ path: string; authorization: string }> {
    const node = await this.bootNode();
    expect((await this.enrol(node)).status).to.equal(200);
    return { path: `/v3.0/agents/${node.uuid}/attestations/1`, authorization: `Bearer ${await node.agent.openSession()}` };
  }

  /** Waits for the revocation message announcing `uuid`; resolves to its `type` and `event_id`. */
  async announcement(uuid: string): Promise<Record<string, unknown>> {
    await pollUntil({ timeoutMs: 10_000, intervalMs: 50 }, `the failure of ${uuid} announced`, async () => this.announced.some((message) => message['agent_id'] === uuid));
    // A second announcement (a pass, or the failure again) would arrive as soon as the first did.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const messages = this.announced.filter((message) => message['agent_id'] === uuid);
    expect(messages, 'announced once').to.have.length(1);
    return { type: messages[0]?.['type'], event_id: messages[0]?.['event_id'] };
  }

  async stored(uuid: string) {
    const record = await new VerifierAgentRepository(this.opened.database.knex).find(uuid);
    if (record === undefined) throw new Error(`${uuid} is not stored`);
    return record;
  }

  async history(uuid: string) {
    return (await new VerifierAgentRepository(this.opened.database.knex).history(uuid, 50, undefined)).rows.reverse();
  }

  /** Phase 1 by hand: resolves to the reply (201 with what is wanted, or a refusal). */
  /** A session opened for `node` and the body of its TPM proof (a certify of the AK over the challenge), not yet sent. */
  async provableSession(node: PushNode): Promise<{ id: string; body: object }> {
    const open = { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } } };
    const opened = await this.call('POST', '/v3.0/sessions', open);
    expect(opened.status, JSON.stringify(opened.body)).to.equal(200);
    const challenge = opened.body['data']['attributes']['authentication_requested'][0]['chosen_parameters']['challenge'] as string;
    const certified = await node.tpm.certifyAk('sha256', new Uint8Array(Buffer.from(challenge, 'base64')));
    const data = { message: Buffer.from(certified.attest).toString('base64'), signature: Buffer.from(certified.signature).toString('base64') };
    return { id: opened.body['data']['id'] as string, body: { data: { type: 'session', attributes: { agent_id: node.uuid, authentication_provided: [{ authentication_class: 'pop', authentication_type: 'tpm_pop', data }] } } } };
  }

  async capabilities(node: PushNode, token: string): Promise<Reply> {
    return this.call('POST', `/v3.0/agents/${node.uuid}/attestations`, await node.agent.capabilities(), token);
  }

  /** A new session, phase 1 answered 201, and the evidence the agent would send for it (not sent). */
  async issuedEvidence(node: PushNode): Promise<{ readonly token: string; readonly created: Reply; readonly evidence: object }> {
    const token = await node.agent.openSession();
    const created = await this.capabilities(node, token);
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    return { token, created, evidence: await node.agent.evidence(requested(created)) };
  }

  private running(): Started {
    if (this.started === undefined) throw new Error('the push verifier is not started (call usePushVerifier inside a describe)');
    return this.started;
  }
}

/** What phase 1 asks for (the `evidence_requested` of a 201). */
export function requested(reply: Reply): unknown[] {
  return reply.body['data']['attributes']['evidence_requested'] as unknown[];
}

/** A `PushVerifier` started before the suite's tests and closed after them. */
export function usePushVerifier(settings: Partial<PushSettings> = {}): PushVerifier {
  const push = new PushVerifier(settings);
  before(async function () {
    this.timeout(60_000);
    await push.start();
  });
  after(async function () {
    this.timeout(60_000);
    await push.close();
  });
  return push;
}

function webhookUrlOf(webhook: Server): string {
  return `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/revoked`;
}
