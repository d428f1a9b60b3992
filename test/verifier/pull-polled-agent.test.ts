import { createServer, type Server } from 'node:https';
import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { RepeatedTexts, type PooledText } from '../../lib/http/repeated-member-json.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { PolicyCache } from '../../lib/verifier/policy-cache.js';
import { loadPolledAgent, type PolledAgentDeps } from '../../lib/verifier/polled-agent.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import type { VerifierPolicyRepository } from '../../lib/verifier/verifier-policy-repository.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';

/** A boot log as an agent sends it: long enough to be remembered by the pool (≥ 1 KiB of plain base64). */
const BOOT_LOG = Buffer.alloc(3000, 7).toString('base64');

/**
 * `loadPolledAgent` builds each agent's connection with the process's shared boot-log pool
 * (`PolledAgentDeps.bootLogs`), so that a fleet booted from one firmware holds its boot log once.
 */
describe('polled agent: the connection shares the boot-log pool of the process', function () {
  this.timeout(20_000);
  const agentTls = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
  const verifierTls = createSelfSignedServerCertificate({ commonName: 'verifier' });
  let server: Server;
  let port: number;

  before(async function () {
    server = createServer({ cert: agentTls.certPem, key: agentTls.keyPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 200, status: 'Success', results: { quote: 'r', mb_measurement_list: BOOT_LOG } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  after(function () {
    server.close();
  });

  it("reads every agent's boot log through deps.bootLogs", async function () {
    const bootLogs = new RepeatedTexts();
    const held: string[] = [];
    const hold = bootLogs.hold.bind(bootLogs);
    bootLogs.hold = (text: string): PooledText => {
      held.push(text);
      return hold(text);
    };
    const deps: PolledAgentDeps = {
      // The records name no stored policy: nothing is read.
      policies: {} as VerifierPolicyRepository,
      cache: new PolicyCache(),
      clientTls: { cert: verifierTls.certPem, key: verifierTls.keyPem },
      requestTimeoutMs: 5000,
      measuredBootEvaluate: 'once',
      bootLogs,
    };
    const agents = await Promise.all(
      ['pool-a', 'pool-b'].map(async (agentId) => {
        const load = await loadPolledAgent(record(agentId), deps);
        if (load.kind !== 'loaded') throw new Error(`${agentId} did not load: ${String(load.error)}`);
        return load.agent;
      }),
    );
    try {
      for (const agent of agents) {
        const reply = (await agent.connection.integrityQuoteReply({ nonce: 'n'.repeat(20), mask: '0x1', partial: false, imaEntry: 0 })) as { mb_measurement_list: string };
        expect(reply.mb_measurement_list).to.equal(BOOT_LOG);
      }
    } finally {
      for (const agent of agents) agent.connection.close();
    }
    expect(held.map((text) => text === BOOT_LOG)).to.deep.equal([true, true]);
  });

  function record(agentId: string): VerifierAgentRecord {
    return {
      ...pullAgentEnrolment({ agentId, port, tpmPolicy: '{"mask": "0x1"}', akTpm: new FakeAgent().akTpm, mtlsCert: agentTls.certPem, supportedVersion: '2.6' }),
      state: initialAgentState(),
      owner: 'me',
      lastAttemptAt: 0,
      enrolledAt: 0,
      enrolment: '1',
    };
  }
});
