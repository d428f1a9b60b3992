import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { pino } from 'pino';
import { BrokerRepository } from '../../lib/broker/broker-repository.js';
import { BrokerService } from '../../lib/broker/broker-service.js';
import { EarTokenIssuer } from '../../lib/broker/ear-token.js';
import { EarTokenVerifier } from '../../lib/broker/ear-token-verifier.js';
import { KbsError } from '../../lib/broker/kbs-errors.js';
import { ResourceVault } from '../../lib/broker/resource-vault.js';
import { SessionCookies } from '../../lib/broker/session-cookie.js';
import type { StandingCheck } from '../../lib/broker/verifier-standing.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { forEachDatabase } from '../helpers/databases.js';

const ISSUER = 'standing-race';
const AGENT = '0c7d1f7e-9a4b-4c55-8d2e-3f6a1b2c3d4e';
const OTHER_AGENT = '6e2a9c41-5b3d-4f70-9e18-2d4c6a8b0f13';
const SECRET = new Uint8Array([7, 7, 7]);

/**
 * A `verifier_standing` resource waits on the verifier (up to its client's timeout) between reading the
 * node's revocation and releasing: a node revoked, or a resource deleted, during that wait must not get
 * the secret. Before, the revocation read before the verifier call was the only one, and the secret left.
 * The standing check here is a stand-in that changes the rows while it "asks", then answers "in good
 * standing"; the rest (tokens, rows, the release) is the broker's own.
 */
forEachDatabase('broker: a change made while the good-standing check runs', (fixture) => {
  let duringCheck: () => Promise<void> = () => Promise.resolve();
  let broker: BrokerService;
  let issuer: EarTokenIssuer;

  before(function () {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const masterKey = new Uint8Array(randomBytes(32));
    const standing: StandingCheck = {
      refusal: async () => {
        await duringCheck();
        return undefined;
      },
      close: () => undefined,
    };
    issuer = new EarTokenIssuer({ issuer: ISSUER, lifetimeSeconds: 300, privateKey, publicKey });
    broker = new BrokerService({
      repository: new BrokerRepository(fixture.database.knex, fixture.database.kind === 'postgres'),
      vault: new ResourceVault(masterKey),
      issuer,
      tokens: new EarTokenVerifier({ issuers: [{ issuer: ISSUER, keys: [publicKey] }], maxLifetimeSeconds: 300 }),
      cookies: new SessionCookies(masterKey, 60_000),
      log: pino({ level: 'silent' }),
      standing,
    });
  });

  afterEach(function () {
    duringCheck = () => Promise.resolve();
  });

  /** The resource `tag` as node `agentId` gets it with a token of this broker's issuer, issued now. */
  async function fetch(tag: string, agentId = AGENT): Promise<Uint8Array> {
    const key = await TeeKeyPair.generate('ec');
    const token = await issuer.issue({
      agentId,
      akTpm: null,
      teePubkey: key.publicJwk,
      vector: { 'instance-identity': 2, configuration: 0, executables: 0, hardware: 2 },
      pcrs: {},
      reportData: '',
      now: Math.floor(Date.now() / 1000),
    });
    const jwe = await broker.resource({ repository: 'node', type: 'disk-key', tag }, { cookie: undefined, bearer: token });
    return key.decrypt(jwe as Parameters<TeeKeyPair['decrypt']>[0]);
  }

  async function refusalOf(promise: Promise<unknown>): Promise<KbsError> {
    try {
      await promise;
    } catch (error) {
      if (error instanceof KbsError) return error;
      throw error;
    }
    throw new Error('expected a refusal');
  }

  it('refuses a node revoked while the verifier was asked about it', async function () {
    await broker.putResource({ repository: 'node', type: 'disk-key', tag: 'revoked' }, SECRET, { agents: [AGENT], groups: [], allow_tokens: true, verifier_standing: true });
    expect(await fetch('revoked'), 'in good standing and not revoked').to.deep.equal(SECRET);
    duringCheck = () => broker.revocations.revoke(AGENT, 'disk swapped');
    const refused = await refusalOf(fetch('revoked'));
    expect([refused.type, refused.message]).to.deep.equal(['TokenVerifierError', `node ${AGENT} is revoked`]);
  });

  it('refuses a resource deleted while the verifier was asked', async function () {
    const path = { repository: 'node', type: 'disk-key', tag: 'deleted' };
    await broker.putResource(path, SECRET, { agents: [OTHER_AGENT], groups: [], allow_tokens: true, verifier_standing: true });
    duringCheck = async () => {
      await broker.deleteResource(path);
    };
    expect((await refusalOf(fetch('deleted', OTHER_AGENT))).type).to.equal('PluginNotFound');
  });
}, { migrate: true });
