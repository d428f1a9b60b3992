import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { evilFile, knownGoodFiles, type DemoFile } from '../../lib/demo/demo-catalog.js';
import { startDemoEnvironment, type DemoEnvironment, type DemoPushNode } from '../../lib/demo/demo-environment.js';
import { waitForVerifierFailure } from '../../lib/demo/verifier-watch.js';
import { showRegistrarAgent } from '../../lib/tenant/registrar-agents.js';
import { TenantClient } from '../../lib/tenant/tenant-client.js';
import type { VerifierHistoryEntry } from '../../lib/verifier/verifier-client.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';

/**
 * A push agent on a real swtpm (issue 13, spec §10): the agent's TPM is the tpm2-tools adapter, so the
 * session's proof of possession is a raw TPM2_Certify sent by `tpm2_send` and every quote comes from
 * swtpm. Registrar and verifier in-process (PGlite, fresh CA), the tenant enrols the node for push with
 * its EK certificate checked against the swtpm CA, quote interval 1 s.
 */
describe('push agent on swtpm: session with a real TPM2_Certify, rounds, IMA tampering', function () {
  this.timeout(60_000);
  let dir: string;
  let env: DemoEnvironment;
  let tenant: TenantClient;
  let node: DemoPushNode;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-push-swtpm-'));
    env = await startDemoEnvironment({ dir, tpmKind: 'swtpm', nodeCount: 0, pushNodeCount: 1, quoteIntervalSeconds: 1, imaGrowthMs: 0 });
    [node] = env.pushNodes as [DemoPushNode];
    const pem = (file: string): string => readFileSync(file, 'utf8');
    tenant = new TenantClient({
      registrarUrl: env.registrar.tlsUrl,
      verifierUrl: env.verifier.url,
      tls: { ca: pem(env.tls.caFile), cert: pem(env.tls.certFile), key: pem(env.tls.keyFile) },
      ekCheck: 'require',
      extraEkCaDirs: [env.ekCaDir],
    });
  });

  after(async function () {
    tenant?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function passedRounds(): Promise<VerifierHistoryEntry[]> {
    return (await tenant.history(node.agent.uuid, 100)).filter((round) => round.outcome === 'pass');
  }

  it('runs on swtpm through tpm2-tools and registered without an mTLS certificate', async function () {
    expect(env.tpmKind).to.equal('swtpm');
    expect(env.swtpmPids()).to.have.length(1);
    const registered = await showRegistrarAgent(tenant.registrar, node.agent.uuid);
    expect(registered.mtlsCert).to.equal(null);
  });

  it('is enrolled for push after its swtpm EK certificate is checked', async function () {
    const result = await tenant.addPushAgent(node.agent.uuid, {
      runtimePolicy: readFileSync(env.policies.runtimePolicy.path, 'utf8'),
      mbPolicy: readFileSync(env.policies.refstate.path, 'utf8'),
    });
    expect(result.apiVersion).to.equal('3.0');
  });

  it('opens a session with the AK certified by swtpm and attests several rounds', async function () {
    await eventually('three passed push rounds', async () => (await passedRounds()).length >= 3, 30_000, 250);
    const status = await tenant.getStatus(node.agent.uuid);
    expect(status.operational_state).to.equal(OperationalState.GET_QUOTE);
    expect(status.attestation_count).to.be.at.least(3);
  });

  it('sends only the IMA entries added since the last round', async function () {
    const before = (await passedRounds()).length;
    await node.run(knownGoodFiles()[3] as DemoFile);
    // History is newest first: the rounds after `before` are at the head.
    const newRounds = async (): Promise<VerifierHistoryEntry[]> => {
      const rounds = await passedRounds();
      return rounds.slice(0, rounds.length - before);
    };
    await eventually('a passed round carrying only the new entry', async () => (await newRounds()).some((round) => round.imaEntriesReceived === 1), 20_000, 250);
    const rounds = await passedRounds();
    const first = rounds[rounds.length - 1] as VerifierHistoryEntry;
    expect(first.imaMlEntry).to.equal(0);
    expect(first.imaEntriesReceived).to.be.greaterThan(1);
  });

  it('is refused after an IMA tampering on the node', async function () {
    await node.run(evilFile());
    expect(await waitForVerifierFailure(env, node.agent.uuid, 20_000)).to.contain('ima.validation.ima-ng.not_in_allowlist');
    const status = await tenant.getStatus(node.agent.uuid);
    expect(status.attestation_status).to.equal('FAIL');
  });
});
