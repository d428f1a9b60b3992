import { expect } from 'chai';
import type { AgentFailureNotice, RevocationAgentTarget } from '../../lib/revocation/revocation-notice.js';
import { RevocationNotifier } from '../../lib/revocation/revocation-notifier.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { failureNotice } from './helpers/failure-notice.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const REVOCATION_KEY_PEM = newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function notice(otherAgents: readonly RevocationAgentTarget[]): AgentFailureNotice {
  return failureNotice(REVOCATION_KEY_PEM, { otherAgents });
}

/**
 * The fan-out to the other agents runs 8 deliveries at once; a try over an agent's own connection
 * (`RevocationAgentTarget.post`: the verifier's pull connection, whose timeout is the verifier's
 * `requestTimeout`, 60 s by default) is bounded by the notifier's `timeoutMs` too, so 8 agents that
 * do not answer do not hold the notice back from the rest of the tenant, nor the notifier's close.
 */
describe('revocation fan-out: each try to an agent has the notifier deadline', function () {
  this.timeout(40_000);

  it('8 agents that never answer do not stall the others; close does not wait on them', async function () {
    const tls = tlsFixture();
    const notifier = new RevocationNotifier({ agentTls: { cert: tls.client.certPem, key: tls.client.keyPem }, retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 10 }, timeoutMs: 200 });
    const silent = Array.from({ length: 8 }, (_, i) => ({
      agentId: `silent-${i}`,
      tenant: 'tenant-a',
      url: 'https://192.0.2.1:9002',
      apiVersion: '2.2',
      post: () => new Promise<void>(() => undefined),
    }));
    let deliveredAt: number | undefined;
    const answering = { agentId: 'answering', tenant: 'tenant-a', url: 'https://192.0.2.2:9002', apiVersion: '2.2', post: async () => void (deliveredAt = Date.now()) };
    const started = Date.now();
    notifier.agentFailed(notice([...silent, answering]));
    while (deliveredAt === undefined && Date.now() - started < 16_000) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(deliveredAt, 'the answering agent got the notice').to.not.equal(undefined);
    // Two tries of 200 ms hold a worker; without the notifier deadline it is never freed, with the default
    // one (10 s) after 20 s. 15 s leaves room for a CI host that stalls this process for seconds.
    expect((deliveredAt as number) - started).to.be.below(15_000);
    const closing = Date.now();
    await notifier.close();
    // The tries in flight end within 200 ms (the default deadline: 10 s, and the tries began before the
    // delivery above); room for a stall of several seconds.
    expect(Date.now() - closing).to.be.below(9000);
  });
});
