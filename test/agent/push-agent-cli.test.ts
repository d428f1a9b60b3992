import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { showRegistrarAgent } from '../../lib/tenant/registrar-agents.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import type { RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { runCli, spawnCli, type CliProcess } from '../helpers/cli-runner.js';
import { createDeployment, eventually, policyForImaLog, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/** Lines of a stack trace (`    at f (file:1:2)`), or an uncaught error's report. */
const STACK_TRACE = /^\s+at .+\(.*:\d+:\d+\)$|^\s+at .+:\d+:\d+$|Uncaught|UnhandledPromiseRejection/m;

/**
 * Issue 13 from the command line: `ironlime agent --push` (a child process: emulated node on the
 * software TPM) registers and attests on its own once `ironlime tenant add --push` enrolled it, and
 * SIGTERM stops it cleanly. Registrar and verifier in this process (createDeployment).
 */
describe('ironlime agent --push and ironlime tenant add --push (issue 13)', function () {
  this.timeout(90_000);
  let deployment: Deployment;
  let verifier: RunningVerifier;
  let tenant: TenantClient;
  let child: CliProcess | undefined;
  let uuid: string;
  let connection: string[];

  before(async function () {
    deployment = await createDeployment();
    verifier = await deployment.startVerifier({ quoteInterval: 1, pushTimeout: 30 });
    tenant = deployment.tenant();
    connection = ['--verifier', verifier.url, '--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir, '--ek-check', 'off'];
  });

  after(async function () {
    if (child !== undefined && child.child.exitCode === null && child.child.signalCode === null) {
      child.child.kill('SIGKILL');
      await child.exited();
    }
    await deployment?.dispose();
  });

  it('ironlime agent --push registers without opening a port and says where it attests', async function () {
    child = spawnCli([
      'agent', '--push',
      '--data-dir', path.join(deployment.root, 'push-node'),
      '--tpm', 'software', '--emulate',
      '--registrar', deployment.registrar.httpUrl,
      '--verifier', verifier.url,
      '--verifier-ca', deployment.caFile,
    ]);
    await child.waitForOutput('emulated IMA log: ', 60_000);
    const announced = /^push agent ([0-9a-f-]{36}) registered; attesting to (\S+)$/m.exec(child.stdout());
    expect(announced?.[2]).to.equal(verifier.url);
    uuid = announced?.[1] as string;
    expect((await showRegistrarAgent(tenant.registrar, uuid)).mtlsCert).to.equal(null);
  });

  it('tenant add --push refuses options a push enrolment does not take (exit 2), before enrolling', async function () {
    const policy = path.join(deployment.root, 'unused-policy.json');
    writeFileSync(policy, '{}');
    for (const extra of [['--deliver-keys'], ['--agent-url', 'https://127.0.0.1:9002'], ['--verify']]) {
      const refused = await runCli(['tenant', 'add', '--push', '--uuid', uuid, '--runtime-policy', policy, ...extra, ...connection]);
      expect(refused.code, extra[0]).to.equal(2);
      expect(refused.stderr).to.equal('ironlime: --push: takes no --payload, --deliver-keys, --verify or --agent-url, and works with add only\n');
    }
    expect(await tenant.listAgents()).to.deep.equal([]);
  });

  it('tenant add --push enrols it (API 3.0); its own rounds then pass', async function () {
    const imaLog = /^emulated IMA log: (.+)$/m.exec((child as CliProcess).stdout())?.[1] as string;
    const policy = path.join(deployment.root, 'push-policy.json');
    writeFileSync(policy, policyForImaLog(imaLog));
    const added = await runCli(['tenant', 'add', '--push', '--uuid', uuid, '--runtime-policy', policy, ...connection]);
    expect(added.code, added.stderr).to.equal(0);
    expect(JSON.parse(added.stdout)).to.include({ agent_id: uuid, enrolled: true, api_version: '3.0' });
    await eventually('two passed push rounds', async () => (await tenant.history(uuid, 50)).filter((round) => round.outcome === 'pass').length >= 2, 45_000, 200);
    expect(await tenant.getStatus(uuid)).to.include({ operational_state: OperationalState.GET_QUOTE, attestation_status: 'PASS' });
  });

  it('SIGTERM stops it cleanly: exit 0, no stack trace, no round after it', async function () {
    const running = child as CliProcess;
    running.child.kill('SIGTERM');
    expect(await running.exited()).to.equal(0);
    expect(running.stderr()).to.not.match(STACK_TRACE);
    const rounds = (await tenant.history(uuid, 50)).length;
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await tenant.history(uuid, 50)).length, 'no round after the exit').to.equal(rounds);
  });
});
