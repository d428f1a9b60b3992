import { expect } from 'chai';
import { BadRemoteReplyError } from '../../lib/http/client-errors.js';
import { readVerifierAgent } from '../../drivers/keylime/verifier-agent-view.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { rejection } from './driver-test-node.js';
import { FakeKeylime } from './fake-keylime.js';

const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00003';
const STATUS_ROUTE = `GET /v2.1/agents/${AGENT}`;

/**
 * Every rule the driver applies to a verifier's `GET /agents/{id}` reply, field by field: what each
 * field may hold, what an absent or null field reads as, and that a present field of the wrong type
 * refuses the whole status (BadRemoteReplyError naming the field, what it must be and what came).
 */
describe('keylime driver: the verifier status reply, field by field', function () {
  const fake = new FakeKeylime();
  let client: VerifierClient;

  before(async function () {
    await fake.start();
    client = new VerifierClient({ baseUrl: fake.url, apiVersion: '2.1' });
  });

  after(async function () {
    client.close();
    await fake.stop();
  });

  beforeEach(function () {
    fake.routes.clear();
  });

  const replying = (results: unknown): void => {
    fake.routes.set(STATUS_ROUTE, () => [200, results]);
  };

  it("reads real Keylime's reply (pull agent, API 2.1), dropping the fields it does not use", async function () {
    replying({
      operational_state: 3,
      v: null,
      ip: '10.0.0.7',
      port: 9002,
      tpm_policy: '{"mask": "0x400"}',
      meta_data: '{"node": "n1"}',
      has_mb_refstate: 0,
      has_runtime_policy: 1,
      accept_tpm_hash_algs: ['sha256'],
      hash_alg: 'sha256',
      severity_level: null,
      last_event_id: null,
      attestation_count: 12,
      last_received_quote: 1700000100,
      last_successful_attestation: 1700000100,
    });
    const agent = await readVerifierAgent(client, AGENT);
    expect(agent).to.deep.equal({
      operationalState: 3,
      attestationCount: 12,
      attestationStatus: undefined,
      lastEventId: null,
      severityLevel: null,
      failureEventIds: [],
      failureReasons: [],
      lastSuccessfulAttestation: 1700000100,
      attestationPeriodSeconds: undefined,
      trusted: undefined,
      freshnessBoundSeconds: undefined,
      metaData: '{"node": "n1"}',
    });
  });

  it("reads ours and Keylime 2.5's fields: attestation_status, attestation_period, trusted, freshness_bound", async function () {
    replying({
      operational_state: 7,
      attestation_status: 'FAIL',
      attestation_period: ' 0.5s ',
      last_event_id: 'pcr_validation.invalid_pcr_10',
      severity_level: 6,
      attestation_count: 0,
      last_successful_attestation: 1700000000.25,
      trusted: false,
      freshness_bound: 7.5,
      meta_data: '{}',
    });
    const agent = await readVerifierAgent(client, AGENT);
    expect(agent).to.include({
      operationalState: 7,
      attestationStatus: 'FAIL',
      attestationPeriodSeconds: 0.5,
      lastEventId: 'pcr_validation.invalid_pcr_10',
      severityLevel: 6,
      lastSuccessfulAttestation: 1700000000.25,
      trusted: false,
      freshnessBoundSeconds: 7.5,
    });
  });

  it('reads an absent or null field as neutral (a push agent has no operational_state)', async function () {
    const neutral = {
      operationalState: null,
      attestationCount: 0,
      attestationStatus: undefined,
      lastEventId: null,
      severityLevel: null,
      failureEventIds: [],
      failureReasons: [],
      lastSuccessfulAttestation: 0,
      attestationPeriodSeconds: undefined,
      trusted: undefined,
      freshnessBoundSeconds: undefined,
      metaData: '',
    };
    replying({});
    expect(await readVerifierAgent(client, AGENT)).to.deep.equal(neutral);
    const fields = ['operational_state', 'attestation_count', 'attestation_status', 'last_event_id', 'severity_level', 'last_successful_attestation', 'attestation_period', 'trusted', 'freshness_bound', 'meta_data'];
    replying(Object.fromEntries(fields.map((field) => [field, null])));
    expect(await readVerifierAgent(client, AGENT)).to.deep.equal(neutral);
  });

  it('takes a numeric attestation_period as seconds', async function () {
    replying({ attestation_period: 2 });
    expect((await readVerifierAgent(client, AGENT))?.attestationPeriodSeconds).to.equal(2);
  });

  for (const [field, value, expected, shown] of [
    ['operational_state', -1, 'a state code', '-1'],
    ['operational_state', 3.5, 'a state code', '3.5'],
    ['operational_state', true, 'a state code', 'true'],
    ['attestation_count', '5', 'a count', '"5"'],
    ['attestation_count', -2, 'a count', '-2'],
    ['attestation_count', 1.5, 'a count', '1.5'],
    ['attestation_status', ['PASS'], 'a string', '["PASS"]'],
    ['last_event_id', 7, 'a string', '7'],
    ['severity_level', '6', 'an integer', '"6"'],
    ['severity_level', -6, 'an integer', '-6'],
    ['last_successful_attestation', -1, 'unix seconds', '-1'],
    ['last_successful_attestation', {}, 'unix seconds', '{}'],
    ['attestation_period', '2', 'a period such as "2s"', '"2"'],
    ['attestation_period', '0s', 'a period such as "2s"', '"0s"'],
    ['attestation_period', '-2s', 'a period such as "2s"', '"-2s"'],
    ['attestation_period', '2 s', 'a period such as "2s"', '"2 s"'],
    ['attestation_period', '1e3s', 'a period such as "2s"', '"1e3s"'],
    ['attestation_period', 0, 'a period such as "2s"', '0'],
    ['attestation_period', -2, 'a period such as "2s"', '-2'],
    ['trusted', 1, 'a boolean', '1'],
    ['trusted', 'true', 'a boolean', '"true"'],
    ['freshness_bound', 0, 'a positive number of seconds', '0'],
    ['freshness_bound', '30', 'a positive number of seconds', '"30"'],
    ['meta_data', { node: 'n1' }, 'a string', '{"node":"n1"}'],
  ] as const) {
    it(`refuses ${field} = ${JSON.stringify(value)}: it must be ${expected}`, async function () {
      replying({ operational_state: 3, attestation_count: 5, last_successful_attestation: 1700000000, [field]: value });
      const error = await rejection(readVerifierAgent(client, AGENT));
      expect(error).to.be.instanceOf(BadRemoteReplyError);
      expect(error.message).to.match(new RegExp(`^verifier status of agent ${AGENT}: bad reply: .*\\b${field}\\b.*: not trusted$`));
      expect(error.message).to.contain(`must be ${expected}, got ${shown}`);
    });
  }

  it('names every wrongly typed field, not only the first', async function () {
    replying({ trusted: 'false', operational_state: '3', meta_data: 1 });
    const error = await rejection(readVerifierAgent(client, AGENT));
    expect(error).to.be.instanceOf(BadRemoteReplyError);
    for (const part of ['trusted', 'must be a boolean, got "false"', 'operational_state', 'must be a state code, got "3"', 'meta_data', 'must be a string, got 1']) {
      expect(error.message).to.contain(part);
    }
  });

  for (const results of [[], 'PASS', 3, true]) {
    it(`refuses results that are not an object: ${JSON.stringify(results)}`, async function () {
      replying(results);
      const error = await rejection(readVerifierAgent(client, AGENT));
      expect(error).to.be.instanceOf(BadRemoteReplyError);
      expect(error.message).to.match(new RegExp(`^verifier status of agent ${AGENT}: bad reply: .*JSON object.*: not trusted$`));
    });
  }

  it('refuses a reply with a prototype key anywhere, even in a field it does not read', async function () {
    replying({ operational_state: 3, attestation_count: 5, tpm_policy: { constructor: { prototype: {} } } });
    const error = await rejection(readVerifierAgent(client, AGENT));
    expect(error).to.be.instanceOf(BadRemoteReplyError);
    expect(error.message).to.equal(`verifier status of agent ${AGENT}: bad reply: wrongly typed fields (results.tpm_policy.constructor: key not allowed): not trusted`);
  });

  it('reads a verifier that does not know the agent (404) as no enrolment', async function () {
    expect(await readVerifierAgent(client, AGENT)).to.equal(undefined);
  });
});
