import { createHash } from 'node:crypto';
import { request } from 'node:https';
import { expect } from 'chai';
import { canonicalJson } from '../../lib/bytes/canonical-json.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { ATTEST_BODY_LIMIT } from '../../lib/broker/kbs-request-checks.js';
import { brokerReportData, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';

/**
 * What clients built on kbs-types and guest-components send, and what they need back: the runtime-data
 * binding with `additional-evidence`, `extra-params` of any JSON value, `alg` on the tee-pubkey, and
 * 404 `InvalidRequestPath` (which stops their retries) for a malformed resource path or a query.
 * PostgreSQL and the software TPM.
 */
const KBS_ERRORS = 'https://github.com/confidential-containers/kbs/errors/';

describe('broker: KBS wire interop (software TPM)', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let node: TestNode;
  let http: KbsHttp;
  let evidence: TpmEvidenceProvider;

  before(async function () {
    broker = await startTestBroker();
    node = await softwareTestNode();
    await broker.admin.putNode(node.agentId, { akTpm: node.akTpm });
    await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'a' }, new Uint8Array([5]), { agents: [node.agentId] });
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    evidence = new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath });
  });

  after(async function () {
    await http?.close();
    await node?.dispose();
    await broker?.dispose();
  });

  async function session(): Promise<{ cookie: string; nonce: string; challenge: Record<string, unknown> }> {
    const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm', 'extra-params': '' } });
    const challenge = auth.body as Record<string, unknown>;
    return { cookie: String(auth.headers['set-cookie']).split(';')[0] as string, nonce: challenge['nonce'] as string, challenge };
  }

  /** Attests on a new session with a quote over `reportData(runtimeData)`, sending `additional` as additional_evidence when given. */
  async function attest(reportData: (runtimeData: { nonce: string; 'tee-pubkey': Readonly<Record<string, unknown>> }) => Uint8Array, additional?: string): Promise<unknown> {
    const { cookie, nonce } = await session();
    const runtimeData = { nonce, 'tee-pubkey': (await TeeKeyPair.generate('ec')).publicJwk };
    const primary = await evidence.primaryEvidence(reportData(runtimeData));
    const teeEvidence = additional === undefined ? { primary_evidence: primary } : { primary_evidence: primary, additional_evidence: additional };
    return http.send('POST', '/kbs/v0/attest', { body: { 'runtime-data': runtimeData, 'tee-evidence': teeEvidence }, headers: { cookie } });
  }

  /**
   * A request whose path goes on the wire as written (no URL normalisation of `..`), with `body` as its
   * bytes, or only a `content-length` of `announced` bytes when no body is given (the broker must answer
   * from the header alone: the request gives up after 5 s).
   */
  function raw(method: 'GET' | 'POST', path: string, body?: string, announced?: number): Promise<{ status: number; body: Record<string, unknown> }> {
    const { hostname, port } = new URL(broker.running.url);
    const length = body === undefined ? (announced ?? 0) : Buffer.byteLength(body);
    const headers = method === 'GET' ? {} : { 'content-type': 'application/json', 'content-length': String(length) };
    return new Promise((resolve, reject) => {
      const sent = request({ hostname, port, path, method, headers, ca: broker.running.caCert, timeout: 5_000 }, (reply) => {
        let text = '';
        reply.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        reply.on('end', () => resolve({ status: reply.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      });
      sent.on('timeout', () => sent.destroy(new Error(`no answer to ${method} ${path} within 5 s`)));
      sent.on('error', reject);
      sent.end(body);
    });
  }

  it('/auth takes extra-params of any JSON value or none, and selects sha256', async function () {
    for (const extraParams of ['', null, {}, [], undefined, { 'supported-hash-algorithms': ['sha384'] }]) {
      const body = { version: '0.4.0', tee: 'tpm', ...(extraParams === undefined ? {} : { 'extra-params': extraParams }) };
      const auth = await http.send('POST', '/kbs/v0/auth', { body });
      expect((auth.body as Record<string, unknown>)['extra-params'], JSON.stringify(extraParams)).to.deep.equal({ 'selected-hash-algorithm': 'sha256' });
    }
  });

  it('binds the quote to SHA-256(JCS({additional-evidence, nonce, tee-pubkey})), not to the two-member object', async function () {
    const twoMember = (runtimeData: object): Uint8Array => new Uint8Array(createHash('sha256').update(canonicalJson(runtimeData), 'utf8').digest());
    const refused = await refusal(attest(twoMember, ''));
    expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'AttestationError']);
    expect(refused.detail).to.contain('evidence refused');
    const passed = (await attest((runtimeData) => brokerReportData(runtimeData), '')) as { body: { token?: unknown } };
    expect(passed.body.token).to.be.a('string');
    const absent = (await attest((runtimeData) => brokerReportData(runtimeData))) as { body: { token?: unknown } };
    expect(absent.body.token, 'additional_evidence absent counts as ""').to.be.a('string');
  });

  it('refuses a non-empty additional_evidence even when the quote binds it: no device evidence is appraised', async function () {
    const devices = JSON.stringify({ nvidia: {} });
    const refused = await refusal(attest((runtimeData) => brokerReportData(runtimeData, devices), devices));
    expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'AttestationError']);
    expect(refused.detail).to.contain('additional_evidence is not appraised');
  });

  it('/auth and /attest refuse a body larger than their own limits (413) before parsing it; /auth takes a compact body at the members\' bounds', async function () {
    const auth = (extraParams: string): string => JSON.stringify({ version: '0.4.0', tee: 'tpm', 'extra-params': extraParams });
    const huge = await raw('POST', '/kbs/v0/auth', auth('x'.repeat(1024 * 1024)));
    expect([huge.status, huge.body['type']]).to.deep.equal([413, `${KBS_ERRORS}SerdeError`]);
    const wide = await raw('POST', '/kbs/v0/auth', auth('\u00e9'.repeat(64 * 1024 - 2)));
    expect(wide.status, 'extra-params of 64 KiB UTF-16 units, two bytes each').to.equal(200);
    const attest = await raw('POST', '/kbs/v0/attest', undefined, ATTEST_BODY_LIMIT + 1);
    expect([attest.status, attest.body['type']]).to.deep.equal([413, `${KBS_ERRORS}SerdeError`]);
  });

  it('refuses a tee-pubkey without alg (kbs-types requires it) with JweError', async function () {
    const { cookie, nonce } = await session();
    const { alg: _alg, ...withoutAlg } = (await TeeKeyPair.generate('ec')).publicJwk;
    const runtimeData = { nonce, 'tee-pubkey': withoutAlg };
    const body = { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: await evidence.primaryEvidence(brokerReportData(runtimeData)), additional_evidence: '' } };
    const error = await refusal(http.send('POST', '/kbs/v0/attest', { body, headers: { cookie } }));
    expect([error.remoteHttpStatus, error.kbsType]).to.deep.equal([401, 'JweError']);
  });

  it('a malformed resource path or a query string is 404 InvalidRequestPath, the path checked first', async function () {
    const bad = await refusal(http.send('GET', '/kbs/v0/resource/node/disk-key/bad%20tag'));
    expect([bad.remoteHttpStatus, bad.kbsType]).to.deep.equal([404, 'InvalidRequestPath']);
    expect(bad.detail).to.match(/^params\.tag: /);
    const both = await refusal(http.send('GET', '/kbs/v0/resource/node/disk-key/bad%20tag?x=1'));
    expect([both.remoteHttpStatus, both.kbsType]).to.deep.equal([404, 'InvalidRequestPath']);
    expect(both.detail).to.match(/^params\.tag: /);
    const query = await refusal(http.send('GET', '/kbs/v0/resource/node/disk-key/a?x=1'));
    expect([query.remoteHttpStatus, query.kbsType, query.detail]).to.deep.equal([404, 'InvalidRequestPath', 'query: not expected on this route']);
    for (const path of ['/kbs/v0/resource/../b/c', '/kbs/v0/resource/a/./c', '/kbs/v0/resource/a/b/..']) {
      const bad = await raw('GET', path);
      expect([bad.status, bad.body['type']], path).to.deep.equal([404, `${KBS_ERRORS}InvalidRequestPath`]);
      expect(bad.body['detail'], path).to.match(/^params\./);
    }
  });
});
