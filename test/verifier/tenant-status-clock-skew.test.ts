import { expect } from 'chai';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { loadOrCreateClientTls, loadOrCreateServiceTls } from '../../lib/pki/service-tls.js';
import type { JudgedAgentStatus, TenantClient } from '../../lib/tenant/tenant-client.js';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { SkewedClockProxy } from '../helpers/skewed-clock-proxy.js';
import { createDeployment, eventually, policyForAgent, type Deployment } from './helpers/verifier-fixture.js';

/**
 * `tenant status` (and `judgeStatus`, the keylime driver's verdict) against a real verifier whose clock
 * is off this host's, as in fleets without NTP: a proxy moves every time the verifier dates (its
 * `Date` header, `last_successful_attestation`) by the skew. A healthy agent must pass under a skew of
 * seconds to minutes; past 15 min nothing the reply dates is trusted.
 */
describe('tenant status: a verifier whose clock is off this host\'s', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let agent: RunningAgent;
  let proxy: SkewedClockProxy;
  let proxied: TenantClient;
  let connection: string[];

  before(async function () {
    deployment = await createDeployment();
    // A bound no stall of this host reaches between two rounds, and retries that outlast a stall.
    const verifier = await deployment.startVerifier({ staleAfter: 30, quoteInterval: 1, retryInterval: 1, maxRetries: 10 });
    agent = await deployment.startAgent('skew-agent');
    const tenant = deployment.tenant();
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) });
    await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 30_000 });
    const serverTls = await loadOrCreateServiceTls({ dataDir: deployment.servicesDir, serviceName: 'skew-proxy' });
    const clientTls = await loadOrCreateClientTls({ dataDir: deployment.servicesDir, serviceName: 'tenant' });
    proxy = new SkewedClockProxy(new URL(verifier.url), serverTls, clientTls, 0);
    const url = await proxy.start();
    proxied = deployment.tenant(url);
    connection = ['--uuid', agent.uuid, '--verifier', url, '--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir];
  });

  after(async function () {
    await proxy?.close();
    await deployment?.dispose();
  });

  for (const skew of [5, 60, 600, -60, -600]) {
    it(`a healthy agent passes (exit 0) with the verifier's clock ${Math.abs(skew)} s ${skew > 0 ? 'ahead' : 'behind'}`, async function () {
      proxy.skewSeconds = skew;
      // Read until a pass: a loaded host may catch the agent between a missed round and its retry
      // (state 4, pending); without the verifier's clock the verdict stayed pending to the end.
      let last: JudgedAgentStatus | undefined;
      await eventually("judgeStatus's pass", async () => {
        last = await proxied.judgeStatus(agent.uuid);
        return last.verdict.kind === 'pass';
      }, 30_000, 200);
      // The reply was dated on the skewed clock (not vacuous): its last success is about now + skew.
      expect(last?.status.last_successful_attestation).to.be.closeTo(Date.now() / 1000 + skew, 30);
      let run: CliRun | undefined;
      await eventually('tenant status exit 0', async () => {
        run = await runCli(['tenant', 'status', ...connection]);
        return run.code === 0;
      }, 30_000, 200);
      expect(run?.stderr).to.equal('');
    });
  }

  it('a verifier clock 20 min ahead is not trusted (exit 3), and the why names the skew', async function () {
    proxy.skewSeconds = 1200;
    // Read until the why names the skew (a loaded host may catch the agent retrying, pending for that),
    // never passing meanwhile.
    const skewWhy = /^the verifier's clock \(its reply's Date\) is 1(199|200) s ahead of this host's, more than the 900 s tolerated/;
    await eventually('a pending verdict naming the skew', async () => {
      const run = await runCli(['tenant', 'status', ...connection]);
      expect(run.code, run.stdout).to.equal(3);
      return skewWhy.test(String(JSON.parse(run.stdout).why));
    }, 30_000, 200);
  });
});
