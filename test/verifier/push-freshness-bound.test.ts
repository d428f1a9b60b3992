import { expect } from 'chai';
import { defaultFreshnessBound } from '../../lib/attestation/freshness.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/**
 * One freshness bound judges pull and push agents (the status API, the dashboard, the keylime
 * driver reading `freshness_bound`). It was 2 × `quoteInterval` + the retry budget, but a push agent
 * attests every `seconds_to_next_attestation` — `quoteInterval` rounded up to whole seconds, at least
 * 1 s: at `quoteInterval` 0.4 with no retries the bound was 0.8 s (1.8 s with its slack) and a healthy
 * push agent attesting every second, plus its round, was PENDING (stale) in about one status read of
 * twelve (seen with this verifier, sampling `GET /v2.5/agents/<id>` every 100 ms for 12 s).
 */
describe('freshness bound: a healthy push agent is not stale between its attestations', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ quoteInterval: 0.4, maxRetries: 0 } as never);

  it('the bound the status API gives a push agent is at least two of the waits the verifier names it', async () => {
    const node = await push.bootNode();
    await push.enrol(node);
    const wait = await node.agent.attestOnce();
    expect(wait).to.equal(1);
    const status = (await push.call('GET', `/v2.5/agents/${node.uuid}`)).body['results'];
    expect(status).to.include({ attestation_status: 'PASS', stale: false });
    expect(status['freshness_bound']).to.be.at.least(2 * wait);
  });

  it('two attestation periods of either mode, plus the retry budget', function () {
    const settings = { retryInterval: 2, maxRetries: 0, exponentialBackoff: false };
    expect(defaultFreshnessBound({ ...settings, quoteInterval: 0.4 })).to.equal(2);
    expect(defaultFreshnessBound({ ...settings, quoteInterval: 1.5 })).to.equal(4);
    expect(defaultFreshnessBound({ ...settings, quoteInterval: 3 })).to.equal(6);
    // Keylime's defaults: 2 s, and 2 + 4 + 8 + 16 + 32 s of back-off.
    expect(defaultFreshnessBound({ quoteInterval: 2, retryInterval: 2, maxRetries: 5, exponentialBackoff: true })).to.equal(66);
  });
});
