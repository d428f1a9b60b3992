import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { RevocationEnvelope, RevocationMessage } from '../../lib/revocation/revocation-message.js';
import type { AgentFailureNotice } from '../../lib/revocation/revocation-notice.js';
import { RevocationNotifier } from '../../lib/revocation/revocation-notifier.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const REVOCATION_KEY_PEM = newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** One try of one delivery ends after this long, the answer's body included. */
const DEADLINE_MS = 6000;

function notice(agentId: string): AgentFailureNotice {
  return { agentId, ip: null, port: null, tpmPolicy: '{}', metaData: '{}', revocationKey: REVOCATION_KEY_PEM, eventId: 'ima.validation.ima-ng.not_in_allowlist', severityLabel: 'emergency', context: {} };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/revoked`;
}

/**
 * A webhook that answers 200 at once, then drips a chunked body a byte at a time, never ending it:
 * undici's header and body timeouts never fire (a byte comes well within each), only an overall
 * deadline ends the exchange. Until its body ends, the answer is not taken as a delivery. `endedAt`: when
 * each exchange was seen closed (`performance.now()`).
 */
function drippingWebhook(): { server: Server; requests: () => number; endedAt: number[] } {
  let requests = 0;
  const endedAt: number[] = [];
  const server = createServer((request, response) => {
    requests += 1;
    request.resume().on('end', () => {
      response.writeHead(200);
      const drip = setInterval(() => response.write('x'), 200);
      response.on('close', () => {
        clearInterval(drip);
        endedAt.push(performance.now());
      });
    });
  });
  return { server, requests: () => requests, endedAt };
}

/** A webhook answering 200, recording the agent id of each notice and when it came (`performance.now()`). */
function takingWebhook(): { server: Server; agents: string[]; takenAt: Map<string, number> } {
  const agents: string[] = [];
  const takenAt = new Map<string, number>();
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const agent = (JSON.parse((JSON.parse(body) as RevocationEnvelope).msg) as RevocationMessage).agent_id;
      agents.push(agent);
      takenAt.set(agent, performance.now());
      response.writeHead(200).end();
    });
  });
  return { server, agents, takenAt };
}

/** The revocation outbox with a receiver that never finishes its answer (real PostgreSQL). */
describe('revocation outbox: a receiver that drips its answer holds only its own notices', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  const slow = drippingWebhook();
  const good = takingWebhook();
  let notifier: RevocationNotifier;
  let slowUrl: string;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= notifier.close());

  before(async function () {
    opened = await openMigratedTestSchema();
    slowUrl = await listen(slow.server);
    notifier = new RevocationNotifier({
      webhooks: [slowUrl, await listen(good.server)],
      timeoutMs: DEADLINE_MS,
      outbox: { knex: opened.database.knex, backoff: { initialDelayMs: 50, maxDelayMs: 200 }, pollMs: 100, leaseSeconds: 15 },
    });
    notifier.start();
  });

  after(async function () {
    if (notifier !== undefined) await close();
    slow.server.closeAllConnections();
    await new Promise((resolve) => slow.server.close(resolve));
    await new Promise((resolve) => good.server.close(resolve));
    await opened?.dispose();
  });

  it("a later notice reaches the good receiver at once, while the dripping receiver's delivery is still running", async function () {
    notifier.agentFailed(notice('agent-one'));
    await eventually('the first notice at the good receiver, the slow one dripping', async () => good.agents.includes('agent-one') && slow.requests() >= 1);
    notifier.agentFailed(notice('agent-two'));
    await eventually('the second notice at the good receiver', async () => good.agents.includes('agent-two'));
    // The order of the two events, not a time bound: a host that stalls for seconds delays both alike.
    const takenAt = good.takenAt.get('agent-two') ?? Infinity;
    expect(slow.endedAt.filter((at) => at < takenAt), 'not held up until the dripping delivery ends').to.deep.equal([]);
  });

  it("the dripping receiver's delivery ends at its deadline: the notice is kept and tried again", async function () {
    const knex = opened.database.knex;
    const mostAttempts = async (): Promise<number> => Number(((await knex('verifier_revocation_outbox').max({ n: 'attempts' }).first()) as { n: unknown }).n ?? 0);
    await eventually('a try of the dripping receiver recorded as failed', async () => (await mostAttempts()) >= 1, DEADLINE_MS * 3);
    const rows = (await knex('verifier_revocation_outbox').select('receiver', 'agent_id', 'last_error')) as { receiver: string; agent_id: string; last_error: string | null }[];
    expect([...new Set(rows.map((row) => row.receiver))]).to.deep.equal([`webhook ${slowUrl}`]);
    expect(rows.map((row) => row.agent_id).sort()).to.deep.equal(['agent-one', 'agent-two']);
    expect(rows.some((row) => /abort|timeout/i.test(row.last_error ?? ''))).to.equal(true);
    await eventually('the kept notice tried again', async () => slow.requests() >= 3, DEADLINE_MS * 3);
  });

  it('close ends within one delivery deadline while the receiver still drips; its notices stay for the next process', async function () {
    const started = Date.now();
    await close();
    // Room for a CI host that stalls this process for ~3 s; the receiver drips for ever.
    expect(Date.now() - started).to.be.below(DEADLINE_MS + 4000);
    expect(await notifier.undelivered()).to.equal(2);
  });
});
