import { expect } from 'chai';
import type { RevocationAgentTarget } from '../../lib/revocation/revocation-notice.js';
import { RevocationNotifier } from '../../lib/revocation/revocation-notifier.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { failureNotice } from './helpers/failure-notice.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const REVOCATION_KEY_PEM = newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/**
 * A try over an agent's own connection that outlives the notifier's deadline is not abandoned on the
 * wire: it still reaches the agent, and the kept-alive connection queues the next try behind it. A retry
 * sent meanwhile delivered the notice twice (a Keylime agent runs its revocation actions again).
 */
describe('revocation fan-out: a late answer is not a failure to send again', function () {
  this.timeout(30_000);

  it('sends an agent that answers after the deadline the notice once', async function () {
    const tls = tlsFixture();
    const notifier = new RevocationNotifier({ agentTls: { cert: tls.client.certPem, key: tls.client.keyPem }, retry: { attempts: 5, initialDelayMs: 10, maxDelayMs: 10 }, timeoutMs: 200 });
    const sent: number[] = [];
    let received = 0;
    const slow: RevocationAgentTarget = {
      agentId: 'slow',
      tenant: 'tenant-a',
      url: 'https://192.0.2.1:9002',
      apiVersion: '2.2',
      post: () => {
        sent.push(Date.now());
        return new Promise<void>((resolve) => setTimeout(() => {
          received += 1;
          resolve();
        }, 600));
      },
    };
    const notice = failureNotice(REVOCATION_KEY_PEM, { otherAgents: [slow] });
    notifier.agentFailed(notice);
    const started = Date.now();
    // Up to 15 s for the answer: a host that stalls for seconds delays it (the answer itself takes 0.6 s).
    while (received === 0 && Date.now() - started < 15_000) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await notifier.close();
    expect(received, 'the notice reached the agent').to.be.at.least(1);
    expect(sent, 'sent once: the late try was waited for, not repeated').to.have.length(1);
  });
});
