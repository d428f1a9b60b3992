import { IsOptional, IsString } from 'class-validator';
import { expect } from 'chai';
import { pino } from 'pino';
import { DatabaseUnavailable, InvalidConfig, IronlimeError } from '../../interfaces/errors.js';
import { agentApiVersionPolicy, serverApiVersionPolicy } from '../../lib/http/api-version.js';
import { accepted, created, noContent, ok } from '../../lib/http/envelope.js';
import { errorReply } from '../../lib/http/error-envelope.js';
import { ForbiddenError, NotFoundError, RequestValidationError } from '../../lib/http/http-errors.js';
import { createService, type KeylimeService } from '../../lib/http/keylime-service.js';
import { IsBase64String, IsKeylimeAgentId, IsNonce } from '../../lib/http/validators.js';

class AgentParams {
  @IsKeylimeAgentId()
  agent_id!: string;
}

class QuoteBody {
  @IsBase64String()
  quote!: string;

  @IsOptional()
  @IsString()
  note?: string;
}

class NonceQuery {
  @IsNonce()
  nonce!: string;
}

describe('http: service shell (in-process)', () => {
  let service: KeylimeService;
  let handled: number;
  const stored = new Map<string, string>();

  beforeEach(() => {
    handled = 0;
    stored.clear();
    service = createService({ name: 'test', apiVersions: serverApiVersionPolicy(), bodyLimit: 4096 });
    service.route({
      method: 'POST',
      url: '/agents/:agent_id',
      params: AgentParams,
      body: QuoteBody,
      handler: ({ params, body, reply, apiVersion }) => {
        handled += 1;
        stored.set(params.agent_id, body.quote);
        return ok(reply, { agent_id: params.agent_id, apiVersion });
      },
    });
    service.route({
      method: 'GET',
      url: '/agents/:agent_id',
      params: AgentParams,
      query: NonceQuery,
      handler: ({ params, query, reply }) => {
        const quote = stored.get(params.agent_id);
        if (quote === undefined) {
          throw new NotFoundError(`agent id ${params.agent_id} not found`);
        }
        return ok(reply, { quote, nonce: query.nonce });
      },
    });
    service.route({ method: 'GET', url: '/version', versioned: false, handler: ({ reply }) => ok(reply, { current_version: '2.6' }) });
    service.route({ method: 'GET', url: '/info', minVersion: '2.2', handler: ({ reply, apiVersion }) => ok(reply, { apiVersion }) });
    service.route({ method: 'GET', url: '/admin', admin: true, handler: ({ reply }) => ok(reply, {}) });
    service.route({ method: 'PUT', url: '/created', handler: ({ reply }) => created(reply, { a: 1 }) });
    service.route({ method: 'DELETE', url: '/accepted', handler: ({ reply }) => accepted(reply, {}) });
    service.route({ method: 'DELETE', url: '/gone', handler: ({ reply }) => noContent(reply) });
    service.route({
      method: 'GET',
      url: '/typed-error',
      handler: () => {
        throw new IronlimeError('ERR_ATTESTATION_FAILED', 'quote 0: pcr 10: digest mismatch');
      },
    });
    service.route({
      method: 'GET',
      url: '/db-down',
      handler: () => {
        throw new DatabaseUnavailable('connect ECONNREFUSED 10.1.2.3:5432');
      },
    });
    service.route({
      method: 'GET',
      url: '/crash',
      handler: () => {
        throw new TypeError("Cannot read properties of undefined (reading 'secret_db_password')");
      },
    });
  });

  afterEach(async () => {
    await service.close();
  });

  async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: string | object, headers: Record<string, string> = {}) {
    const response = await service.app.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers });
    return { statusCode: response.statusCode, type: response.headers['content-type'], body: response.body === '' ? undefined : response.json() };
  }

  it('answers in the envelope on versioned, major-alias and unversioned routes', async () => {
    expect(await call('POST', '/v2.1/agents/agent-1', { quote: 'QQ==' })).to.deep.equal({
      statusCode: 200,
      type: 'application/json; charset=utf-8',
      body: { code: 200, status: 'Success', results: { agent_id: 'agent-1', apiVersion: '2.1' } },
    });
    expect((await call('POST', '/v2/agents/agent-1', { quote: 'QQ==' })).body.results.apiVersion).to.equal('2.6');
    expect((await call('GET', '/v2.6/agents/agent-1?nonce=abc')).body).to.deep.equal({ code: 200, status: 'Success', results: { quote: 'QQ==', nonce: 'abc' } });
    expect((await call('GET', '/version')).body).to.deep.equal({ code: 200, status: 'Success', results: { current_version: '2.6' } });
    expect((await call('GET', '/v2.6/agents/agent-1/?nonce=abc')).statusCode).to.equal(200);
  });

  it('has helpers for 201, 202 and a body-less 204', async () => {
    expect((await call('PUT', '/v2.6/created')).body).to.deep.equal({ code: 201, status: 'Created', results: { a: 1 } });
    expect((await call('DELETE', '/v2.6/accepted')).body).to.deep.equal({ code: 202, status: 'Accepted', results: {} });
    expect(await call('DELETE', '/v2.6/gone')).to.deep.include({ statusCode: 204, body: undefined });
  });

  it('parses JSON bodies with a JSON content type, another one or none, as Keylime does', async () => {
    const none = await service.app.inject({ method: 'POST', url: '/v2.6/agents/a', payload: '{"quote":"QQ=="}' });
    expect(none.statusCode).to.equal(200);
    expect((await call('POST', '/v2.6/agents/b', '{"quote":"QQ=="}', { 'content-type': 'application/json' })).statusCode).to.equal(200);
    expect((await call('POST', '/v2.6/agents/c', '{"quote":"QQ=="}', { 'content-type': 'application/vnd.api+json' })).statusCode).to.equal(200);
    expect((await call('POST', '/v2.6/agents/d', '{"quote":"QQ=="}', { 'content-type': 'application/octet-stream' })).statusCode).to.equal(200);
    expect(handled).to.equal(4);
  });

  it('refuses 415 on an admin route a body a cross-site page can send without a preflight (text/plain, forms), before reading it', async () => {
    const admin = createService({ name: 't', apiVersions: serverApiVersionPolicy(), insecureAdminForTests: true });
    admin.route({ method: 'POST', url: '/agents/:agent_id', admin: true, params: AgentParams, body: QuoteBody, handler: ({ reply }) => ok(reply, {}) });
    const cases: [string, string][] = [
      ['text/plain', 'text/plain'],
      ['text/plain;charset=UTF-8', 'text/plain'],
      ['Application/X-WWW-Form-Urlencoded', 'application/x-www-form-urlencoded'],
      ['multipart/form-data; boundary=x', 'multipart/form-data'],
    ];
    for (const [header, type] of cases) {
      const reply = await admin.app.inject({ method: 'POST', url: '/v2.6/agents/a', payload: '{"quote":"QQ=="}', headers: { 'content-type': header } });
      expect(reply.statusCode, header).to.equal(415);
      expect(reply.json(), header).to.deep.equal({ code: 415, status: `content-type ${type} not accepted: send application/json`, results: {} });
    }
    await admin.close();
  });

  it('parses a text/plain or form-labelled JSON body on a route that is not admin (Keylime\'s verifier posts keys/vkey through tornado as a form)', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      expect((await call('POST', '/v2.6/agents/a', '{"quote":"QQ=="}', { 'content-type': type })).statusCode, type).to.equal(200);
    }
    expect(handled).to.equal(3);
  });

  it('takes an empty body with a JSON content type as no body (the Python tenant sends one on reactivate/stop)', async () => {
    for (const type of ['application/json', 'application/json; charset=utf-8']) {
      const reply = await call('PUT', '/v2.6/created', '', { 'content-type': type });
      expect(reply, type).to.deep.equal({
        statusCode: 201,
        type: 'application/json; charset=utf-8',
        body: { code: 201, status: 'Created', results: { a: 1 } },
      });
    }
    expect((await call('PUT', '/v2.6/created', '{}', { 'content-type': 'application/json' })).statusCode).to.equal(201);
    expect((await call('PUT', '/v2.6/created', ' ', { 'content-type': 'application/json' })).body).to.deep.equal({ code: 400, status: 'body: must be JSON', results: {} });
    const required = await call('POST', '/v2.6/agents/agent-1', '', { 'content-type': 'application/json' });
    expect(required.body).to.deep.equal({ code: 400, status: 'body: must be a JSON object', results: {} });
    expect(handled).to.equal(0);
  });

  it('refuses invalid input with a 400 naming the location, before the handler touches anything', async () => {
    const cases: [string, string, object | string | undefined, string][] = [
      ['POST', '/v2.6/agents/agent-1', { quote: 'not base64' }, 'body.quote: must be a base64 string'],
      ['POST', '/v2.6/agents/agent-1', { quote: 'QQ==', extra: true }, 'body.extra: should not exist'],
      ['POST', '/v2.6/agents/agent-1', { quote: 'QQ==', note: 5 }, 'body.note: must be a string'],
      ['POST', '/v2.6/agents/agent%2F1', { quote: 'QQ==' }, 'params.agent_id: must be an agent id of letters, digits, "_", "." and "-" (at most 80)'],
      ['POST', '/v2.6/agents/agent-1', '{"quote": ', 'body: must be JSON'],
      ['POST', '/v2.6/agents/agent-1', '[1,2]', 'body: must be a JSON object'],
      ['POST', '/v2.6/agents/agent-1', '{"__proto__": {"quote": "QQ=="}}', 'body.__proto__: key not allowed'],
      ['GET', '/v2.6/agents/agent-1?nonce=a-b', undefined, 'query.nonce: must be 1 to 64 letters and digits'],
      ['GET', '/v2.6/agents/agent-1?nonce=abc&mask=1', undefined, 'query.mask: should not exist'],
      ['GET', '/version?x=1', undefined, 'query: not expected on this route'],
      ['PUT', '/v2.6/created', { a: 1 }, 'body: not expected on this route'],
    ];
    for (const [method, url, payload, status] of cases) {
      const reply = await call(method as 'GET', url, payload, { 'content-type': 'application/json' });
      expect(reply.body, `${method} ${url}`).to.deep.equal({ code: 400, status, results: {} });
    }
    expect(handled).to.equal(0);
    expect(stored.size).to.equal(0);
  });

  it('takes a fast path\'s value when it answers and leaves the rest to the DTO, which produces every refusal', async () => {
    const fastSeen: unknown[] = [];
    // Stands for a strict subset of QuoteBody: only a body whose quote is "QQ==" and nothing else.
    const fastQuote = (plain: unknown): QuoteBody | undefined => {
      fastSeen.push(plain);
      const body = plain as Record<string, unknown>;
      return Object.keys(body).length === 1 && body['quote'] === 'QQ==' ? (plain as QuoteBody) : undefined;
    };
    const fastAgent = (plain: unknown): AgentParams | undefined => ((plain as AgentParams).agent_id === 'fast-1' ? (plain as AgentParams) : undefined);
    service.route({
      method: 'POST',
      url: '/fast/:agent_id',
      params: { dto: AgentParams, fast: fastAgent },
      body: { dto: QuoteBody, fast: fastQuote },
      handler: ({ params, body, reply }) => ok(reply, { params: params instanceof AgentParams, body: body instanceof QuoteBody, quote: body.quote }),
    });
    const post = (agent: string, payload: object) => call('POST', `/v2.6/fast/${agent}`, payload, { 'content-type': 'application/json' });
    expect((await post('fast-1', { quote: 'QQ==' })).body.results).to.deep.equal({ params: false, body: false, quote: 'QQ==' });
    expect((await post('agent-2', { quote: 'QUI=', note: 'n' })).body.results).to.deep.equal({ params: true, body: true, quote: 'QUI=' });
    expect((await post('agent-2', { quote: 'not base64' })).body).to.deep.equal({ code: 400, status: 'body.quote: must be a base64 string', results: {} });
    expect((await post('agent%2F2', { quote: 'QQ==' })).body.status).to.equal('params.agent_id: must be an agent id of letters, digits, "_", "." and "-" (at most 80)');
    expect(fastSeen, 'the body fast path runs only once params passed').to.have.length(3);
  });

  it('runs authenticate after params and query and before the body, and hands its answer to the handler', async () => {
    const authenticated: string[] = [];
    service.route({
      method: 'POST',
      url: '/guarded/:agent_id',
      params: AgentParams,
      body: QuoteBody,
      authenticate: async (request, params) => {
        authenticated.push(params.agent_id);
        if (request.headers['x-token'] !== 'secret') throw new ForbiddenError('token required');
        return `session of ${params.agent_id}`;
      },
      handler: ({ authenticated: session, reply }) => ok(reply, { session }),
    });
    const post = (agent: string, payload: object, token?: string) =>
      call('POST', `/v2.6/guarded/${agent}`, payload, { 'content-type': 'application/json', ...(token === undefined ? {} : { 'x-token': token }) });
    expect((await post('agent%2F1', { quote: 'bad' })).body.status).to.match(/^params\.agent_id: /);
    expect(authenticated, 'bad params: never authenticated').to.deep.equal([]);
    expect((await post('agent-1', { quote: 'bad' })).body).to.deep.equal({ code: 403, status: 'token required', results: {} });
    expect((await post('agent-1', { quote: 'bad' }, 'secret')).body.status).to.equal('body.quote: must be a base64 string');
    expect((await post('agent-1', { quote: 'QQ==' }, 'secret')).body.results).to.deep.equal({ session: 'session of agent-1' });
    expect(authenticated).to.deep.equal(['agent-1', 'agent-1', 'agent-1']);
  });

  it('answers a route\'s errors with its own errorHandler when it has one', async () => {
    service.route({
      method: 'GET',
      url: '/own-errors',
      errorHandler: (error, _request, reply) => reply.code(418).send({ own: error instanceof RequestValidationError }),
      handler: ({ reply }) => ok(reply, {}),
    });
    const reply = await call('GET', '/v2.6/own-errors?x=1');
    expect([reply.statusCode, reply.body]).to.deep.equal([418, { own: true }]);
    expect((await call('GET', '/v2.6/typed-error')).statusCode, 'other routes keep the service\'s mapping').to.equal(409);
  });

  it('hands a rawBody route the body text unparsed, with the body limit and without a body DTO', async () => {
    const texts: (string | undefined)[] = [];
    service.route({ method: 'POST', url: '/raw', rawBody: true, handler: ({ rawBody, body, reply }) => {
      texts.push(rawBody as string | undefined);
      return ok(reply, { keys: Object.keys(body).length });
    } });
    for (const payload of ['{"__proto__": 1, "a": [', '', 'plain text']) {
      expect((await call('POST', '/v2.6/raw', payload, { 'content-type': 'application/json' })).body).to.deep.equal({ code: 200, status: 'Success', results: { keys: 0 } });
    }
    expect(texts.map((t) => t ?? '')).to.deep.equal(['{"__proto__": 1, "a": [', '', 'plain text']);
    expect((await call('POST', '/v2.6/raw', 'x'.repeat(5000))).statusCode).to.equal(413);
    expect(() => service.route({ method: 'POST', url: '/both', rawBody: true, body: QuoteBody, handler: ({ reply }) => ok(reply, {}) })).to.throw(
      InvalidConfig,
      'invalid config: route POST /both: takes its body raw or through a body DTO, not both',
    );
  });

  it('hands a rawBody route a body over 1 MiB as its bytes, undecoded (decoding 29 MiB held the event loop 30-50 ms), and one of 1 MiB as text', async () => {
    const bodies: unknown[] = [];
    service.route({ method: 'POST', url: '/raw-large', rawBody: true, bodyLimit: 4 * 1024 * 1024, handler: ({ rawBody, reply }) => {
      bodies.push(rawBody);
      return ok(reply, {});
    } });
    const large = Buffer.from(`"${'\u00e9'.repeat(600 * 1024)}"`, 'utf8');
    const atBound = Buffer.alloc(1024 * 1024, 0x61);
    for (const payload of [large, atBound]) {
      expect((await service.app.inject({ method: 'POST', url: '/v2.6/raw-large', payload, headers: { 'content-type': 'application/json' } })).statusCode).to.equal(200);
    }
    expect(bodies[0]).to.be.instanceOf(Uint8Array);
    expect(Buffer.from(bodies[0] as Uint8Array).equals(large)).to.equal(true);
    expect(bodies[1]).to.equal('a'.repeat(1024 * 1024));
  });

  it('decodes a body as UTF-8, whether it is ASCII only or not; bytes that are no UTF-8 become U+FFFD', async () => {
    const texts: (string | undefined)[] = [];
    service.route({ method: 'POST', url: '/text', rawBody: true, handler: ({ rawBody, reply }) => {
      texts.push(rawBody as string | undefined);
      return ok(reply, {});
    } });
    const bodies = [Buffer.from('{"quote":"QQ=="}'), Buffer.from('{"note":"\u00e9t\u00e9 \u2713 \ud83d\udd11"}', 'utf8'), Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0x7d])];
    for (const payload of bodies) {
      expect((await service.app.inject({ method: 'POST', url: '/v2.6/text', payload, headers: { 'content-type': 'application/json' } })).statusCode).to.equal(200);
    }
    expect(texts).to.deep.equal(['{"quote":"QQ=="}', '{"note":"\u00e9t\u00e9 \u2713 \ud83d\udd11"}', '{\ufffd(\ufffd}']);
  });

  it('answers 413 in the envelope for a body over the limit', async () => {
    const reply = await call('POST', '/v2.6/agents/agent-1', { quote: 'QUFB'.repeat(2000) });
    expect(reply).to.deep.equal({
      statusCode: 413,
      type: 'application/json; charset=utf-8',
      body: { code: 413, status: 'request body larger than 4096 bytes', results: {} },
    });
    expect(handled).to.equal(0);
  });

  it('answers 400 for an unsupported API version and 404 for unknown routes', async () => {
    expect(await call('GET', '/v3.0/agents/agent-1?nonce=a')).to.deep.include({
      statusCode: 400,
      body: { code: 400, status: 'API Version not supported', results: {} },
    });
    expect((await call('GET', '/v2.1/info')).body).to.deep.equal({ code: 404, status: 'Not Found', results: {} });
    expect((await call('GET', '/v2.2/info')).body.results).to.deep.equal({ apiVersion: '2.2' });
    expect((await call('GET', '/nowhere')).body).to.deep.equal({ code: 404, status: 'Not Found', results: {} });
    expect((await call('DELETE', '/version')).statusCode).to.equal(404);
  });

  it('uses the agent status text when configured so', async () => {
    const agent = createService({ name: 'agent', apiVersions: agentApiVersionPolicy() });
    agent.route({ method: 'GET', url: '/agent/info', minVersion: '2.2', handler: ({ reply }) => ok(reply, {}) });
    const reply = await agent.app.inject({ method: 'GET', url: '/v1.0/agent/info' });
    expect(reply.json()).to.deep.equal({ code: 400, status: 'API version not supported: v1.0', results: {} });
    expect((await agent.app.inject({ method: 'GET', url: '/v2/agent/info' })).json().status).to.equal('API version not supported: v2');
    await agent.close();
  });

  it('maps typed errors through ERROR_CODES, keeps 5xx details in the log, hides untyped errors behind a bare 500', async () => {
    expect((await call('GET', '/v2.6/agents/ghost?nonce=a')).body).to.deep.equal({ code: 404, status: 'agent id ghost not found', results: {} });
    expect((await call('GET', '/v2.6/typed-error')).body).to.deep.equal({ code: 409, status: 'quote 0: pcr 10: digest mismatch', results: {} });
    const crash = await call('GET', '/v2.6/crash');
    expect(crash.body).to.deep.equal({ code: 500, status: 'Internal Server Error', results: {} });
    expect((await call('GET', '/v2.6/db-down')).body).to.deep.equal({ code: 503, status: 'Service Unavailable', results: {} });
    expect(errorReply(new InvalidConfig('x', 'y'))).to.deep.equal({ code: 500, status: 'Internal Server Error' });
    expect(errorReply(new RequestValidationError('body.x', 'must be a string'))).to.deep.equal({ code: 400, status: 'body.x: must be a string' });
  });

  it('refuses admin routes without a verified client certificate (inject has no TLS socket)', async () => {
    expect(await call('GET', '/v2.6/admin')).to.deep.include({ statusCode: 403, body: { code: 403, status: 'client certificate required', results: {} } });
  });

  it('checks the admin requirement before reading the body', async () => {
    const guarded = createService({ name: 't', apiVersions: serverApiVersionPolicy(), bodyLimit: 1024 });
    let reached = false;
    guarded.route({
      method: 'POST',
      url: '/agents/:agent_id',
      admin: true,
      params: AgentParams,
      body: QuoteBody,
      handler: ({ reply }) => {
        reached = true;
        return ok(reply, {});
      },
    });
    const big = await guarded.app.inject({ method: 'POST', url: '/v2.6/agents/a', payload: { quote: 'QUFB'.repeat(1000) } });
    expect(big.json()).to.deep.equal({ code: 403, status: 'client certificate required', results: {} });
    const invalid = await guarded.app.inject({ method: 'POST', url: '/v2.6/agents/a%20b', payload: { quote: '!' } });
    expect(invalid.statusCode).to.equal(403);
    expect(reached).to.equal(false);
    await guarded.close();
  });

  it('lets in-process tests opt out of the admin check, never together with TLS', async () => {
    const open = createService({ name: 't', apiVersions: serverApiVersionPolicy(), insecureAdminForTests: true });
    open.route({ method: 'GET', url: '/admin', admin: true, handler: ({ reply }) => ok(reply, {}) });
    expect((await open.app.inject({ method: 'GET', url: '/v2.6/admin' })).statusCode).to.equal(200);
    await open.close();
    const tls = { cert: '-----BEGIN CERTIFICATE-----', key: '-----BEGIN ', ca: '-----BEGIN ', requestClientCert: true, requireClientCert: 'routes' } as const;
    expect(() => createService({ name: 't', apiVersions: serverApiVersionPolicy(), insecureAdminForTests: true, tls })).to.throw(
      InvalidConfig,
      'invalid config: insecureAdminForTests: cannot be combined with tls',
    );
  });

  it('fails at startup on inconsistent configuration and routes', () => {
    const versions = serverApiVersionPolicy();
    expect(() => createService({ name: 't', apiVersions: versions, bodyLimit: 10 })).to.throw(InvalidConfig, 'invalid config: bodyLimit: must be an integer from 1024 to 268435456');
    expect(() => createService({ name: '', apiVersions: versions })).to.throw(InvalidConfig, 'invalid config: name: must be a non-empty string');
    expect(() =>
      createService({ name: 't', apiVersions: versions, tls: { cert: 'x', key: 'y', ca: 'z', requestClientCert: true, requireClientCert: 'all' } }),
    ).to.throw(InvalidConfig, 'invalid config: tls.cert: must be PEM text');
    expect(() => service.route({ method: 'GET', url: '/x/:id', handler: ({ reply }) => ok(reply, {}) })).to.throw(
      InvalidConfig,
      'invalid config: route GET /x/:id: has path parameters but no params DTO',
    );
    expect(() => service.route({ method: 'GET', url: '/y', minVersion: '2.7', handler: ({ reply }) => ok(reply, {}) })).to.throw(
      InvalidConfig,
      'invalid config: route GET /y: no supported API version is within its min/max',
    );
    expect(() => service.route({ method: 'POST', url: '/z', bodyLimit: 1, handler: ({ reply }) => ok(reply, {}) })).to.throw(
      InvalidConfig,
      'invalid config: route POST /z: bodyLimit: must be an integer from 1024 to 268435456',
    );
  });

  it('logs no line per served request at info (a refusal keeps its line); at debug one access line per request', async () => {
    const logged = async (level: 'info' | 'debug'): Promise<Array<Record<string, unknown>>> => {
      const lines: Array<Record<string, unknown>> = [];
      const logger = pino({ level }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
      const quiet = createService({ name: 'logged', apiVersions: serverApiVersionPolicy(), logger });
      quiet.route({ method: 'GET', url: '/ping', versioned: false, handler: ({ reply }) => ok(reply, {}) });
      quiet.route({ method: 'GET', url: '/ghost', versioned: false, handler: () => { throw new NotFoundError('no ghost'); } });
      expect((await quiet.app.inject({ method: 'GET', url: '/ping' })).statusCode).to.equal(200);
      expect((await quiet.app.inject({ method: 'GET', url: '/ghost' })).statusCode).to.equal(404);
      await quiet.app.close();
      return lines;
    };
    const atInfo = await logged('info');
    expect(atInfo.map((line) => line['msg'])).to.deep.equal(['request refused']);
    const atDebug = await logged('debug');
    const access = atDebug.filter((line) => line['msg'] === 'request completed');
    expect(access.map((line) => [line['url'], line['status']])).to.deep.equal([['/ping', 200], ['/ghost', 404]]);
  });
});
