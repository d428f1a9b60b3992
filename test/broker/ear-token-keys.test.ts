import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { loadOrCreateBrokerKeys } from '../../lib/broker/broker-keys.js';
import { EarTokenIssuer, tokenKeyId } from '../../lib/broker/ear-token.js';
import { EarTokenVerifier } from '../../lib/broker/ear-token-verifier.js';
import { KbsError } from '../../lib/broker/kbs-errors.js';
import { loadTrustedIssuer } from '../../lib/broker/trusted-issuers.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';

/** The verifier's refusal detail for `token`, or 'accepted'. */
async function verdict(verifier: EarTokenVerifier, token: string, now: number): Promise<string> {
  try {
    await verifier.check(token, now);
    return 'accepted';
  } catch (error) {
    if (error instanceof KbsError) {
      return error.message;
    }
    throw error;
  }
}

describe('EAR tokens: the key id trustee looks keys up by, and every submodule affirming', function () {
  const now = Math.floor(Date.now() / 1000);
  let teePubkey: Readonly<Record<string, unknown>>;

  before(async function () {
    teePubkey = (await TeeKeyPair.generate('ec')).publicJwk;
  });

  function sign(key: KeyObject, submods: unknown, kid?: string): Promise<string> {
    return new SignJWT({ submods })
      .setProtectedHeader({ alg: 'ES256', ...(kid === undefined ? {} : { kid }) })
      .setIssuer('i')
      .setSubject('node')
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .sign(key);
  }

  function submod(status: string): Record<string, unknown> {
    return { 'ear.status': status, 'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': teePubkey } } };
  }

  it('the published JWKS gives the token key the kid its tokens carry, so a kid lookup (jose, as trustee) verifies them', async function () {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-ear-kid-'));
    try {
      const keys = await loadOrCreateBrokerKeys(dataDir, 'broker-a');
      const issuer = new EarTokenIssuer({ issuer: 'broker-a', lifetimeSeconds: 300, privateKey: keys.tokenPrivateKey, publicKey: keys.tokenPublicKey });
      const vector = { 'instance-identity': 2, configuration: 0, executables: 0, hardware: 2 };
      const token = await issuer.issue({ agentId: 'node', akTpm: null, teePubkey, vector, pcrs: {}, reportData: '', now });
      const jwks = JSON.parse(await readFile(keys.jwksPath, 'utf8')) as JSONWebKeySet & { issuer: string };
      const kid = decodeProtectedHeader(token).kid;
      expect(jwks.keys.map((key) => key.kid)).to.deep.equal([kid]);
      expect(kid).to.equal(await tokenKeyId(keys.tokenPublicKey));
      const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { algorithms: ['ES256'], currentDate: new Date(now * 1000) });
      expect(payload.sub).to.equal('node');
      const verifier = new EarTokenVerifier({ issuers: [await loadTrustedIssuer(keys.jwksPath)], maxLifetimeSeconds: 600 });
      expect(await verdict(verifier, token, now)).to.equal('accepted');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('checks a token only with the key its kid names, when the issuer has that key; with another or no kid, with every key', async function () {
    const first = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const second = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const verifier = new EarTokenVerifier({ issuers: [{ issuer: 'i', keys: [first.publicKey, second.publicKey] }], maxLifetimeSeconds: 600 });
    const affirming = { cpu0: submod('affirming') };
    const [firstKid, secondKid] = [await tokenKeyId(first.publicKey), await tokenKeyId(second.publicKey)];
    expect(await verdict(verifier, await sign(second.privateKey, affirming, secondKid), now)).to.equal('accepted');
    expect(await verdict(verifier, await sign(second.privateKey, affirming, firstKid), now), 'named key, other signer').to.contain('bad signature');
    expect(await verdict(verifier, await sign(second.privateKey, affirming), now), 'no kid').to.equal('accepted');
    expect(await verdict(verifier, await sign(second.privateKey, affirming, 'some-other-id'), now), 'a kid of no trusted key').to.equal('accepted');
  });

  it('refuses a token unless every submodule is affirming (affirming cpu0, contraindicated gpu0)', async function () {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const verifier = new EarTokenVerifier({ issuers: [{ issuer: 'i', keys: [publicKey] }], maxLifetimeSeconds: 600 });
    expect(await verdict(verifier, await sign(privateKey, { cpu0: submod('affirming'), gpu0: { 'ear.status': 'affirming' } }), now)).to.equal('accepted');
    const refused: [string, unknown][] = [
      ['a contraindicated gpu0', { cpu0: submod('affirming'), gpu0: { 'ear.status': 'contraindicated' } }],
      ['a gpu0 with no status', { cpu0: submod('affirming'), gpu0: {} }],
      ['a null gpu0', { cpu0: submod('affirming'), gpu0: null }],
      ['no cpu0', { gpu0: submod('affirming') }],
      ['a warning cpu0', { cpu0: submod('warning') }],
      ['submods an array', [submod('affirming')]],
      ['submods a string', 'affirming'],
    ];
    for (const [name, submods] of refused) {
      expect(await verdict(verifier, await sign(privateKey, submods), now), name).to.equal('token does not affirm the node');
    }
  });
});
