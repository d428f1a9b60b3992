import { expect } from 'chai';
import { startPushAgent, type RunningPushAgent } from '../../lib/agent/push/push-agent-server.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import { collectingLogger } from '../helpers/collecting-logger.js';
import { createDeployment, eventually, policyForImaLog, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * Issue 13: the push agent re-authenticates on 401 and keeps attesting. The verifier's session tokens
 * last 1.5 s and the agent attests every 3 s, so each round after the first finds its token expired at
 * the verifier (401 token_expired): the agent must drop it, prove its AK in a new session and send
 * the round again, without a failed verdict. Real agent start-up, HTTPS verifier, software TPM.
 */
describe('push agent: re-authentication on 401 (issue 13)', function () {
  this.timeout(90_000);
  let deployment: Deployment;
  let tenant: TenantClient;
  let agent: RunningPushAgent;
  const logged: Record<string, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any

  before(async function () {
    deployment = await createDeployment();
    // Tokens last 3 s and the agent attests every 5 s: each round after the first finds its token expired.
    // A round has 3 s to use its token even on a stalling CI host (with 1.5 s one was seen expiring before
    // its evidence, round after round, until the per-agent limit of 15 sessions a minute answered 429);
    // one session every 5 s stays under that limit.
    const verifier = await deployment.startVerifier({ quoteInterval: 5, pushSessionLifetime: 3, pushTimeout: 30 });
    agent = await startPushAgent(deployment.pushAgentInput('push-node', verifier.url, { backoff: { initialDelayMs: 100, maxDelayMs: 400 } }), {
      logger: collectingLogger('warn', logged),
    });
    tenant = deployment.tenant();
    await tenant.addPushAgent(agent.uuid, { runtimePolicy: policyForImaLog(agent.imaLogPath) });
  });

  after(async function () {
    await agent?.close();
    await deployment?.dispose();
  });

  it('answers each 401 with a new session and keeps passing', async function () {
    const passes = async (): Promise<number> => (await tenant.history(agent.uuid, 100)).filter((round) => round.outcome === 'pass').length;
    await eventually('three passed rounds', async () => (await passes()) >= 3, 70_000, 200);
    // A 401 is answered at once with a new session (logged as such); anything else backs off.
    const failureMessages = ['push attestation attempt failed', 'push attestation refused (401); opening a new session'];
    const failures = logged.filter((line) => failureMessages.includes(String(line['msg']))).map((line) => `${String(line['err']?.['status'])} ${String(line['err']?.['message'])}`);
    // Before enrolment the session proof of an unknown agent is refused (200 "fail"); after it, only expired tokens.
    const afterEnrolment = failures.slice(failures.findIndex((failure) => failure.startsWith('401 ')));
    expect(afterEnrolment.length, JSON.stringify(failures)).to.be.at.least(2);
    expect(afterEnrolment.every((failure) => /^401 (capabilities|evidence): the verifier answered 401$/.test(failure)), JSON.stringify(failures)).to.equal(true);
    expect((await tenant.history(agent.uuid, 100)).map((round) => round.outcome)).to.not.include('fail');
    expect(await tenant.getStatus(agent.uuid)).to.include({ operational_state: OperationalState.GET_QUOTE, attestation_status: 'PASS' });
  });
});
