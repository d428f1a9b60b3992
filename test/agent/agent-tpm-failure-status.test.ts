import { expect } from 'chai';
import { TpmAccessError } from '../../lib/tpm-access/tpm-access-error.js';
import type { QuoteRequest, QuoteResult } from '../../lib/tpm-access/tpm-port.js';
import { createSoftwareAgent, disposeSharedNodeKey, type SoftwareAgent } from './helpers/software-agent.js';

/**
 * A quote the node's TPM could not make is answered 500, as the Rust agent answers it: Keylime
 * verifiers (Python's and ironlime's, `RETRYABLE_STATUSES` in lib/attestation/pull-decision.ts) retry a
 * quote answered 408, 500 or 599 and fail the node on any other status, so a 503 turned one TPM
 * hiccup of a healthy node into a FAIL.
 */
describe('agent quotes: a TPM failure is a status Keylime verifiers retry', function () {
  this.timeout(60_000);
  let agent: SoftwareAgent;

  before(async function () {
    agent = await createSoftwareAgent();
  });
  after(async function () {
    await agent.dispose();
    await disposeSharedNodeKey();
  });

  it('answers both quote routes 500 with the Keylime envelope when the TPM refuses the quote', async function () {
    const tpm = agent.tpm as { quote: (request: QuoteRequest) => Promise<QuoteResult> };
    const original = tpm.quote;
    tpm.quote = () => Promise.reject(new TpmAccessError('tpm2_quote: Esys_Quote(0x922) the TPM asks to retry'));
    try {
      for (const url of ['/v2.6/quotes/identity?nonce=abcdefghij', '/v2.6/quotes/integrity?nonce=abcdefghij&mask=0x400&partial=1']) {
        const reply = await agent.service.app.inject({ method: 'GET', url });
        expect(reply.statusCode, url).to.equal(500);
        expect(reply.json(), url).to.include({ code: 500 });
      }
    } finally {
      tpm.quote = original;
    }
    const healthy = await agent.service.app.inject({ method: 'GET', url: '/v2.6/quotes/identity?nonce=abcdefghij' });
    expect(healthy.statusCode).to.equal(200);
  });
});
