import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { JSON_API, requested, usePushVerifier, type PushNode } from './helpers/push-verifier.js';

describe('push model: /v3.0 body validation (issue 13)', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: 60 });

  let node: PushNode;
  let token: string;

  before(async function () {
    node = await push.bootNode();
    await push.enrol(node);
    token = await node.agent.openSession();
  });

  const cases: [string, (body: any) => void][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    ['available_subjects as a list', (b) => (b.data.attributes.evidence_supported[0].capabilities.available_subjects = [0, 1, 2])],
    ['a PCR above 23', (b) => (b.data.attributes.evidence_supported[0].capabilities.available_subjects = { sha256: [24] })],
    ['a wrong data.type', (b) => (b.data.type = 'session')],
    ['an unknown evidence_type', (b) => (b.data.attributes.evidence_supported[0].evidence_type = 'tee_report')],
    ['an unknown field', (b) => (b.data.attributes.extra = 1)],
    ['a boot_time that is not ISO 8601', (b) => (b.data.attributes.system_info.boot_time = 'yesterday')],
    ['a certification key with non-base64 public', (b) => (b.data.attributes.evidence_supported[0].capabilities.certification_keys[0].public = 'not base64!')],
  ];
  for (const [name, mutate] of cases) {
    it(`capabilities with ${name} are 400 (JSON:API error)`, async function () {
      const body = JSON.parse(JSON.stringify(await node.agent.capabilities())) as Record<string, unknown>;
      mutate(body);
      const refused = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
      expect(refused.status).to.equal(400);
      expect(refused.headers['content-type']).to.equal(JSON_API);
      expect(refused.body['errors'][0]['status']).to.equal('400');
    });
  }

  it('capabilities offering a bank not in hash_algorithms are 422 (Keylime 7.14)', async function () {
    const body = (await node.agent.capabilities()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    body.data.attributes.evidence_supported[0].capabilities.available_subjects.sha1 = [0];
    const refused = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
    expect(refused.status).to.equal(422);
  });

  it('judges the token before the body (403, 401 before a 400) and refuses a query string (400)', async function () {
    const bad = { data: { type: 'session' } };
    expect((await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, bad)).status).to.equal(403);
    expect((await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, bad, `${randomUUID()}.bm90LWEtdG9rZW4`)).status).to.equal(401);
    expect((await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, bad, token)).status).to.equal(400);
    const queried = await push.call('GET', `/v3.0/agents/${node.uuid}/attestations?page=2`, undefined, token);
    expect([queried.status, queried.body['errors'][0]['detail']]).to.deep.equal([400, 'query: not expected on this route']);
  });

  it('a session body that is not JSON:API, and evidence whose quote is not base64, are 400', async function () {
    expect((await push.call('POST', '/v3.0/sessions', { agent_id: node.uuid })).status).to.equal(400);
    const evidence = { data: { type: 'attestation', attributes: { evidence_collected: [{ evidence_class: 'certification', evidence_type: 'tpm_quote', data: { message: '%%%', signature: 'AA==', subject_data: 'AA==' } }] } } };
    expect((await push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, evidence, token)).status).to.equal(400);
  });

  it('evidence whose quote message is null is 422 as a missing one (it reached the decoder as a value: a 500), and is judged when sent whole', async function () {
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token);
    expect(created.status).to.equal(201);
    const evidence = (await node.agent.evidence(requested(created))) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const quote = evidence.data.attributes.evidence_collected.find((item: { evidence_type: string }) => item.evidence_type === 'tpm_quote');
    const message: unknown = quote.data.message;
    quote.data.message = null;
    const refused = await push.call('PATCH', `${attestations}/latest`, evidence, token);
    expect([refused.status, refused.body['errors']?.[0]?.['detail']]).to.deep.equal([422, 'evidence_collected must include a tpm_quote with message, signature and subject_data']);
    quote.data.message = message;
    expect((await push.call('PATCH', `${attestations}/latest`, evidence, token)).status).to.equal(202);
  });
});
