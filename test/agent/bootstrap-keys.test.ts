import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createSoftwareAgent, disposeSharedNodeKey, type SoftwareAgent } from './helpers/software-agent.js';

/** What a Keylime tenant does (spec §9.1): K, V random, U = K xor V; each wrapped RSA-OAEP-SHA1 under the NK. */
function tenantKeys(agent: SoftwareAgent, agentId = agent.uuid) {
  const k = randomBytes(32);
  const v = randomBytes(32);
  const u = Buffer.from(k.map((byte, i) => byte ^ (v[i] ?? 0)));
  const wrap = (key: Buffer): string =>
    publicEncrypt({ key: agent.nk.publicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key).toString('base64');
  return {
    k,
    encryptedU: wrap(u),
    encryptedV: wrap(v),
    authTag: createHmac('sha384', k).update(agentId).digest('hex'),
  };
}

/** Keylime payload layout: IV(16) ‖ AES-256-GCM ciphertext ‖ tag(16), base64. */
function encryptPayload(k: Buffer, plaintext: string): string {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-gcm', k, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

describe('agent keys: ukey, vkey, verify (U/V/K)', function () {
  this.timeout(60_000);
  let agent: SoftwareAgent;

  beforeEach(async function () {
    agent = await createSoftwareAgent();
  });
  afterEach(async function () {
    await agent.dispose();
  });
  after(async function () {
    await disposeSharedNodeKey();
  });

  it('answers keys/verify with "Bootstrap key not yet available." before U and V combined', async function () {
    const reply = await agent.request('GET', '/v2.6/keys/verify?challenge=abc123');
    expect(reply.status).to.equal(400);
    expect(reply.body).to.deep.equal({ code: 400, status: 'Bootstrap key not yet available.', results: {} });
  });

  it('derives K from U then V, answers HMAC-SHA384(K, challenge) and decrypts the payload', async function () {
    const keys = tenantKeys(agent);
    const payload = encryptPayload(keys.k, '#!/bin/sh\necho attested\n');
    const ukey = await agent.request('POST', '/v2.6/keys/ukey', { auth_tag: keys.authTag, encrypted_key: keys.encryptedU, payload });
    expect(ukey.body).to.deep.equal({ code: 200, status: 'Success', results: {} });
    expect((await agent.request('GET', '/v2.6/keys/verify?challenge=abc123')).status).to.equal(400);
    expect((await agent.request('POST', '/v2.6/keys/vkey', { encrypted_key: keys.encryptedV })).status).to.equal(200);
    const challenge = 'Ch4llengeOfTwentyChr';
    const verify = await agent.request('GET', `/v2.6/keys/verify?challenge=${challenge}`);
    expect(verify.status).to.equal(200);
    expect(verify.body.results).to.deep.equal({ hmac: createHmac('sha384', keys.k).update(challenge).digest('hex') });
    expect(agent.keys.current?.payload?.toString('utf8')).to.equal('#!/bin/sh\necho attested\n');
    expect(agent.keys.current?.payloadError).to.equal(undefined);
  });

  it('accepts V before U', async function () {
    const keys = tenantKeys(agent);
    await agent.request('POST', '/v2.6/keys/vkey', { encrypted_key: keys.encryptedV });
    await agent.request('POST', '/v2.6/keys/ukey', { auth_tag: keys.authTag, encrypted_key: keys.encryptedU });
    expect(agent.keys.current?.k.equals(keys.k)).to.equal(true);
  });

  it('takes U and V sent as Keylime does: JSON text labelled application/x-www-form-urlencoded', async function () {
    // Keylime's verifier posts keys/vkey through tornado_requests with a JSON string and no headers;
    // tornado's client then labels any POST body application/x-www-form-urlencoded.
    const keys = tenantKeys(agent);
    const post = (url: string, body: object) =>
      agent.service.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: JSON.stringify(body) });
    expect((await post('/v2.6/keys/vkey', { encrypted_key: keys.encryptedV })).statusCode).to.equal(200);
    expect((await post('/v2.6/keys/ukey', { auth_tag: keys.authTag, encrypted_key: keys.encryptedU })).statusCode).to.equal(200);
    expect(agent.keys.current?.k.equals(keys.k)).to.equal(true);
  });

  it('never combines U and V whose K does not match the auth_tag (wrong V, or a tag for another agent id)', async function () {
    const keys = tenantKeys(agent);
    const other = tenantKeys(agent);
    await agent.request('POST', '/v2.6/keys/ukey', { auth_tag: keys.authTag, encrypted_key: keys.encryptedU });
    await agent.request('POST', '/v2.6/keys/vkey', { encrypted_key: other.encryptedV });
    const forOtherId = tenantKeys(agent, 'another-agent');
    await agent.request('POST', '/v2.6/keys/ukey', { auth_tag: forOtherId.authTag, encrypted_key: forOtherId.encryptedU });
    await agent.request('POST', '/v2.6/keys/vkey', { encrypted_key: forOtherId.encryptedV });
    expect(agent.keys.current).to.equal(undefined);
    expect((await agent.request('GET', '/v2.6/keys/verify?challenge=abc')).body.status).to.equal('Bootstrap key not yet available.');
    await agent.request('POST', '/v2.6/keys/vkey', { encrypted_key: keys.encryptedV });
    expect(agent.keys.current?.k.equals(keys.k)).to.equal(true);
  });

  it('keeps K but reports a payload that does not decrypt', async function () {
    const keys = tenantKeys(agent);
    const payload = encryptPayload(randomBytes(32), 'not for this K');
    await agent.request('POST', '/v2.6/keys/ukey', { auth_tag: keys.authTag, encrypted_key: keys.encryptedU, payload });
    await agent.request('POST', '/v2.6/keys/vkey', { encrypted_key: keys.encryptedV });
    expect(agent.keys.current?.k.equals(keys.k)).to.equal(true);
    expect(agent.keys.current?.payload).to.equal(undefined);
    expect(agent.keys.current?.payloadError).to.equal('payload: cannot be decrypted with the bootstrap key');
  });

  it('refuses a key that does not decrypt under the NK with one uniform message', async function () {
    const notOaep = randomBytes(256).toString('base64');
    for (const [url, body] of [
      ['/v2.6/keys/vkey', { encrypted_key: notOaep }],
      ['/v2.6/keys/ukey', { encrypted_key: notOaep, auth_tag: 'a'.repeat(96) }],
      ['/v2.6/keys/vkey', { encrypted_key: Buffer.from('short').toString('base64') }],
    ] as const) {
      const reply = await agent.request('POST', url, body);
      expect(reply.status).to.equal(400);
      expect(reply.body).to.deep.equal({ code: 400, status: 'encrypted_key: cannot be decrypted with the agent key', results: {} });
    }
  });

  it('refuses a U or V that does not wrap a 32-byte key, so no K but an AES-256 key is ever accepted', async function () {
    const wrap = (key: Buffer): string =>
      publicEncrypt({ key: agent.nk.publicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key).toString('base64');
    for (const size of [0, 1, 16, 31, 33, 200]) {
      // A matching pair of that size: K = U xor V with a valid auth_tag for this agent.
      const k = randomBytes(size);
      const v = randomBytes(size);
      const u = Buffer.from(k.map((byte, i) => byte ^ (v[i] ?? 0)));
      const status = `encrypted_key: must wrap a 32-byte key (AES-256), not ${size} bytes`;
      const ukey = await agent.request('POST', '/v2.6/keys/ukey', { auth_tag: createHmac('sha384', k).update(agent.uuid).digest('hex'), encrypted_key: wrap(u) });
      expect(ukey.body, `U of ${size} bytes`).to.deep.equal({ code: 400, status, results: {} });
      const vkey = await agent.request('POST', '/v2.6/keys/vkey', { encrypted_key: wrap(v) });
      expect(vkey.body, `V of ${size} bytes`).to.deep.equal({ code: 400, status, results: {} });
      expect(agent.keys.current, `K of ${size} bytes`).to.equal(undefined);
    }
    expect((await agent.request('GET', '/v2.6/keys/verify?challenge=abc')).body.status).to.equal('Bootstrap key not yet available.');
  });

  it('keeps at most 24 MiB of payloads waiting for their V: the oldest U is dropped first, the newest always kept', function () {
    const nineMiB = 'x'.repeat(9 * 1024 * 1024);
    const sent = [tenantKeys(agent), tenantKeys(agent), tenantKeys(agent)];
    for (const keys of sent) agent.keys.addU(keys.encryptedU, keys.authTag, encryptPayload(keys.k, nineMiB));
    // The first U (27 MiB waiting with the other two) was dropped: its V finds nothing.
    agent.keys.addV(sent[0]!.encryptedV);
    expect(agent.keys.current).to.equal(undefined);
    agent.keys.addV(sent[1]!.encryptedV);
    expect(agent.keys.current?.k.equals(sent[1]!.k)).to.equal(true);
  });

  it('keeps a U without a payload waiting when later Us with payloads pass the 24 MiB bound', function () {
    const nineMiB = 'x'.repeat(9 * 1024 * 1024);
    const bare = tenantKeys(agent);
    agent.keys.addU(bare.encryptedU, bare.authTag, undefined);
    for (const keys of [tenantKeys(agent), tenantKeys(agent), tenantKeys(agent)]) agent.keys.addU(keys.encryptedU, keys.authTag, encryptPayload(keys.k, nineMiB));
    agent.keys.addV(bare.encryptedV);
    expect(agent.keys.current?.k.equals(bare.k)).to.equal(true);
  });

  const badBodies: [string, unknown, string][] = [
    ['/v2.6/keys/ukey', { encrypted_key: 'AAAA' }, 'body.auth_tag: must be 96 hex digits (HMAC-SHA384)'],
    ['/v2.6/keys/ukey', { encrypted_key: 'AAAA', auth_tag: 'a'.repeat(94) }, 'body.auth_tag: must be 96 hex digits (HMAC-SHA384)'],
    ['/v2.6/keys/ukey', { encrypted_key: 'AAAA', auth_tag: 'g'.repeat(96) }, 'body.auth_tag: must be 96 hex digits (HMAC-SHA384)'],
    ['/v2.6/keys/ukey', { encrypted_key: 'not base64!', auth_tag: 'a'.repeat(96) }, 'body.encrypted_key: must be a base64 string'],
    ['/v2.6/keys/ukey', { encrypted_key: 'AAAA', auth_tag: 'a'.repeat(96), payload: 12 }, 'body.payload: must be a base64 string'],
    ['/v2.6/keys/vkey', {}, 'body.encrypted_key: must be a base64 string'],
    ['/v2.6/keys/vkey', { encrypted_key: 'AAAA', extra: 1 }, 'body.extra: should not exist'],
  ];
  for (const [url, body, status] of badBodies) {
    it(`refuses ${url} ${JSON.stringify(body)}`, async function () {
      const reply = await agent.request('POST', url, body);
      expect(reply.status).to.equal(400);
      expect(reply.body).to.deep.equal({ code: 400, status, results: {} });
    });
  }

  it('refuses a challenge that is not letters and digits', async function () {
    for (const query of ['', '?challenge=', '?challenge=a-b', `?challenge=${'x'.repeat(257)}`]) {
      const reply = await agent.request('GET', `/v2.6/keys/verify${query}`);
      expect(reply.status, query).to.equal(400);
      expect(reply.body.status).to.equal('query.challenge: must be 1 to 256 letters and digits');
    }
  });
});
