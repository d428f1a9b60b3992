import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import type { KbsClient } from '../../lib/kbs-client/kbs-client.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair, type TeeKeyKind } from '../../lib/kbs-client/tee-key-pair.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { BrokerRepository } from '../../lib/broker/broker-repository.js';
import { CompiledNodeCache } from '../../lib/broker/broker-node.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { attestedSession, brokerReportData, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';

/**
 * The background-check model on the in-process software TPM (fast); the swtpm suite repeats the
 * essential cases on a real TPM. PostgreSQL, real quotes, real IMA and boot logs.
 */
describe('broker: background check (software TPM)', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let node: TestNode;
  let clients: { client: KbsClient; close(): Promise<void> }[] = [];
  const secret = new Uint8Array(Buffer.from('disk key of rack4-u12'));

  function clientFor(evidenceNode: TestNode, options: { teeKey?: TeeKeyKind; agentId?: string; mode?: 'background' | 'passport' } = {}): KbsClient {
    const built = new KbsClientBuilder(broker.running.url)
      .ca(broker.running.caCert)
      .mode(options.mode ?? 'background')
      .teeKey(options.teeKey ?? 'ec')
      .evidenceProvider(
        new TpmEvidenceProvider({
          tpm: evidenceNode.tpm,
          agentId: options.agentId ?? evidenceNode.agentId,
          imaLogPath: evidenceNode.emulated.imaLogPath,
          bootLogPath: evidenceNode.emulated.bootLogPath,
        }),
      )
      .build();
    clients.push(built);
    return built.client;
  }

  before(async function () {
    broker = await startTestBroker();
    node = await softwareTestNode();
    await broker.admin.putNode(node.agentId, {
      akTpm: node.akTpm,
      runtimePolicy: await node.runtimePolicy(),
      mbRefstate: await node.refstate(),
      groups: ['rack4'],
    });
    await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'rack4-u12' }, secret, { agents: [node.agentId] });
    await broker.admin.putResource({ repository: 'node', type: 'join', tag: 'rack4' }, new Uint8Array([1, 2, 3]), { groups: ['rack4'] });
    await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'other' }, new Uint8Array([9]), { agents: ['someone-else'] });
  });

  after(async function () {
    for (const built of clients) {
      await built.close();
    }
    clients = [];
    await node?.dispose();
    await broker?.dispose();
  });

  it('releases a resource to a good node as a JWE it opens (EC P-256, EC P-521 and RSA tee keys), by agent id and by group', async function () {
    expect(await clientFor(node).getResource('kbs:///node/disk-key/rack4-u12')).to.deep.equal(secret);
    expect(await clientFor(node, { teeKey: 'ec-p521' }).getResource('kbs:///node/disk-key/rack4-u12')).to.deep.equal(secret);
    expect(await clientFor(node, { teeKey: 'ec-p521', mode: 'passport' }).getResource('kbs:///node/disk-key/rack4-u12'), 'by token').to.deep.equal(secret);
    const rsa = clientFor(node, { teeKey: 'rsa' });
    expect(await rsa.getResource('kbs:///node/disk-key/rack4-u12')).to.deep.equal(secret);
    expect(Array.from(await rsa.getResource('kbs:///node/join/rack4'))).to.deep.equal([1, 2, 3]);
  });

  it('the resource JWE opens only with the node\'s tee key', async function () {
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      const { cookie, key } = await attestedSession(http, node);
      const reply = await http.send('GET', '/kbs/v0/resource/node/disk-key/rack4-u12', { headers: { cookie } });
      const jwe = reply.body as { protected: string; encrypted_key: string; iv: string; ciphertext: string; tag: string };
      const header = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString()) as Record<string, unknown>;
      expect([header['alg'], header['enc']]).to.deep.equal(['ECDH-ES+A256KW', 'A256GCM']);
      expect(await key.decrypt(jwe)).to.deep.equal(secret);
      const stranger = await TeeKeyPair.generate('ec');
      let opened = true;
      try {
        await stranger.decrypt(jwe);
      } catch {
        opened = false;
      }
      expect(opened).to.equal(false);
    } finally {
      await http.close();
    }
  });

  it('a used session is refused before its evidence is appraised, whether its attempt passed or failed', async function () {
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    const evidenceProvider = new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath, bootLogPath: node.emulated.bootLogPath });
    const key = await TeeKeyPair.generate('ec');
    const session = async (): Promise<{ cookie: string; runtimeData: { nonce: string; 'tee-pubkey': Readonly<Record<string, unknown>> } }> => {
      const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
      return { cookie: String(auth.headers['set-cookie']).split(';')[0] as string, runtimeData: { nonce: (auth.body as { nonce: string }).nonce, 'tee-pubkey': key.publicJwk } };
    };
    const attest = (cookie: string, runtimeData: object, evidence: object): Promise<unknown> =>
      http.send('POST', '/kbs/v0/attest', { body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence } }, headers: { cookie } });
    try {
      const passed = await session();
      const evidence = await evidenceProvider.primaryEvidence(brokerReportData(passed.runtimeData));
      await attest(passed.cookie, passed.runtimeData, evidence);
      // Evidence that would fail its appraisal: the refusal names the used session, so it came first.
      const forged = { ...evidence, quote: 'rAAAA:AAAA:AAAA' };
      expect((await refusal(attest(passed.cookie, passed.runtimeData, forged))).detail).to.equal('this session has already attested');

      const failed = await session();
      expect((await refusal(attest(failed.cookie, failed.runtimeData, forged))).detail).to.contain('evidence refused');
      const good = await evidenceProvider.primaryEvidence(brokerReportData(failed.runtimeData));
      expect((await refusal(attest(failed.cookie, failed.runtimeData, good))).detail).to.equal('this session has already attested');
    } finally {
      await http.close();
    }
  });

  it('refuses a resource outside the node\'s policy (403 PolicyDeny) and an unknown one (404)', async function () {
    const client = clientFor(node);
    const denied = await refusal(client.getResource('kbs:///node/disk-key/other'));
    expect([denied.remoteHttpStatus, denied.kbsType]).to.deep.equal([403, 'PolicyDeny']);
    const missing = await refusal(client.getResource('kbs:///node/disk-key/nothing'));
    expect([missing.remoteHttpStatus, missing.kbsType]).to.deep.equal([404, 'PluginNotFound']);
  });

  it('refuses another TPM\'s quote claiming the node\'s agent id', async function () {
    const other = await softwareTestNode(node.agentId);
    try {
      const error = await refusal(clientFor(other).getResource('kbs:///node/disk-key/rack4-u12'));
      expect([error.remoteHttpStatus, error.kbsType]).to.deep.equal([401, 'AttestationError']);
      expect(error.detail).to.contain('qoute_validation.quote_validation');
    } finally {
      await other.dispose();
    }
  });

  it('appraises a node put through this broker against what the put compiled, without reading the node back', async function () {
    const fresh = await softwareTestNode();
    const read: string[] = [];
    const findNode = BrokerRepository.prototype.findNode;
    BrokerRepository.prototype.findNode = function (this: BrokerRepository, agentId: string) {
      read.push(agentId);
      return findNode.call(this, agentId);
    };
    try {
      await broker.admin.putNode(fresh.agentId, { akTpm: fresh.akTpm, runtimePolicy: await fresh.runtimePolicy(), groups: ['rack4'] });
      expect(await clientFor(fresh).getResource('kbs:///node/join/rack4')).to.deep.equal(new Uint8Array([1, 2, 3]));
      expect(read, 'node rows read').to.deep.equal([]);
    } finally {
      BrokerRepository.prototype.findNode = findNode;
      await fresh.dispose();
    }
  });

  it('keeps a compiled node with an AK, and drops it when the node is put again without one (tokens only)', async function () {
    const fresh = await softwareTestNode();
    try {
      const cache = new CompiledNodeCache();
      const record = { agentId: fresh.agentId, akTpm: fresh.akTpm, tpmPolicy: '{}', runtimePolicy: null, mbRefstate: null, groups: [] };
      cache.compile(record, 'with-ak');
      expect(cache.lookup(fresh.agentId)?.digest).to.equal('with-ak');
      cache.compile({ ...record, akTpm: null }, 'token-only');
      expect(cache.lookup(fresh.agentId), 'the entry with the old AK is gone').to.equal(undefined);
    } finally {
      await fresh.dispose();
    }
  });

  it('refuses an unknown node and a node whose TPM has no registered AK', async function () {
    const error = await refusal(clientFor(node, { agentId: 'unknown-node' }).getResource('kbs:///node/disk-key/rack4-u12'));
    expect(error.detail).to.contain('not known');
    await broker.admin.putNode('token-only', { groups: ['rack4'] });
    const noAk = await refusal(clientFor(node, { agentId: 'token-only' }).getResource('kbs:///node/join/rack4'));
    expect(noAk.detail).to.contain('no registered AK');
  });

  it('refuses without credentials (TokenNotFound), a wrong version or a tee other than tpm (AttestationError), a malformed path (404)', async function () {
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      const none = await refusal(http.send('GET', '/kbs/v0/resource/node/disk-key/rack4-u12'));
      expect([none.remoteHttpStatus, none.kbsType]).to.deep.equal([401, 'TokenNotFound']);
      const version = await refusal(http.send('POST', '/kbs/v0/auth', { body: { version: '0.1.1', tee: 'tpm' } }));
      expect([version.remoteHttpStatus, version.kbsType]).to.deep.equal([401, 'AttestationError']);
      const tee = await refusal(http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'snp' } }));
      expect(tee.kbsType).to.equal('AttestationError');
      const malformed = await refusal(http.send('POST', '/kbs/v0/auth', { body: { version: 4, tee: 'tpm' } }));
      expect([malformed.remoteHttpStatus, malformed.kbsType]).to.deep.equal([401, 'SerdeError']);
      const path = await refusal(http.send('GET', '/kbs/v0/resource/node/..%2F..%2Fetc/x'));
      expect([path.remoteHttpStatus, path.kbsType]).to.deep.equal([404, 'InvalidRequestPath']);
    } finally {
      await http.close();
    }
  });

  it('hostile attest bodies are refused with a KBS type, never a 500', async function () {
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      const evidenceProvider = new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath });
      const good = await evidenceProvider.primaryEvidence(new Uint8Array(32));
      const quote = good['quote'] as string;
      const bodies: ((nonce: string, key: Record<string, unknown>) => unknown)[] = [
        () => randomBytes(200).toString('base64'),
        () => ({}),
        (nonce, key) => ({ 'runtime-data': { nonce, 'tee-pubkey': key } }),
        (nonce, key) => ({ 'runtime-data': { nonce, 'tee-pubkey': key }, 'tee-evidence': { primary_evidence: { ...good, quote: quote.slice(0, quote.length / 2) } } }),
        (nonce, key) => ({ 'runtime-data': { nonce, 'tee-pubkey': key }, 'tee-evidence': { primary_evidence: { ...good, quote: 'rAAAA:AAAA:AAAA' } } }),
        (nonce, key) => ({ 'runtime-data': { nonce, 'tee-pubkey': key }, 'tee-evidence': { primary_evidence: { ...good, ima_measurement_list: randomBytes(3000).toString('latin1') } } }),
        (nonce, key) => ({ 'runtime-data': { nonce, 'tee-pubkey': key }, 'tee-evidence': { primary_evidence: { ...good, mb_measurement_list: randomBytes(3000).toString('base64') } } }),
        (nonce, key) => ({ 'runtime-data': { nonce, 'tee-pubkey': key }, 'tee-evidence': { primary_evidence: { ...good, extra: 1 } } }),
        (nonce) => ({ 'runtime-data': { nonce, 'tee-pubkey': { kty: 'RSA', n: 'AQAB', e: 'AQAB' } }, 'tee-evidence': { primary_evidence: good } }),
      ];
      for (const [index, body] of bodies.entries()) {
        const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
        const cookie = String(auth.headers['set-cookie']).split(';')[0] as string;
        const key = (await TeeKeyPair.generate('ec')).publicJwk as Record<string, unknown>;
        const error = await refusal(http.send('POST', '/kbs/v0/attest', { body: body((auth.body as { nonce: string }).nonce, key), headers: { cookie } }));
        expect([index, error.remoteHttpStatus], `body ${index}`).to.deep.equal([index, 401]);
        expect(error.kbsType, `body ${index}`).to.be.oneOf(['SerdeError', 'AttestationError', 'JweError']);
      }
    } finally {
      await http.close();
    }
  });

  it('admin routes demand a client certificate (401 AdminAuth)', async function () {
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    try {
      const error = await refusal(http.send('POST', '/kbs/v0/admin/revocations/x', { body: {} }));
      expect([error.remoteHttpStatus, error.kbsType]).to.deep.equal([401, 'AdminAuth']);
    } finally {
      await http.close();
    }
  });

  it('a tampered node (a binary outside its runtime policy) is refused', async function () {
    const tampered = await softwareTestNode();
    try {
      await broker.admin.putNode(tampered.agentId, { akTpm: tampered.akTpm, runtimePolicy: await tampered.runtimePolicy(), mbRefstate: await tampered.refstate() });
      await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'tampered' }, secret, { agents: [tampered.agentId] });
      expect(await clientFor(tampered).getResource('kbs:///node/disk-key/tampered')).to.deep.equal(secret);
      await tampered.emulated.measure([{ path: '/usr/bin/rootkit', content: new Uint8Array(Buffer.from('evil')) }]);
      const error = await refusal(clientFor(tampered).getResource('kbs:///node/disk-key/tampered'));
      expect(error.kbsType).to.equal('AttestationError');
      expect(error.detail).to.contain('ima.');
    } finally {
      await tampered.dispose();
    }
  });

  it('a revoked node loses its session at once and cannot attest again until reinstated', async function () {
    const client = clientFor(node);
    expect(await client.getResource('kbs:///node/join/rack4')).to.have.length(3);
    await broker.admin.revoke(node.agentId, 'failed attestation');
    const error = await refusal(client.getResource('kbs:///node/join/rack4'));
    expect(error.kbsType).to.equal('AttestationError');
    expect(error.detail).to.contain('is revoked');
    await broker.admin.reinstate(node.agentId);
    expect(await clientFor(node).getResource('kbs:///node/join/rack4')).to.have.length(3);
  });

  it('a node revoked and reinstated within one second fetches at once with a new token (the reinstatement answers in the next second)', async function () {
    // At the start of a second, so that the revocation, the reinstatement and the token's attestation
    // would all fall in it: a token of the revocation's second is refused after a reinstatement.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    await broker.admin.revoke(node.agentId, 'operator: drop every credential');
    await broker.admin.reinstate(node.agentId);
    expect(await clientFor(node, { mode: 'passport' }).getResource('kbs:///node/join/rack4'), 'a new token works at once').to.have.length(3);
  });

  it('a reinstatement never re-enables a token or session from before it; a fresh attestation works', async function () {
    const passport = clientFor(node, { mode: 'passport' });
    const token = await passport.token();
    expect(await passport.getResource('kbs:///node/join/rack4')).to.have.length(3);
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    const withOldToken = (): Promise<unknown> =>
      http.send('GET', '/kbs/v0/resource/node/join/rack4', { headers: { authorization: `Bearer ${token}` } });
    try {
      await broker.admin.revoke(node.agentId, 'failed attestation');
      expect((await refusal(withOldToken())).detail).to.contain('is revoked');
      await broker.admin.reinstate(node.agentId);
      const stale = await refusal(withOldToken());
      expect([stale.remoteHttpStatus, stale.kbsType]).to.deep.equal([401, 'TokenVerifierError']);
      expect(stale.detail).to.contain('reinstated after this credential');
      expect(await clientFor(node, { mode: 'passport' }).getResource('kbs:///node/join/rack4'), 'a new token works').to.have.length(3);
      expect(await clientFor(node).getResource('kbs:///node/join/rack4'), 'a new session works').to.have.length(3);
    } finally {
      await http.close();
    }
  });

  it('the software TPM used here is a real quoting TPM (sanity: a fresh one has a different AK)', async function () {
    const tpm = await createSoftwareTpm();
    const ak = await tpm.ensureAk('sha256');
    expect(Buffer.from(ak.akPublic).toString('base64')).to.not.equal(node.akTpm);
  });
});
