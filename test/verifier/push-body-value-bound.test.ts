import { expect } from 'chai';
import { validateDto } from '../../lib/http/dto-validation.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { checkJsonText } from '../../lib/http/json-guard.js';
import { EVIDENCE_BODY_LIMIT } from '../../lib/http/keylime-service.js';
import { SessionCreateBody } from '../../lib/verifier/push/push-dtos.js';
import { PUSH_MAX_JSON_VALUES } from '../../lib/verifier/push/push-routes.js';
import { JSON_API, usePushVerifier } from './helpers/push-verifier.js';
import { watchEventLoopStalls } from '../helpers/event-loop-stalls.js';

const REFUSAL = { errors: [{ status: '400', detail: `body: holds more than ${PUSH_MAX_JSON_VALUES} JSON values` }] };

/** An evidence document of `bytes` made of `{}` elements: 3 bytes a value. */
function emptyObjects(bytes: number): string {
  const count = Math.floor((bytes - 256) / 3);
  return `{"data":{"type":"attestation","attributes":{"evidence_collected":[${'{},'.repeat(count - 1)}{}]}}}`;
}

/**
 * Hunt H5: a push body of many tiny values was parsed, then walked by the JSON guard, class-transformer
 * and class-validator element by element before `ArrayMaxSize` was checked — 2 MiB of `{}` from an agent
 * holding a token stalled the event loop 10.6 s, 32 MiB ran the heap out of memory, and 256 KiB to the
 * public session route 2.3 s. The bound on values is counted in the text before it is parsed.
 */
describe('push routes: bodies bounded by their number of JSON values (hunt H5)', function () {
  this.timeout(120_000);
  const push = usePushVerifier({ quoteInterval: 3600, pushTimeout: 36000 });

  /** The reply, and the longest the event loop went without running a 10 ms timer meanwhile (`watchEventLoopStalls`). */
  async function timed(method: 'POST' | 'PATCH', url: string, payload: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; stallMs: number }> {
    const stalls = watchEventLoopStalls();
    try {
      const reply = await push.verifier.service.app.inject({ method, url, headers: { 'content-type': JSON_API, ...headers }, payload });
      return { status: reply.statusCode, body: reply.json(), stallMs: stalls.stop() };
    } finally {
      stalls.stop();
    }
  }

  for (const [name, bytes] of [
    ['2 MiB', 2 * 1024 * 1024],
    ['32 MiB', EVIDENCE_BODY_LIMIT],
  ] as const) {
    it(`refuses ${name} of empty objects from an agent holding a valid token with a 400, without stalling the verifier`, async () => {
      const node = await push.bootNode();
      expect((await push.enrol(node)).status).to.equal(200);
      const token = await node.agent.openSession();
      const reply = await timed('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, emptyObjects(bytes), { authorization: `Bearer ${token}` });
      expect(reply.status).to.equal(400);
      expect(reply.body).to.deep.equal(REFUSAL);
      // Generous for two shared cores: the refusal reads the text up to its 1,025th value (ms); before
      // the bound, 2 MiB stalled 10.6 s and 32 MiB was never answered (out of memory).
      expect(reply.stallMs, 'longest event-loop stall, ms').to.be.below(3000);
    });
  }

  it('refuses 256 KiB of empty objects to the public session route with a 400, without stalling the verifier', async () => {
    const count = Math.floor((256 * 1024 - 256) / 3);
    const body = `{"data":{"type":"session","attributes":{"agent_id":"x","authentication_supported":[${'{},'.repeat(count - 1)}{}]}}}`;
    const reply = await timed('POST', '/v3.0/sessions', body);
    expect(reply.status).to.equal(400);
    expect(reply.body).to.deep.equal(REFUSAL);
    // Before the bound: 2.3 s and a 500 (the refusal's messages overflowed the stack). Generous margin.
    expect(reply.stallMs, 'longest event-loop stall, ms').to.be.below(1000);
  });

  it('reports a refusal of 100,000 bad session methods as a 400 naming the first five, not a stack overflow (a 500)', () => {
    // Past the value bound of the route; `validateDto` alone, as any caller with a parsed value uses it.
    const plain = { data: { type: 'session', attributes: { agent_id: 'x', authentication_supported: Array.from({ length: 100_000 }, () => ({})) } } };
    let refusal: unknown;
    try {
      validateDto(SessionCreateBody, plain, 'body');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).to.be.instanceOf(RequestValidationError);
    expect((refusal as Error).message).to.match(/^body\.data\.attributes\.authentication_supported: must contain no more than 8 elements; /);
    expect((refusal as Error).message.split('; ')).to.have.length(5);
  });

  it('counts session requests per address before their body is read: past 50 a minute, 429 whatever the body', async () => {
    const open = async (payload: string) =>
      push.verifier.service.app.inject({ method: 'POST', url: '/v3.0/sessions', remoteAddress: '198.51.100.7', headers: { 'content-type': JSON_API }, payload });
    for (let i = 0; i < 50; i += 1) {
      expect((await open('not JSON')).statusCode).to.equal(400);
    }
    const refused = await open('not JSON');
    expect(refused.statusCode).to.equal(429);
    expect(refused.headers['retry-after']).to.match(/^\d+$/);
    // The same JSON:API refusal the handler gave when the limit was counted there.
    expect(refused.headers['content-type']).to.match(/^application\/vnd\.api\+json/);
    expect(refused.json()).to.deep.equal({ errors: [{ status: '429', code: 'too_many_requests', detail: 'too many sessions requested; try again later' }] });
  });

  it('takes the agent\'s real bodies, which hold a small part of the bound', async () => {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const capabilities = JSON.stringify(await node.agent.capabilities());
    expect(() => checkJsonText(capabilities, PUSH_MAX_JSON_VALUES / 8)).not.to.throw();
    const { token, evidence } = await push.issuedEvidence(node);
    expect(() => checkJsonText(JSON.stringify(evidence), PUSH_MAX_JSON_VALUES / 8)).not.to.throw();
    const reply = await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token);
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
  });
});
