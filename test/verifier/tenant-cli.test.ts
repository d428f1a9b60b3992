import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { runCli } from '../helpers/cli-runner.js';
import { createDeployment, policyForAgent, refstateForAgent, type Deployment } from './helpers/verifier-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

describe('ironlime tenant: verifier-facing commands (in-process)', function () {
  this.timeout(60_000);
  let deployment: Deployment;
  let agent: RunningAgent;
  let connection: string[];
  let files: { policy: string; refstate: string; allowlist: string; excludes: string };

  before(async function () {
    deployment = await createDeployment();
    const verifier = await deployment.startVerifier();
    agent = await deployment.startAgent('cli-agent');
    connection = ['--verifier', verifier.url, '--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir];
    files = {
      policy: path.join(deployment.root, 'policy.json'),
      refstate: path.join(deployment.root, 'refstate.json'),
      allowlist: path.join(deployment.root, 'allowlist.txt'),
      excludes: path.join(deployment.root, 'excludes.txt'),
    };
    writeFileSync(files.policy, policyForAgent(agent));
    writeFileSync(files.refstate, refstateForAgent(agent));
    writeFileSync(files.allowlist, `${'c'.repeat(64)}  /usr/sbin/init\n`);
    writeFileSync(files.excludes, '^/tmp/.*\n');
  });

  after(async function () {
    await deployment?.dispose();
  });

  function revocationKeyFile(): string {
    const file = path.join(deployment.root, 'revocation-key.pem');
    writeFileSync(file, newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    return file;
  }

  it('allowlist and mbpolicy stores: add, list, show, update, delete', async function () {
    expect((await runCli(['tenant', 'allowlist', 'add', '--name', 'base', '--file', files.allowlist, '--excludelist', files.excludes, ...connection])).code).to.equal(0);
    const listed = await runCli(['tenant', 'allowlist', 'list', ...connection]);
    expect(JSON.parse(listed.stdout)).to.deep.equal({ 'runtimepolicy names': ['base'] });
    const shown = JSON.parse((await runCli(['tenant', 'allowlist', 'show', '--name', 'base', ...connection])).stdout) as { runtime_policy: string };
    const policy = JSON.parse(shown.runtime_policy) as { digests: object; excludes: string[] };
    expect(policy.digests).to.deep.equal({ '/usr/sbin/init': ['c'.repeat(64)] });
    expect(policy.excludes).to.deep.equal(['^/tmp/.*']);
    expect((await runCli(['tenant', 'allowlist', 'add', '--name', 'base', '--file', files.policy, '--update', ...connection])).stdout).to.equal('updated runtime policy base\n');
    const duplicate = await runCli(['tenant', 'allowlist', 'add', '--name', 'base', '--file', files.policy, ...connection]);
    expect(duplicate.code).to.equal(2);
    expect(duplicate.stderr).to.match(/409 Runtime policy with name base already exists\n$/);
    expect((await runCli(['tenant', 'allowlist', 'delete', '--name', 'base', ...connection])).code).to.equal(0);

    expect((await runCli(['tenant', 'mbpolicy', 'add', '--name', 'boot', '--file', files.refstate, ...connection])).code).to.equal(0);
    expect(JSON.parse((await runCli(['tenant', 'mbpolicy', 'list', ...connection])).stdout)).to.deep.equal({ 'mbpolicy names': ['boot'] });
    expect(JSON.parse((await runCli(['tenant', 'mbpolicy', 'show', '--name', 'boot', ...connection])).stdout)).to.have.property('mb_policy');
  });

  it('add refuses a --revocation-key that is not an RSA private key (exit 2), before enrolling anything', async function () {
    const notRsa = path.join(deployment.root, 'ec-key.pem');
    writeFileSync(notRsa, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const refused = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--runtime-policy', files.policy, '--revocation-key', notRsa, ...connection]);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.equal(`ironlime: --revocation-key: ${notRsa} is not a PEM RSA private key\n`);
  });

  it('add refuses a --revocation-key file its group or others may read (exit 2)', async function () {
    const shared = path.join(deployment.root, 'shared-revocation-key.pem');
    writeFileSync(shared, readFileSync(revocationKeyFile()));
    chmodSync(shared, 0o644);
    const refused = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--runtime-policy', files.policy, '--revocation-key', shared, ...connection]);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.equal(`ironlime: --revocation-key: ${shared} holds a private key but its permissions 0644 let group or others use it; run chmod 600 on it (and replace the key if others may have read it)\n`);
  });

  it('add refuses a --revocation-key file that does not exist (exit 2)', async function () {
    const missing = path.join(deployment.root, 'missing-revocation-key.pem');
    const refused = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--runtime-policy', files.policy, '--revocation-key', missing, ...connection]);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.equal(`ironlime: --revocation-key: cannot read ${missing}: no such file\n`);
  });

  it('add refuses an agent whose EK certificate is not trusted (exit 1), then enrols it with the CA given', async function () {
    const refused = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--runtime-policy', files.policy, ...connection]);
    expect(refused.code).to.equal(1);
    const verdict = JSON.parse(refused.stdout) as { enrolled: boolean; reasons: string[] };
    expect(verdict.enrolled).to.equal(false);
    expect(verdict.reasons[0]).to.match(/^identity check 'ek-certificate' failed: /);

    const added = await runCli([
      'tenant', 'add', '--uuid', agent.uuid,
      '--runtime-policy', files.policy,
      '--mb-policy-name', 'boot',
      '--tpm-policy', '{"15": ["' + '0'.repeat(64) + '"]}',
      '--deliver-keys', '--verify',
      '--revocation-key', revocationKeyFile(),
      '--ek-ca-dir', agent.ekCaDir as string,
      ...connection,
    ]);
    expect(added.code, added.stdout).to.equal(0);
    expect(JSON.parse(added.stdout)).to.include({ agent_id: agent.uuid, enrolled: true, api_version: '2.6', bootstrap_key_verified: true });
    expect(JSON.parse(added.stdout).warnings, 'boot chain and IMA covered').to.deep.equal([]);
  });

  it('status (exit 0 while passing), list, history, stop (status exit 1: FAIL), reactivate, delete', async function () {
    const tenant = deployment.tenant();
    await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE]);
    const status = await runCli(['tenant', 'status', '--uuid', agent.uuid, ...connection]);
    expect(status.code).to.equal(0);
    expect(JSON.parse(status.stdout)).to.include({ operational_state_label: 'Get Quote', has_mb_refstate: 1, has_runtime_policy: 1 });
    expect(JSON.parse((await runCli(['tenant', 'list', ...connection])).stdout)).to.deep.equal({ uuids: [agent.uuid] });
    const history = JSON.parse((await runCli(['tenant', 'history', '--uuid', agent.uuid, '--limit', '1', ...connection])).stdout) as { history: { outcome: string }[] };
    expect(history.history.map((h) => h.outcome)).to.deep.equal(['pass']);
    expect((await runCli(['tenant', 'stop', '--uuid', agent.uuid, ...connection])).stdout).to.equal(`stopped agent ${agent.uuid}\n`);
    expect((await runCli(['tenant', 'status', '--uuid', agent.uuid, ...connection])).code).to.equal(1);
    expect((await runCli(['tenant', 'reactivate', '--uuid', agent.uuid, ...connection])).code).to.equal(0);
    await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE]);
    const deleted = await runCli(['tenant', 'delete', '--uuid', agent.uuid, '--timeout', '20', ...connection]);
    expect(deleted.stdout).to.equal(`deleted agent ${agent.uuid} from the verifier\n`);
    const gone = await runCli(['tenant', 'status', '--uuid', agent.uuid, ...connection]);
    expect(gone.code).to.equal(2);
    expect(gone.stderr).to.contain(`404 Agent ${agent.uuid} not found`);
    expect((await runCli(['tenant', 'mbpolicy', 'delete', '--name', 'boot', ...connection])).code).to.equal(0);
  });

  it('add without any policy enrols (as Keylime does) but says, and status says again, that a PASS attests only that the TPM answers', async function () {
    const nothing = 'the verifier quotes no PCR for this agent (no --runtime-policy, --mb-policy or --tpm-policy PCR): a PASS says only that its TPM answers, nothing of its boot or software';
    const added = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--ek-ca-dir', agent.ekCaDir as string, ...connection]);
    expect(added.code, added.stderr).to.equal(0);
    expect(JSON.parse(added.stdout)).to.deep.include({ enrolled: true, warnings: [nothing] });
    await deployment.tenant().waitForState(agent.uuid, [OperationalState.GET_QUOTE]);
    const status = await runCli(['tenant', 'status', '--uuid', agent.uuid, ...connection]);
    expect(JSON.parse(status.stdout)).to.deep.include({ tpm_policy: '{"mask":"0x0"}', warnings: [nothing] });
    expect((await runCli(['tenant', 'delete', '--uuid', agent.uuid, '--timeout', '20', ...connection])).code).to.equal(0);
  });
});
