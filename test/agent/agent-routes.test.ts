import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import { expectedDataPcr } from '../../lib/attestation/pcr-checks.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { parseQuoteString } from '../../lib/tpm/quote-string.js';
import { verifyQuote, type QuoteVerified } from '../../lib/tpm/verify-quote.js';
import { TpmAccessError } from '../../lib/tpm-access/tpm-access-error.js';
import type { QuoteRequest, QuoteResult } from '../../lib/tpm-access/tpm-port.js';
import { testAgentPolicies } from '../helpers/agent-policies.js';
import { createSoftwareAgent, disposeSharedNodeKey, type SoftwareAgent } from './helpers/software-agent.js';

const NONCE = 'abcdefghij0123456789';

function verified(agent: SoftwareAgent, quote: string, nonce = NONCE): QuoteVerified {
  const parts = parseQuoteString(quote);
  const verdict = verifyQuote({ akPublic: agent.ak.akPublic, ...parts, nonce: Buffer.from(nonce, 'ascii'), hashAlg: 'sha256' });
  if (!verdict.valid) {
    throw new Error(verdict.reason);
  }
  return verdict;
}

describe('agent routes (software TPM, emulated node)', function () {
  this.timeout(60_000);
  let agent: SoftwareAgent;

  before(async function () {
    agent = await createSoftwareAgent();
  });
  after(async function () {
    await agent.dispose();
    await disposeSharedNodeKey();
  });

  describe('versions and info', function () {
    it('GET /version lists the Rust agent versions', async function () {
      const reply = await agent.request('GET', '/version');
      expect(reply.status).to.equal(200);
      expect(reply.body).to.deep.equal({
        code: 200,
        status: 'Success',
        results: { supported_version: '2.6', supported_versions: ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'] },
      });
    });

    it('refuses an unsupported version with the Rust agent text', async function () {
      for (const version of ['v1.0', 'v2.0', 'v2.7', 'v3.0']) {
        const reply = await agent.request('GET', `/${version}/keys/pubkey`);
        expect(reply.status, version).to.equal(400);
        expect(reply.body.status).to.equal(`API version not supported: ${version}`);
      }
    });

    it('GET agent/info from 2.2, enc_alg with its size from 2.5', async function () {
      const info = await agent.request('GET', '/v2.6/agent/info');
      expect(info.body.results).to.deep.equal({
        agent_uuid: agent.uuid,
        tpm_hash_alg: 'sha256',
        tpm_enc_alg: 'rsa2048',
        tpm_sign_alg: 'rsassa',
        ak_handle: agent.ak.handle,
      });
      expect((await agent.request('GET', '/v2.4/agent/info')).body.results['tpm_enc_alg']).to.equal('rsa');
      expect((await agent.request('GET', '/v2.1/agent/info')).status).to.equal(404);
    });

    it('GET keys/pubkey serves the NK public key PEM', async function () {
      const reply = await agent.request('GET', '/v2.1/keys/pubkey');
      expect(reply.body.results).to.deep.equal({ pubkey: agent.nk.publicPem });
      expect(agent.nk.publicPem).to.match(/^-----BEGIN PUBLIC KEY-----\n/);
    });
  });

  describe('quotes/identity', function () {
    it('quotes PCR 16 only, bound to H(pubkey), signed by the AK over the nonce', async function () {
      const reply = await agent.request('GET', `/v2.6/quotes/identity?nonce=${NONCE}`);
      expect(reply.status).to.equal(200);
      const results = reply.body.results;
      expect(results).to.include({ hash_alg: 'sha256', enc_alg: 'rsa2048', sign_alg: 'rsassa', pubkey: agent.nk.publicPem });
      const verdict = verified(agent, results['quote'] as string);
      expect([...verdict.pcrs.keys()]).to.deep.equal([16]);
      expect(Buffer.from(verdict.pcrs.get(16)!).equals(expectedDataPcr('sha256', agent.nk.publicPem))).to.equal(true);
    });

    it('resets PCR 16 before every quote, so it holds the same binding each time', async function () {
      const first = verified(agent, (await agent.request('GET', `/v2.6/quotes/identity?nonce=${NONCE}`)).body.results['quote'] as string);
      const second = verified(agent, (await agent.request('GET', `/v2.6/quotes/identity?nonce=${NONCE}`)).body.results['quote'] as string);
      expect(Buffer.from(second.pcrs.get(16)!).equals(Buffer.from(first.pcrs.get(16)!))).to.equal(true);
    });

    it('a quote does not verify for another nonce', async function () {
      const quote = (await agent.request('GET', `/v2.6/quotes/identity?nonce=${NONCE}`)).body.results['quote'] as string;
      expect(() => verified(agent, quote, 'otherNonce')).to.throw('quote: extraData does not match the nonce');
    });

    const badNonces: [string, string][] = [
      ['', 'query.nonce: must be 1 to 64 letters and digits'],
      ['?nonce=', 'query.nonce: must be 1 to 64 letters and digits'],
      [`?nonce=${'a'.repeat(65)}`, 'query.nonce: must be 1 to 64 letters and digits'],
      ['?nonce=abc-def', 'query.nonce: must be 1 to 64 letters and digits'],
      ['?nonce=abc%20def', 'query.nonce: must be 1 to 64 letters and digits'],
      [`?nonce=${NONCE}&mask=0x1`, 'query.mask: should not exist'],
    ];
    for (const [query, status] of badNonces) {
      it(`refuses identity query "${query}"`, async function () {
        const reply = await agent.request('GET', `/v2.6/quotes/identity${query}`);
        expect(reply.status).to.equal(400);
        expect(reply.body).to.deep.equal({ code: 400, status, results: {} });
      });
    }

    it('accepts a 64-character nonce', async function () {
      const nonce = 'Z'.repeat(64);
      const reply = await agent.request('GET', `/v2.6/quotes/identity?nonce=${nonce}`);
      expect(reply.status).to.equal(200);
      verified(agent, reply.body.results['quote'] as string, nonce);
    });
  });

  describe('a quote the TPM could not make', function () {
    // 500, as the Rust agent answers it: Keylime verifiers (Python's and ironlime's, `RETRYABLE_STATUSES` in
    // lib/attestation/pull-decision.ts) retry a quote answered 408, 500 or 599 and fail the node on any
    // other status, so a 503 turned one TPM hiccup of a healthy node into a FAIL.
    it('is answered 500 with the Keylime envelope on both quote routes, a status Keylime verifiers retry', async function () {
      const tpm = agent.tpm as { quote: (request: QuoteRequest) => Promise<QuoteResult> };
      const original = tpm.quote;
      tpm.quote = () => Promise.reject(new TpmAccessError('tpm2_quote: Esys_Quote(0x922) the TPM asks to retry'));
      try {
        for (const path of [`/v2.6/quotes/identity?nonce=${NONCE}`, `/v2.6/quotes/integrity?nonce=${NONCE}&mask=0x400&partial=1`]) {
          const reply = await agent.request('GET', path);
          expect(reply.status, path).to.equal(500);
          expect(reply.body.code, path).to.equal(500);
        }
      } finally {
        tpm.quote = original;
      }
      expect((await agent.request('GET', `/v2.6/quotes/identity?nonce=${NONCE}`)).status).to.equal(200);
    });
  });

  describe('quotes/integrity', function () {
    it('quotes the mask plus PCR 16, sends the IMA list, the boot log for PCR 0, and passes the engine', async function () {
      const reply = await agent.request('GET', `/v2.6/quotes/integrity?nonce=${NONCE}&mask=0x401&partial=0`);
      expect(reply.status).to.equal(200);
      const results = reply.body.results;
      const verdict = verified(agent, results['quote'] as string);
      expect([...verdict.pcrs.keys()]).to.deep.equal([0, 10, 16]);
      expect(results['pubkey']).to.equal(agent.nk.publicPem);
      expect(results['ima_measurement_list_entry']).to.equal(0);
      expect(results['ima_measurement_list']).to.equal(await readFile(agent.node.imaLogPath, 'utf8'));
      expect(results['ima_measurement_list']).to.match(/^10 [0-9a-f]{40} ima-ng sha256:[0-9a-f]{64} boot_aggregate\n$/);
      expect(results['mb_measurement_list']).to.equal((await readFile(agent.node.bootLogPath)).toString('base64'));
      // The reply with the boot log is written around the log: byte for byte what JSON.stringify makes.
      expect(reply.text).to.equal(JSON.stringify(reply.body));
      const round = evaluateQuote({
        state: initialAgentState(),
        policies: testAgentPolicies(agent.ak.akPublic, { tpmPolicy: { mask: '0x401' } }),
        reply: results as unknown as AgentQuoteReply,
        nonce: NONCE,
        now: 1_700_000_000,
      });
      expect(round.failures).to.deep.equal([]);
      expect(round.verdict).to.equal('pass');
    });

    it('partial=1 leaves out pubkey; without PCR 0 there is no boot log', async function () {
      const results = (await agent.request('GET', `/v2.6/quotes/integrity?nonce=${NONCE}&mask=400&partial=1`)).body.results;
      expect(results).to.not.have.property('pubkey');
      expect(results).to.not.have.property('mb_measurement_list');
      expect([...verified(agent, results['quote'] as string).pcrs.keys()]).to.deep.equal([10, 16]);
    });

    it('follows Keylime ima_ml_entry rules as the log grows (new entries, nothing new, past the end)', async function () {
      await agent.node.measure([{ path: '/usr/bin/evil', fileDigest: new Uint8Array(32).fill(0xee) }]);
      const at = async (entry: number) =>
        (await agent.request('GET', `/v2.6/quotes/integrity?nonce=${NONCE}&mask=0x400&partial=1&ima_ml_entry=${entry}`)).body.results;
      const log = await readFile(agent.node.imaLogPath, 'utf8');
      const lines = log.split('\n').filter((line) => line !== '');
      expect(lines).to.have.length(2);
      expect(lines[1]).to.match(/ ima-ng sha256:e{64} \/usr\/bin\/evil$/);
      expect(await at(1)).to.include({ ima_measurement_list: `${lines[1]!}\n`, ima_measurement_list_entry: 1 });
      expect(await at(2)).to.include({ ima_measurement_list: '', ima_measurement_list_entry: 2 });
      expect(await at(7)).to.include({ ima_measurement_list: log, ima_measurement_list_entry: 0 });
    });

    const badQueries: [string, string][] = [
      [`nonce=${NONCE}&partial=0`, 'query.mask: must be a hex PCR mask (optional 0x) of PCRs 0-23'],
      [`nonce=${NONCE}&mask=0xzz&partial=0`, 'query.mask: must be a hex PCR mask (optional 0x) of PCRs 0-23'],
      [`nonce=${NONCE}&mask=0x1000000&partial=0`, 'query.mask: must be a hex PCR mask (optional 0x) of PCRs 0-23'],
      [`nonce=${NONCE}&mask=0x400`, 'query.partial: must be 0 or 1'],
      [`nonce=${NONCE}&mask=0x400&partial=2`, 'query.partial: must be 0 or 1'],
      [`nonce=${NONCE}&mask=0x400&partial=true`, 'query.partial: must be 0 or 1'],
      [`nonce=${NONCE}&mask=0x400&partial=0&ima_ml_entry=-1`, 'query.ima_ml_entry: must be a non-negative integer'],
      [`nonce=${NONCE}&mask=0x400&partial=0&ima_ml_entry=1.5`, 'query.ima_ml_entry: must be a non-negative integer'],
      [`nonce=${NONCE}&mask=0x400&partial=0&ima_ml_entry=${'9'.repeat(13)}`, 'query.ima_ml_entry: must be a non-negative integer'],
      [`nonce=${NONCE}&mask=0x400&partial=0&vmask=0x400`, 'query.vmask: should not exist'],
      // Keys the DTO instance inherits from Object.prototype: class-transformer skipped them silently.
      [`nonce=${NONCE}&mask=0x400&partial=0&hasOwnProperty=1`, 'query.hasOwnProperty: should not exist'],
      [`nonce=${NONCE}&mask=0x400&partial=0&toString=1`, 'query.toString: should not exist'],
      [`nonce=a_b&mask=0x400&partial=0`, 'query.nonce: must be 1 to 64 letters and digits'],
    ];
    for (const [query, status] of badQueries) {
      it(`refuses integrity query "${query}"`, async function () {
        const reply = await agent.request('GET', `/v2.6/quotes/integrity?${query}`);
        expect(reply.status).to.equal(400);
        expect(reply.body).to.deep.equal({ code: 400, status, results: {} });
      });
    }
  });
});
