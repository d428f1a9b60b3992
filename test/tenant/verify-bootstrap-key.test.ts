import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { BootstrapKeys } from '../../lib/agent/bootstrap-keys.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { AgentKeyError } from '../../lib/agent/agent-errors.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { EnrolledWithoutBootstrapKey, type TenantClient } from '../../lib/tenant/tenant-client.js';
import { runCli } from '../helpers/cli-runner.js';
import { createDeployment, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * Keylime's `--verify` (`keys/verify`): an agent enrolled before answers with its earlier K until this
 * enrolment's V reaches it, so a mismatch is not final; one that never proves K is stopped at the
 * verifier, as Keylime's `do_verify` calls `do_cvstop`.
 */
describe('tenant --verify: the bootstrap key check', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let agent: RunningAgent;
  let tenant: TenantClient;
  let connection: string[];
  let payloadFile: string;

  before(async function () {
    deployment = await createDeployment();
    // Rounds 3 s apart: the new V reaches the agent well after the tenant first asks it.
    const verifier = await deployment.startVerifier({ quoteInterval: 3 });
    agent = await deployment.startAgent('verify-agent');
    tenant = deployment.tenant(verifier.url);
    payloadFile = path.join(deployment.root, 'payload.bin');
    writeFileSync(payloadFile, 'a payload the running agent must not be sent');
    connection = ['--verifier', verifier.url, '--registrar', deployment.registrar.tlsUrl, '--data-dir', deployment.servicesDir, '--ek-ca-dir', agent.ekCaDir as string];
  });

  beforeEach(async function () {
    if ((await tenant.listAgents()).includes(agent.uuid)) await tenant.deleteAgent(agent.uuid);
  });

  after(async function () {
    await deployment?.dispose();
  });

  it('waits for the new K of a re-enrolled agent that still holds its earlier one', async function () {
    const first = await tenant.addAgent(agent.uuid, { deliverKeys: true });
    expect(await tenant.verifyBootstrapKey(agent.uuid, first.bootstrapKey as Buffer)).to.equal(true);
    await tenant.deleteAgent(agent.uuid);
    // The verifier is sent the enrolment before the agent gets U, so its V may reach the agent before
    // `addAgent` returns: V is held until the tenant has asked once, and the agent answers with its earlier K.
    const addV = Object.getOwnPropertyDescriptor(BootstrapKeys.prototype, 'addV') as PropertyDescriptor;
    const hmacOf = Object.getOwnPropertyDescriptor(BootstrapKeys.prototype, 'hmacOf') as PropertyDescriptor;
    const held: [BootstrapKeys, string][] = [];
    let asked = 0;
    BootstrapKeys.prototype.addV = function (this: BootstrapKeys, encryptedKeyB64: string): void {
      if (asked === 0) held.push([this, encryptedKeyB64]);
      else (addV.value as BootstrapKeys['addV']).call(this, encryptedKeyB64);
    };
    BootstrapKeys.prototype.hmacOf = function (this: BootstrapKeys, challenge: string): string {
      const answer = (hmacOf.value as BootstrapKeys['hmacOf']).call(this, challenge);
      asked += 1;
      for (const [keys, v] of held.splice(0)) (addV.value as BootstrapKeys['addV']).call(keys, v);
      return answer;
    };
    try {
      const second = await tenant.addAgent(agent.uuid, { deliverKeys: true });
      expect(agent.bootstrapSecret()?.k.equals(first.bootstrapKey as Buffer)).to.equal(true);
      expect(await tenant.verifyBootstrapKey(agent.uuid, second.bootstrapKey as Buffer)).to.equal(true);
      expect(agent.bootstrapSecret()?.k.equals(second.bootstrapKey as Buffer)).to.equal(true);
      expect(asked).to.be.at.least(2);
    } finally {
      Object.defineProperty(BootstrapKeys.prototype, 'addV', addV);
      Object.defineProperty(BootstrapKeys.prototype, 'hmacOf', hmacOf);
    }
  });

  it('resolves false once the time is up with the agent still answering with another key', async function () {
    await tenant.addAgent(agent.uuid, { deliverKeys: true });
    const started = Date.now();
    expect(await tenant.verifyBootstrapKey(agent.uuid, Buffer.alloc(32, 7), { timeoutMs: 1000 })).to.equal(false);
    expect(Date.now() - started).to.be.at.least(1000);
  });

  it('asks again after an answer the agent could not give (500), instead of ending the check', async function () {
    const first = await tenant.addAgent(agent.uuid, { deliverKeys: true });
    const hmacOf = Object.getOwnPropertyDescriptor(BootstrapKeys.prototype, 'hmacOf') as PropertyDescriptor;
    let failures = 0;
    // An honest agent that fails one request under load (its TPM or disk busy), then answers.
    BootstrapKeys.prototype.hmacOf = function (this: BootstrapKeys, challenge: string): string {
      if (failures === 0) {
        failures += 1;
        throw new Error('busy');
      }
      return (hmacOf.value as (challenge: string) => string).call(this, challenge);
    };
    try {
      expect(await tenant.verifyBootstrapKey(agent.uuid, first.bootstrapKey as Buffer, { timeoutMs: 20_000 })).to.equal(true);
    } finally {
      Object.defineProperty(BootstrapKeys.prototype, 'hmacOf', hmacOf);
    }
    expect(failures).to.equal(1);
  });

  it('a second `add --deliver-keys` the verifier refuses (409) sends the running agent no U: its key stays the enrolled one', async function () {
    const first = await tenant.addAgent(agent.uuid, { deliverKeys: true });
    expect(await tenant.verifyBootstrapKey(agent.uuid, first.bootstrapKey as Buffer)).to.equal(true);
    const addU = Object.getOwnPropertyDescriptor(BootstrapKeys.prototype, 'addU') as PropertyDescriptor;
    let usReceived = 0;
    BootstrapKeys.prototype.addU = function (this: BootstrapKeys, ...args: Parameters<BootstrapKeys['addU']>): void {
      usReceived += 1;
      (addU.value as BootstrapKeys['addU']).apply(this, args);
    };
    let run: Awaited<ReturnType<typeof runCli>>;
    try {
      run = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--deliver-keys', '--payload', payloadFile, ...connection]);
    } finally {
      Object.defineProperty(BootstrapKeys.prototype, 'addU', addU);
    }
    expect(run.code, run.stderr).to.equal(2);
    expect(run.stderr).to.include('409');
    expect(usReceived).to.equal(0);
    expect(agent.bootstrapSecret()?.k.equals(first.bootstrapKey as Buffer)).to.equal(true);
    expect(await tenant.verifyBootstrapKey(agent.uuid, first.bootstrapKey as Buffer)).to.equal(true);
  });

  it('an `update` whose U the agent refuses says the agent is enrolled without that key, not enrolled nowhere', async function () {
    await tenant.addAgent(agent.uuid, {});
    const addU = Object.getOwnPropertyDescriptor(BootstrapKeys.prototype, 'addU') as PropertyDescriptor;
    BootstrapKeys.prototype.addU = () => {
      throw new AgentKeyError('encrypted_key: cannot be decrypted with the agent key');
    };
    let error: unknown;
    try {
      error = await tenant.updateAgent(agent.uuid, { deliverKeys: true }).then(() => undefined, (caught: unknown) => caught);
    } finally {
      Object.defineProperty(BootstrapKeys.prototype, 'addU', addU);
    }
    expect(error).to.be.instanceOf(EnrolledWithoutBootstrapKey);
    expect((error as Error).message).to.match(new RegExp(`^agent ${agent.uuid} is enrolled with the verifier, but its bootstrap key \\(U\\) was not delivered`));
    expect((error as Error).cause).to.be.instanceOf(KeylimeHttpError);
    expect((await tenant.listAgents())).to.include(agent.uuid);
  });

  it('`add --deliver-keys --verify` stops at the verifier an agent its U did not reach (it enrolled it first, and cannot prove K)', async function () {
    const addU = Object.getOwnPropertyDescriptor(BootstrapKeys.prototype, 'addU') as PropertyDescriptor;
    BootstrapKeys.prototype.addU = () => {
      throw new AgentKeyError('encrypted_key: cannot be decrypted with the agent key');
    };
    let run: Awaited<ReturnType<typeof runCli>>;
    try {
      run = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--deliver-keys', '--verify', '--verify-timeout', '2', ...connection]);
    } finally {
      Object.defineProperty(BootstrapKeys.prototype, 'addU', addU);
    }
    expect(run.code, run.stderr).to.equal(2);
    expect(run.stderr).to.match(new RegExp(`^ironlime: --verify failed, agent ${agent.uuid} stopped at the verifier \\(tenant reactivate polls it again\\): agent ${agent.uuid} is enrolled with the verifier, but its bootstrap key \\(U\\) was not delivered`));
    expect((await tenant.getStatus(agent.uuid)).operational_state).to.equal(OperationalState.TENANT_FAILED);
  });

  it('`add --verify` stops at the verifier an agent that does not prove K (exit 1)', async function () {
    const hmacOf = Object.getOwnPropertyDescriptor(BootstrapKeys.prototype, 'hmacOf') as PropertyDescriptor;
    // An agent answering with a key that is not this enrolment's (an impostor, or one that failed to derive K).
    BootstrapKeys.prototype.hmacOf = () => '00'.repeat(48);
    let run: Awaited<ReturnType<typeof runCli>>;
    try {
      run = await runCli(['tenant', 'add', '--uuid', agent.uuid, '--deliver-keys', '--verify', '--verify-timeout', '2', ...connection]);
    } finally {
      Object.defineProperty(BootstrapKeys.prototype, 'hmacOf', hmacOf);
    }
    expect(run.code, run.stderr).to.equal(1);
    expect(JSON.parse(run.stdout)).to.include({ agent_id: agent.uuid, enrolled: true, bootstrap_key_verified: false, stopped: true });
    expect((await tenant.getStatus(agent.uuid)).operational_state).to.equal(OperationalState.TENANT_FAILED);
    expect((await runCli(['tenant', 'status', '--uuid', agent.uuid, ...connection])).code).to.equal(1);
  });
});
