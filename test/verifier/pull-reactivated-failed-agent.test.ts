import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENT = 'reactivated-failed-agent';

/**
 * An agent FAILED for tampering, reactivated by the operator, that then does not answer: its retries
 * (GET_QUOTE_RETRY, a PASS state) must not be reported trusted on the pass from before the FAIL, which
 * the reactivation clears. 0.3 s interval, 0.2 s retries, 2 of them: FAILED again within a second.
 */
describe('a reactivated FAILED agent that goes silent (real PostgreSQL)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-reactivated-'));
  let schema: Awaited<ReturnType<typeof createTestSchema>> | undefined;
  let agent: FakePolledAgent | undefined;
  let verifier: RunningVerifier | undefined;

  after(async function () {
    await verifier?.close().catch(() => undefined);
    agent?.server.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is never PASS or trusted from the reactivation until it is FAILED again, and its last success is cleared', async function () {
    schema = await createTestSchema();
    agent = await startFakePolledAgent();
    verifier = await startVerifier(
      { dataDir: dir, databaseUrl: schema.url, quoteInterval: 0.3, retryInterval: 0.2, maxRetries: 2, leaseSeconds: 30 },
      { inProcessForTests: true },
    );
    const v = verifier;
    await enrolFakeAgent(v, AGENT, agent);
    const status = async (): Promise<Record<string, unknown>> => {
      const reply = await v.service.app.inject({ method: 'GET', url: `/v2.6/agents/${AGENT}` });
      return (JSON.parse(reply.body) as { results: Record<string, unknown> }).results;
    };
    await eventually('passes', async () => (await status())['trusted'] === true);

    agent.fake.measure('/usr/bin/evil', 'evil'); // tampered: outside its runtime policy
    await eventually('FAIL stored', async () => (await status())['attestation_status'] === 'FAIL');
    expect((await status())['trusted']).to.equal(false);

    // The agent goes silent; the operator reactivates it.
    agent.server.close();
    agent.server.closeAllConnections();
    const reply = await v.service.app.inject({ method: 'PUT', url: `/v2.6/agents/${AGENT}/reactivate` });
    expect(reply.statusCode, reply.body).to.equal(200);

    const seen: Record<string, unknown>[] = [];
    await eventually('FAILED again after its retries', async () => {
      const now = await status();
      seen.push(now);
      return now['operational_state'] === OperationalState.FAILED;
    }, 20_000, 10);
    expect(seen.map((s) => s['operational_state']), 'the retries were seen').to.include(OperationalState.GET_QUOTE_RETRY);
    for (const s of seen) {
      expect({ state: s['operational_state'], status: s['attestation_status'], trusted: s['trusted'] }).to.include({ trusted: false }).and.not.include({ status: 'PASS' });
    }
    expect((await status())['last_successful_attestation'], 'cleared by the reactivation').to.equal(0);
  });
});
