import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt, SignJWT, type JWTPayload } from 'jose';
import type { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import type { ResourcePolicy } from '../../lib/broker/resource-policy.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { forEachDatabase } from '../helpers/databases.js';
import { attestedSession, softwareTestNode, startTestBroker, type AttestedSession, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { expectRefused } from './helpers/kbs-refusals.js';

const DISK_KEY = { repository: 'node', type: 'disk-key', tag: 'rack9' };
const DISK_KEY_ROUTE = '/kbs/v0/resource/node/disk-key/rack9';
const JOIN = { repository: 'node', type: 'join', tag: 'rack9' };
const JOIN_ROUTE = '/kbs/v0/resource/node/join/rack9';

/**
 * `required_claims`: a resource meant for nodes whose boot was checked (`configuration` affirming) is
 * refused to a node the broker holds no refstate or `tpm_policy` for (its vector says 0), by cookie and
 * by token, and released to one it checks; on PostgreSQL and PGlite, software TPM, real quotes.
 */
forEachDatabase('broker: resources that require trustworthiness claims', (fixture) => {
  let broker: TestBroker;
  let admin: BrokerAdminClient;
  let http: KbsHttp;
  let tokenKey: KeyObject;
  /** Boot checked: refstate and runtime policy. */
  let checked: TestNode;
  /** Boot not checked: a runtime policy only (`configuration` 0, `executables` 2). */
  let unchecked: TestNode;
  const diskKey = new Uint8Array(Buffer.from('disk key of rack9'));

  const withCookie = (session: AttestedSession, route: string): Promise<unknown> => http.send('GET', route, { headers: { cookie: session.cookie } });
  const withToken = (token: string, route: string): Promise<unknown> => http.send('GET', route, { headers: { authorization: `Bearer ${token}` } });
  const opened = async (session: AttestedSession, reply: Promise<unknown>): Promise<Uint8Array> =>
    session.key.decrypt((await reply as { body: { protected: string; encrypted_key: string; iv: string; ciphertext: string; tag: string } }).body);

  /** The claims of `token` with cpu0's trustworthiness vector replaced, re-signed with this broker's token key. */
  function resigned(token: string, change: (claims: JWTPayload & { submods: Record<string, Record<string, unknown>> }) => void): Promise<string> {
    const claims = structuredClone(decodeJwt(token)) as JWTPayload & { submods: Record<string, Record<string, unknown>> };
    change(claims);
    return new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(tokenKey);
  }

  before(async function () {
    this.timeout(60_000);
    broker = await startTestBroker({}, fixture.database);
    admin = broker.admin;
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    tokenKey = createPrivateKey(await readFile(path.join(broker.dataDir, 'broker', 'token-signing-key.pem'), 'utf8'));
    checked = await softwareTestNode();
    unchecked = await softwareTestNode();
    await admin.putNode(checked.agentId, { akTpm: checked.akTpm, runtimePolicy: await checked.runtimePolicy(), mbRefstate: await checked.refstate(), groups: ['rack9'] });
    await admin.putNode(unchecked.agentId, { akTpm: unchecked.akTpm, runtimePolicy: await unchecked.runtimePolicy(), groups: ['rack9'] });
    await admin.putResource(DISK_KEY, diskKey, { groups: ['rack9'], required_claims: ['configuration'] });
    await admin.putResource(JOIN, new Uint8Array([9]), { groups: ['rack9'] });
  });

  after(async function () {
    await http?.close();
    await broker?.dispose();
    await checked?.dispose();
    await unchecked?.dispose();
  });

  it('background check: released to the node whose boot is checked, refused with the claim and its value to the other', async function () {
    this.timeout(30_000);
    const good = await attestedSession(http, checked);
    expect(await opened(good, withCookie(good, DISK_KEY_ROUTE))).to.deep.equal(diskKey);
    const bare = await attestedSession(http, unchecked);
    const detail = await expectRefused(withCookie(bare, DISK_KEY_ROUTE), 403, 'PolicyDeny', 'cookie, boot not checked');
    expect(detail).to.equal(`node ${unchecked.agentId}: claim configuration is 0 in the session (required affirming: 2..31)`);
    expect(Array.from(await opened(bare, withCookie(bare, JOIN_ROUTE))), 'a resource without required claims: as before').to.deep.equal([9]);
  });

  it('passport: the token /attest issued releases to the checked node and is refused for the other', async function () {
    this.timeout(30_000);
    const good = await attestedSession(http, checked);
    expect(await opened(good, withToken(good.token, DISK_KEY_ROUTE))).to.deep.equal(diskKey);
    const bare = await attestedSession(http, unchecked);
    const detail = await expectRefused(withToken(bare.token, DISK_KEY_ROUTE), 403, 'PolicyDeny', 'token, boot not checked');
    expect(detail).to.equal(`node ${unchecked.agentId}: claim configuration is 0 in token submodule cpu0 (required affirming: 2..31)`);
    expect(Array.from(await opened(bare, withToken(bare.token, JOIN_ROUTE)))).to.deep.equal([9]);
  });

  it('a token whose vector lacks the claim, or with another submodule not affirming it, is refused', async function () {
    this.timeout(30_000);
    const good = await attestedSession(http, checked);
    const same = await resigned(good.token, () => undefined);
    expect(await opened(good, withToken(same, DISK_KEY_ROUTE)), 'the re-signed token as issued is good').to.deep.equal(diskKey);
    const lacking = await resigned(good.token, (claims) => {
      delete (claims.submods['cpu0']?.['ear.trustworthiness-vector'] as Record<string, unknown>)['configuration'];
    });
    expect(await expectRefused(withToken(lacking, DISK_KEY_ROUTE), 403, 'PolicyDeny', 'no configuration claim')).to.equal(
      `node ${checked.agentId}: claim configuration is absent in token submodule cpu0 (required affirming: 2..31)`,
    );
    const warning = await resigned(good.token, (claims) => {
      claims.submods['gpu0'] = { 'ear.status': 'affirming', 'ear.trustworthiness-vector': { configuration: 32 } };
    });
    expect(await expectRefused(withToken(warning, DISK_KEY_ROUTE), 403, 'PolicyDeny', 'gpu0 warns')).to.equal(
      `node ${checked.agentId}: claim configuration is 32 in token submodule gpu0 (required affirming: 2..31)`,
    );
  });

  it('a session attested before vectors were kept (no vector in its row) is 401 for a resource with required claims, so a KBS client attests again', async function () {
    this.timeout(30_000);
    const session = await attestedSession(http, checked);
    expect(await opened(session, withCookie(session, DISK_KEY_ROUTE))).to.deep.equal(diskKey);
    const cleared = await fixture.database.knex('broker_sessions').where({ agent_id: checked.agentId }).update({ trust_vector: null });
    expect(cleared).to.be.greaterThan(0);
    expect(await expectRefused(withCookie(session, DISK_KEY_ROUTE), 401, 'TokenVerifierError', 'old session row')).to.equal(
      `node ${checked.agentId}: claim configuration is required and this credential carries no trustworthiness vector: attest again`,
    );
    expect(Array.from(await opened(session, withCookie(session, JOIN_ROUTE))), 'other resources: as before').to.deep.equal([9]);
  });

  it('KbsClient holding such a session attests again (one new session) and gets the resource', async function () {
    this.timeout(30_000);
    const built = new KbsClientBuilder(broker.running.url)
      .ca(broker.running.caCert)
      .mode('background')
      .evidenceProvider(new TpmEvidenceProvider({ tpm: checked.tpm, agentId: checked.agentId, imaLogPath: checked.emulated.imaLogPath, bootLogPath: checked.emulated.bootLogPath }))
      .build();
    try {
      expect(await built.client.getResource('kbs:///node/disk-key/rack9')).to.deep.equal(diskKey);
      await fixture.database.knex('broker_sessions').where({ agent_id: checked.agentId }).update({ trust_vector: null });
      const sessions = async (): Promise<number> => (await fixture.database.knex('broker_sessions').where({ agent_id: checked.agentId })).length;
      const before = await sessions();
      expect(await built.client.getResource('kbs:///node/disk-key/rack9')).to.deep.equal(diskKey);
      expect(await sessions(), 'one new attested session').to.equal(before + 1);
    } finally {
      await built.close();
    }
  });

  it('the admin route refuses an unknown claim name with 400, naming the member and the name; nothing is stored', async function () {
    const bad = { groups: ['rack9'], required_claims: ['configuration', 'file-system'] } as unknown as Partial<ResourcePolicy>;
    const detail = await expectRefused(admin.putResource({ ...DISK_KEY, tag: 'bad' }, new Uint8Array([1]), bad), 400, 'SerdeError', 'unknown claim');
    expect(detail).to.match(/^body\.policy\.required_claims: .*unknown: "file-system"$/);
    const notList = { groups: [], required_claims: 'configuration' } as unknown as Partial<ResourcePolicy>;
    await expectRefused(admin.putResource({ ...DISK_KEY, tag: 'bad' }, new Uint8Array([1]), notList), 400, 'SerdeError', 'not a list');
    const nullClaims = { groups: [], required_claims: null } as unknown as Partial<ResourcePolicy>;
    await expectRefused(admin.putResource({ ...DISK_KEY, tag: 'bad' }, new Uint8Array([1]), nullClaims), 400, 'SerdeError', 'null, which would drop the requirement');
    expect(await fixture.database.knex('broker_resources').where({ ...DISK_KEY, tag: 'bad' }).select('tag')).to.deep.equal([]);
  });
});
