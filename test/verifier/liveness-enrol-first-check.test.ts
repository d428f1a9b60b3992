import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { issueApiToken } from '../../lib/auth/api-token.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';
import { livenessBody } from './helpers/token-verifier.js';

/**
 * `POST /liveness/{id}` runs the node's first check at once. It must be that node's check: a sweep over
 * every enrolled node waits for the slowest one, so one blackholed node anywhere in the fleet made every
 * enrolment take the verifier's whole request timeout (60 s by default, past the keylime driver's 30 s,
 * which then failed the step of a node that was enrolled), and an enrolment during a running sweep got
 * no first check at all (that sweep had listed the nodes before it).
 */
describe('liveness enrolment: the first check is of the enrolled node alone', function () {
  this.timeout(60_000);
  // 10 s: "well under the timeout" (half of it) stays far beyond a CI host's stall of this process (~3 s).
  const timeoutSeconds = 10;
  const held = new Set<Socket>();
  let blackhole: Server;
  let opened: OpenedDatabase;
  let verifier: RunningVerifier;
  let token: string;

  before(async function () {
    // Accepts connections and never answers (not even the TLS handshake): a node that went dark.
    blackhole = createServer((socket) => {
      held.add(socket);
      socket.on('close', () => held.delete(socket));
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    opened = await openTestSchema();
    const dataDir = mkdtempSync(path.join(tmpdir(), 'liveness-first-check-'));
    verifier = await startVerifier({ dataDir, port: 0, quoteInterval: 3600, requestTimeout: timeoutSeconds }, { database: opened.database });
    token = await issueApiToken({ subject: 'operator', role: 'operator', tenant: 'default', ttlSeconds: 600 }, loadOrCreateTokenKey(dataDir).privateKey);
  });

  after(async function () {
    await verifier?.close();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => blackhole?.close(resolve));
    await opened?.dispose();
  });

  const enrol = async (agentId: string, body: Record<string, unknown>): Promise<number> => {
    const started = Date.now();
    const reply = await timedHttpsCall(verifier.url, verifier.caCert, 'POST', `/v2.3/liveness/${agentId}`, { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify(body));
    expect(reply.status, reply.body).to.equal(200);
    return Date.now() - started;
  };

  const misses = async (agentId: string): Promise<number> => {
    const row = (await opened.database.knex('verifier_liveness').where({ agent_id: agentId }).first()) as { misses: number };
    return row.misses;
  };

  it('does not wait for another node that does not answer, and checks the new node even while a sweep runs', async function () {
    const dark = { ...livenessBody(verifier.caCert), port: (blackhole.address() as { port: number }).port };
    // The dark node's own first check takes the whole timeout: that is its enrolment's to wait for. It runs
    // beside the rest of the test once the node is enrolled (its row written before its first check).
    const darkEnrolment = enrol('dark-node', dark);
    await pollUntil({ timeoutMs: 20_000, intervalMs: 20 }, 'the dark node enrolled', async () => (await opened.database.knex('verifier_liveness').where({ agent_id: 'dark-node' }).first()) !== undefined);
    // Port 9 refuses at once: this node's first check is a miss, known in milliseconds.
    const elapsed = await enrol('quick-node', livenessBody(verifier.caCert));
    expect(elapsed, 'the enrolment waited for the dark node').to.be.below(timeoutSeconds * 1000 / 2);
    expect(await misses('quick-node')).to.equal(1);

    // A sweep under way (the dark node holds it): an enrolment meanwhile still gets its own first check.
    const sweep = verifier.liveness.checkNow();
    await enrol('late-node', livenessBody(verifier.caCert));
    expect(await misses('late-node'), 'the late node was checked').to.equal(1);
    await sweep;
    expect(await darkEnrolment).to.be.at.least(timeoutSeconds * 1000 - 100);
  });
});
