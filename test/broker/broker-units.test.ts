import { createPublicKey, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import { expect } from 'chai';
import { FlattenedEncrypt, flattenedDecrypt, SignJWT } from 'jose';
import { EarTokenVerifier, TOKEN_CLOCK_SKEW_SECONDS } from '../../lib/broker/ear-token-verifier.js';
import { canonicalJson } from '../../lib/bytes/canonical-json.js';
import { KbsError } from '../../lib/broker/kbs-errors.js';
import { decideResourceAccess } from '../../lib/broker/resource-policy.js';
import { revocationRefusal } from '../../lib/broker/revocation-state.js';
import { ResourceVault } from '../../lib/broker/resource-vault.js';
import { MAX_TEE_PUBKEY_JSON, parseTeePublicKey, TeeKeyCache } from '../../lib/broker/tee-public-key.js';
import { parseResourceUri } from '../../lib/kbs-client/resource-uri.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { encryptResource } from '../../lib/broker/resource-jwe.js';
import { checkAttestation, checkAuthRequest, checkResourcePath } from '../../lib/broker/kbs-request-checks.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/** The member a form check refused (`RequestValidationError.location`), or 'none'. */
function refusedAt(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof RequestValidationError) {
      return error.location;
    }
    throw error;
  }
  return 'none';
}

async function kbsType(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof KbsError) {
      return error.type;
    }
    throw error;
  }
  return 'none';
}

describe('broker: pure parts and hostile input', function () {
  it('canonical JSON follows RFC 8785 (sorted keys by UTF-16 units, no whitespace, ES number form)', function () {
    expect(canonicalJson({ b: [1, 'x', null, true], a: { d: 1e21, c: 0.000001 } })).to.equal('{"a":{"c":0.000001,"d":1e+21},"b":[1,"x",null,true]}');
    // RFC 8785 §3.2.3: "\u20ac" sorts after "\r" and before "\ud83d\ude00" by UTF-16 code units.
    expect(canonicalJson({ '\u{1F600}': 1, '\u20ac': 2, '\r': 3 })).to.equal('{"\\r":3,"€":2,"😀":1}');
    expect(() => canonicalJson({ a: Number.NaN })).to.throw(TypeError);
    expect(() => canonicalJson({ a: 1n })).to.throw(TypeError);
  });

  it('tee-pubkey: refuses private keys, small RSA, other curves, a point off the curve, an RSA exponent of 1 or even, a missing or wrong alg, junk', async function () {
    const ec = (await TeeKeyPair.generate('ec')).publicJwk;
    expect((await parseTeePublicKey(ec)).alg).to.equal('ECDH-ES+A256KW');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const { alg: _alg, ...withoutAlg } = ec;
    const offCurveY = Buffer.from(ec['y'] as string, 'base64url');
    offCurveY[31] = (offCurveY[31] ?? 0) ^ 1;
    const offCurve = { ...ec, y: offCurveY.toString('base64url') };
    const rsa = { ...newRsaKeyPairSync().publicKey.export({ format: 'jwk' }), alg: 'RSA-OAEP-256' };
    expect((await parseTeePublicKey(rsa)).alg).to.equal('RSA-OAEP-256');
    const exponent = (bytes: number[]): Record<string, unknown> => ({ ...rsa, e: Buffer.from(bytes).toString('base64url') });
    expect((await parseTeePublicKey(exponent([0, 1, 0, 1]))).alg, 'a leading zero byte is still 65537').to.equal('RSA-OAEP-256');
    const badExponents = [exponent([1]), exponent([0, 1]), exponent([2]), exponent([1, 0, 0]), exponent([0])];
    for (const bad of [small, p384, priv, withoutAlg, offCurve, ...badExponents, { ...ec, alg: 'RSA1_5' }, { ...ec, x: 'AAAA' }, { kty: 'oct', k: 'AAAA' }, null, [], 'x', { ...ec, x: 'a'.repeat(5000) }]) {
      expect(await kbsType(() => parseTeePublicKey(bad))).to.equal('JweError');
    }
  });

  it('tee-pubkey RSA: a modulus of 2048 to 4096 bits and an odd exponent from 65537 to 2^33 - 1', async function () {
    const rsa = { ...newRsaKeyPairSync().publicKey.export({ format: 'jwk' }), alg: 'RSA-OAEP-256' };
    // WebCrypto imports any odd n: a modulus of a given bit length, its top bit set (not a product of two primes, which the import cannot tell).
    const modulus = (bits: number): string => {
      const bytes = randomBytes(Math.ceil(bits / 8));
      bytes[0] = ((bytes[0] ?? 0) & (0xff >> (8 * bytes.length - bits))) | (0x80 >> (8 * bytes.length - bits));
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) | 1;
      return bytes.toString('base64url');
    };
    const exponent = (value: bigint): string => Buffer.from(value.toString(16).padStart(Math.ceil(value.toString(16).length / 2) * 2, '0'), 'hex').toString('base64url');
    const verdict = (jwk: Record<string, unknown>): Promise<string> => parseTeePublicKey(jwk).then((key) => key.alg, (e: unknown) => (e instanceof KbsError ? e.message : 'thrown'));
    for (const bits of [2048, 3072, 4096]) {
      expect(await verdict({ ...rsa, n: modulus(bits) }), `${bits} bits`).to.equal('RSA-OAEP-256');
    }
    for (const bits of [2047, 4097, 8192]) {
      expect(await verdict({ ...rsa, n: modulus(bits) }), `${bits} bits`).to.equal('tee-pubkey RSA modulus must have 2048 to 4096 bits');
    }
    for (const e of [65537n, 65539n, 2n ** 33n - 1n]) {
      expect(await verdict({ ...rsa, e: exponent(e) }), `e = ${e}`).to.equal('RSA-OAEP-256');
    }
    for (const e of [3n, 17n, 65535n, 65538n, 2n ** 33n, 2n ** 33n + 1n, 2n ** 64n + 1n]) {
      expect(await verdict({ ...rsa, e: exponent(e) }), `e = ${e}`).to.equal('tee-pubkey RSA exponent must be odd, at least 65537 and at most 2^33 - 1');
    }
  });

  it('tee-pubkey P-521: accepted for ECDH-ES+A256KW, its JWE carries a P-521 epk and opens with the node\'s key only; off the curve refused', async function () {
    const pair = await TeeKeyPair.generate('ec-p521');
    expect([pair.publicJwk['crv'], pair.alg]).to.deep.equal(['P-521', 'ECDH-ES+A256KW']);
    const teeKey = await parseTeePublicKey(pair.publicJwk);
    expect(teeKey.alg).to.equal('ECDH-ES+A256KW');
    const secret = new Uint8Array(randomBytes(100));
    for (let answer = 0; answer < 2; answer += 1) {
      const jwe = await encryptResource(secret, teeKey);
      const header = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString('utf8')) as { epk: Record<string, unknown> };
      expect(Object.keys(header.epk)).to.deep.equal(['crv', 'kty', 'x', 'y']);
      expect(header.epk['crv']).to.equal('P-521');
      expect(await pair.decrypt(jwe)).to.deep.equal(secret);
      const other = await TeeKeyPair.generate('ec-p521');
      expect(await other.decrypt(jwe).then(() => true, () => false), 'another P-521 key').to.equal(false);
    }
    const offCurveY = Buffer.from(pair.publicJwk['y'] as string, 'base64url');
    offCurveY[65] = (offCurveY[65] ?? 0) ^ 1;
    expect(await kbsType(() => parseTeePublicKey({ ...pair.publicJwk, y: offCurveY.toString('base64url') }))).to.equal('JweError');
    expect(await kbsType(() => parseTeePublicKey({ ...pair.publicJwk, crv: 'P-256' })), 'P-521 coordinates named P-256').to.equal('JweError');
  });

  it('tee-pubkey: a JWK longer than MAX_TEE_PUBKEY_JSON is refused and not kept by the cache (an /attest body could pin tens of MiB per entry)', async function () {
    const ec = (await TeeKeyPair.generate('ec')).publicJwk;
    const padded = (length: number): Record<string, unknown> => ({ ...ec, kid: 'k'.repeat(length - JSON.stringify({ ...ec, kid: '' }).length) });
    expect(JSON.stringify(padded(MAX_TEE_PUBKEY_JSON)).length).to.equal(MAX_TEE_PUBKEY_JSON);
    expect((await parseTeePublicKey(padded(MAX_TEE_PUBKEY_JSON))).alg, 'at the bound').to.equal('ECDH-ES+A256KW');
    expect(await kbsType(() => parseTeePublicKey(padded(MAX_TEE_PUBKEY_JSON + 1))), 'one character over').to.equal('JweError');
    const cache = new TeeKeyCache();
    const huge = { ...ec, kid: 'k'.repeat(8 * 1024 * 1024) };
    for (let attempt = 0; attempt < 2; attempt += 1) {
      expect(await kbsType(() => cache.parse(huge)), 'refused every time, so never kept').to.equal('JweError');
    }
  });

  it('tee-pubkey cache: the same JWK text is checked once, received or stored; a refused key is refused again', async function () {
    const cache = new TeeKeyCache();
    const ec = (await TeeKeyPair.generate('ec')).publicJwk;
    const first = await cache.parse(ec);
    expect(await cache.parse(JSON.parse(JSON.stringify(ec))), 'the same key sent again').to.equal(first);
    expect(await cache.parseText(JSON.stringify(ec)), 'the text a session stores').to.equal(first);
    const other = await cache.parse((await TeeKeyPair.generate('ec')).publicJwk);
    expect(other).to.not.equal(first);
    const offCurve = { ...ec, x: ec['y'] };
    for (let attempt = 0; attempt < 2; attempt += 1) {
      expect(await kbsType(() => cache.parse(offCurve)), 'refused every time').to.equal('JweError');
    }
    expect(await kbsType(() => cache.parse(undefined))).to.equal('JweError');
  });

  it('resource JWE opens with jose for RSA-OAEP-256 and ECDH-ES+A256KW, and not with another key', async function () {
    for (const [kind, alg] of [['ec', 'ECDH-ES+A256KW'], ['rsa', 'RSA-OAEP-256']] as const) {
      const pair = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : newRsaKeyPairSync();
      const secret = new Uint8Array(randomBytes(100));
      const jwe = await encryptResource(secret, await parseTeePublicKey({ ...pair.publicKey.export({ format: 'jwk' }), alg }));
      const options = { keyManagementAlgorithms: [alg], contentEncryptionAlgorithms: ['A256GCM'] };
      expect((await flattenedDecrypt(jwe, pair.privateKey, options)).plaintext).to.deep.equal(secret);
      const other = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : newRsaKeyPairSync();
      expect(await flattenedDecrypt(jwe, other.privateKey, options).then(() => true, () => false)).to.equal(false);
    }
  });

  it('resource JWE wire format: kbs-types Response members, protected header {alg, enc} and an EC epk only', async function () {
    const rsa = newRsaKeyPairSync().publicKey.export({ format: 'jwk' });
    const rsaJwe = await encryptResource(new Uint8Array(32), await parseTeePublicKey({ ...rsa, alg: 'RSA-OAEP-256' }));
    expect(Object.keys(rsaJwe)).to.deep.equal(['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag']);
    expect(Buffer.from(rsaJwe.protected, 'base64url').toString('utf8')).to.equal('{"alg":"RSA-OAEP-256","enc":"A256GCM"}');
    expect(Buffer.from(rsaJwe.encrypted_key, 'base64url')).to.have.length(256);
    const ec = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), alg: 'ECDH-ES+A256KW' };
    const headers = await Promise.all([0, 1].map(async () => {
      const jwe = await encryptResource(new Uint8Array(32), await parseTeePublicKey(ec));
      expect(Object.keys(jwe)).to.deep.equal(['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag']);
      expect([Buffer.from(jwe.iv, 'base64url').length, Buffer.from(jwe.tag, 'base64url').length, Buffer.from(jwe.encrypted_key, 'base64url').length]).to.deep.equal([12, 16, 40]);
      return JSON.parse(Buffer.from(jwe.protected, 'base64url').toString('utf8')) as { alg: string; enc: string; epk: Record<string, string> };
    }));
    for (const header of headers) {
      expect(Object.keys(header)).to.deep.equal(['alg', 'enc', 'epk']);
      expect([header.alg, header.enc]).to.deep.equal(['ECDH-ES+A256KW', 'A256GCM']);
      expect(Object.keys(header.epk), 'the order trustee writes and its client rebuilds').to.deep.equal(['crv', 'kty', 'x', 'y']);
      expect([header.epk['kty'], header.epk['crv']]).to.deep.equal(['EC', 'P-256']);
    }
    expect(headers[0]?.epk['x'], 'a fresh ephemeral key per answer').to.not.equal(headers[1]?.epk['x']);
  });

  it('resource JWE protected header is the text trustee\'s client rebuilds for its AAD, with or without serde_json preserve_order', async function () {
    /** kbs-types `ProtectedHeader::generate_aad`: `alg`, `enc`, then the other members; serde_json sorts object keys unless built with `preserve_order`. */
    const rebuilt = (protectedHeader: string, sortKeys: boolean): string => {
      const sorted = (value: unknown): unknown => (value !== null && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(Object.keys(value).sort().map((key) => [key, sorted((value as Record<string, unknown>)[key])]))
        : value);
      const { alg, enc, ...others } = JSON.parse(Buffer.from(protectedHeader, 'base64url').toString('utf8')) as Record<string, unknown>;
      return Buffer.from(JSON.stringify({ alg, enc, ...(sortKeys ? (sorted(others) as Record<string, unknown>) : others) })).toString('base64url');
    };
    for (const kind of ['ec', 'rsa'] as const) {
      const key = await TeeKeyPair.generate(kind);
      const jwe = await encryptResource(new Uint8Array(randomBytes(40)), await parseTeePublicKey(key.publicJwk));
      expect(rebuilt(jwe.protected, true), `${kind}, sorted maps`).to.equal(jwe.protected);
      expect(rebuilt(jwe.protected, false), `${kind}, preserve_order`).to.equal(jwe.protected);
    }
    // Why the EC answer is not jose's own JWE: a sorting client rebuilds another header from it, and its tag fails.
    const ec = await TeeKeyPair.generate('ec');
    const byJose = await new FlattenedEncrypt(new Uint8Array(8))
      .setProtectedHeader({ alg: ec.alg, enc: 'A256GCM' })
      .encrypt(createPublicKey({ key: ec.publicJwk as JsonWebKey, format: 'jwk' }));
    expect(rebuilt(byJose.protected ?? '', true)).to.not.equal(byJose.protected);
  });

  it('the client opens the broker\'s JWEs and jose\'s, and refuses another key, tampering and other algorithms', async function () {
    for (const kind of ['ec', 'rsa'] as const) {
      const key = await TeeKeyPair.generate(kind);
      const secret = new Uint8Array(randomBytes(100));
      const jwe = await encryptResource(secret, await parseTeePublicKey(key.publicJwk));
      expect(await key.decrypt(jwe)).to.deep.equal(secret);
      const byJose = await new FlattenedEncrypt(secret)
        .setProtectedHeader({ alg: key.alg, enc: 'A256GCM' })
        .encrypt(createPublicKey({ key: key.publicJwk as JsonWebKey, format: 'jwk' }));
      expect(await key.decrypt(byJose)).to.deep.equal(secret);
      const refused = async (candidate: Parameters<TeeKeyPair['decrypt']>[0], by = key): Promise<boolean> => by.decrypt(candidate).then(() => false, () => true);
      expect(await refused(jwe, await TeeKeyPair.generate(kind)), 'another key').to.equal(true);
      expect(await refused({ ...jwe, ciphertext: Buffer.from(randomBytes(100)).toString('base64url') }), 'ciphertext').to.equal(true);
      expect(await refused({ ...jwe, encrypted_key: Buffer.from(randomBytes(kind === 'ec' ? 40 : 256)).toString('base64url') }), 'key').to.equal(true);
      const header = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString('utf8')) as Record<string, unknown>;
      for (const changed of [{ ...header, enc: 'A128GCM' }, { ...header, alg: 'RSA1_5' }, { ...header, zip: 'DEF' }]) {
        expect(await refused({ ...jwe, protected: Buffer.from(JSON.stringify(changed)).toString('base64url') }), JSON.stringify(changed)).to.equal(true);
      }
    }
  });

  it('attest body form: a good body passes as sent; every malformed member is refused by name', function () {
    const evidence = { agent_id: 'node-1', quote: 'rAAAA:AAAA:AAAA', hash_alg: 'sha256', ima_measurement_list: 'x', mb_measurement_list: 'AAAA' };
    const good = {
      'runtime-data': { nonce: randomBytes(32).toString('base64'), 'tee-pubkey': { kty: 'EC' } },
      'tee-evidence': { primary_evidence: evidence, additional_evidence: '{}' },
      'init-data': { format: 'json', body: '{}' },
    };
    const checked = checkAttestation(good);
    expect(checked.runtimeData, 'runtime-data exactly as sent').to.equal(good['runtime-data']);
    expect(checked.evidence).to.deep.equal(evidence);
    const withNulls = checkAttestation({ ...good, 'init-data': null, 'tee-evidence': { primary_evidence: { ...evidence, ima_measurement_list: null, mb_measurement_list: null } } });
    expect(withNulls.evidence, 'null optional members are absent').to.deep.equal({ agent_id: 'node-1', quote: 'rAAAA:AAAA:AAAA', hash_alg: 'sha256' });
    const withEvidence = (changed: Record<string, unknown>): Record<string, unknown> => ({ ...good, 'tee-evidence': { primary_evidence: { ...evidence, ...changed } } });
    const refusals: [Record<string, unknown>, string][] = [
      [{ ...good, extra: 1 }, 'body.extra'],
      [{ 'tee-evidence': good['tee-evidence'] }, 'body.runtime-data'],
      [{ 'runtime-data': good['runtime-data'] }, 'body.tee-evidence'],
      [{ ...good, 'init-data': { format: 'yaml', body: '' } }, 'body.init-data.format'],
      [{ ...good, 'init-data': { format: 'json', body: 'x'.repeat(64 * 1024 + 1) } }, 'body.init-data.body'],
      [{ ...good, 'init-data': { format: 'json', body: '', more: 1 } }, 'body.init-data.more'],
      [{ ...good, 'runtime-data': { nonce: 'not base64!', 'tee-pubkey': { kty: 'EC' } } }, 'body.runtime-data.nonce'],
      [{ ...good, 'runtime-data': { nonce: '', 'tee-pubkey': { kty: 'EC' } } }, 'body.runtime-data.nonce'],
      [{ ...good, 'runtime-data': { nonce: 'AAAA'.repeat(33), 'tee-pubkey': { kty: 'EC' } } }, 'body.runtime-data.nonce'],
      [{ ...good, 'runtime-data': { nonce: 'AAAA', 'tee-pubkey': {} } }, 'body.runtime-data.tee-pubkey'],
      [{ ...good, 'runtime-data': { nonce: 'AAAA', 'tee-pubkey': [1] } }, 'body.runtime-data.tee-pubkey'],
      [{ ...good, 'runtime-data': { nonce: 'AAAA', 'tee-pubkey': { kty: 'EC' }, more: 1 } }, 'body.runtime-data.more'],
      [{ ...good, 'tee-evidence': {} }, 'body.tee-evidence.primary_evidence'],
      [{ ...good, 'tee-evidence': { primary_evidence: evidence, additional_evidence: 1 } }, 'body.tee-evidence.additional_evidence'],
      [{ ...good, 'tee-evidence': { primary_evidence: evidence, more: 1 } }, 'body.tee-evidence.more'],
      [withEvidence({ extra: 1 }), 'body.tee-evidence.primary_evidence.extra'],
      ...['..', '__proto__', 'a/b', 'a'.repeat(81), 7].map((agentId): [Record<string, unknown>, string] => [withEvidence({ agent_id: agentId }), 'body.tee-evidence.primary_evidence.agent_id']),
      [withEvidence({ quote: 'AAAA:AAAA:AAAA' }), 'body.tee-evidence.primary_evidence.quote'],
      [withEvidence({ quote: `r${'A'.repeat(64 * 1024)}:A:A` }), 'body.tee-evidence.primary_evidence.quote'],
      [withEvidence({ hash_alg: 'md5' }), 'body.tee-evidence.primary_evidence.hash_alg'],
      [withEvidence({ ima_measurement_list: 1 }), 'body.tee-evidence.primary_evidence.ima_measurement_list'],
      [withEvidence({ mb_measurement_list: 'AB==' }), 'body.tee-evidence.primary_evidence.mb_measurement_list'],
      [withEvidence({ mb_measurement_list: '' }), 'body.tee-evidence.primary_evidence.mb_measurement_list'],
    ];
    for (const [body, path] of refusals) {
      expect(refusedAt(() => checkAttestation(body)), path).to.equal(path);
    }
  });

  it('auth body and resource path form: good ones pass; malformed ones are refused by name', function () {
    expect(checkAuthRequest({ version: '0.4.0', tee: 'tpm', 'extra-params': { 'supported-hash-algorithms': ['sha256'] } })).to.deep.equal({ version: '0.4.0', tee: 'tpm' });
    // kbs-types takes any JSON value (the protocol doc sends ""); only its size is bounded.
    for (const extraParams of [null, '', 'x', 42, [], {}, { 'supported-hash-algorithms': 'x'.repeat(64 * 1024 - 32) }]) {
      expect(checkAuthRequest({ version: '0.4.0', tee: 'tpm', 'extra-params': extraParams }), JSON.stringify(extraParams).slice(0, 40)).to.deep.equal({ version: '0.4.0', tee: 'tpm' });
    }
    const authRefusals: [unknown, string][] = [
      ['text', 'body'],
      [[], 'body'],
      [{ tee: 'tpm' }, 'body.version'],
      [{ version: 4, tee: 'tpm' }, 'body.version'],
      [{ version: '0.4.0', tee: 't'.repeat(33) }, 'body.tee'],
      [{ version: '0.4.0', tee: 'tpm', 'extra-params': { 'supported-hash-algorithms': 'x'.repeat(64 * 1024 - 31) } }, 'body.extra-params'],
      [{ version: '0.4.0', tee: 'tpm', more: 1 }, 'body.more'],
      [JSON.parse('{"version": "0.4.0", "tee": "tpm", "extra-params": {"__proto__": {}}}') as unknown, 'body.extra-params.__proto__'],
    ];
    for (const [body, path] of authRefusals) {
      expect(refusedAt(() => checkAuthRequest(body)), JSON.stringify(body)).to.equal(path);
    }
    expect(checkResourcePath({ repository: 'node', type: 'disk-key', tag: 'u.12_a-b' })).to.deep.equal({ repository: 'node', type: 'disk-key', tag: 'u.12_a-b' });
    for (const [params, path] of [
      [{ repository: 'a b', type: 't', tag: 'x' }, 'params.repository'],
      [{ repository: 'r', type: '', tag: 'x' }, 'params.type'],
      [{ repository: 'r', type: 't', tag: 'x'.repeat(129) }, 'params.tag'],
      [{ repository: 'r', type: 't', tag: 'x', more: 'y' }, 'params.more'],
    ] as const) {
      expect(refusedAt(() => checkResourcePath(params)), path).to.equal(path);
    }
  });

  it('resource URIs: only kbs:///repo/type/tag with plain parts', function () {
    expect(parseResourceUri('kbs:///node/disk-key/u12')).to.deep.equal({ repository: 'node', type: 'disk-key', tag: 'u12' });
    for (const bad of ['kbs://host/a/b/c', 'kbs:///a/b', 'kbs:///a/b/c/d', 'http:///a/b/c', 'kbs:///../b/c', 'kbs:///a/b/c d', '']) {
      expect(() => parseResourceUri(bad), bad).to.throw(InvalidParameterValue);
    }
  });

  it('the vault refuses a sealed value that was altered, moved to another path or sealed under another key', function () {
    const vault = new ResourceVault(new Uint8Array(randomBytes(32)));
    const path = { repository: 'r', type: 't', tag: 'a' };
    const sealed = vault.seal(path, new Uint8Array([1, 2, 3]));
    expect(Array.from(vault.open(path, sealed))).to.deep.equal([1, 2, 3]);
    const bytes = Buffer.from(sealed, 'base64');
    bytes[14] = (bytes[14] ?? 0) ^ 1;
    expect(() => vault.open(path, bytes.toString('base64'))).to.throw();
    expect(() => vault.open({ ...path, tag: 'b' }, sealed)).to.throw();
    expect(() => new ResourceVault(new Uint8Array(randomBytes(32))).open(path, sealed)).to.throw();
    expect(() => vault.open(path, 'AAAA')).to.throw();
  });

  it('resource policy: agent ids, groups, and allow_tokens', function () {
    const policy = { agents: ['a'], groups: ['g'], allow_tokens: false };
    expect(decideResourceAccess(policy, { agentId: 'a', groups: [], via: 'session', vectors: null }).allowed).to.equal(true);
    expect(decideResourceAccess(policy, { agentId: 'b', groups: ['g'], via: 'session', vectors: null }).allowed).to.equal(true);
    expect(decideResourceAccess(policy, { agentId: 'b', groups: ['h'], via: 'session', vectors: null }).allowed).to.equal(false);
    expect(decideResourceAccess(policy, { agentId: 'a', groups: [], via: 'token', vectors: null }).allowed).to.equal(false);
    expect(decideResourceAccess({ agents: [], groups: [], allow_tokens: true }, { agentId: 'a', groups: [], via: 'token', vectors: null }).allowed).to.equal(false);
  });

  it('revocation: refuses while in force; after reinstatement only credentials issued before it (tokens in whole seconds, sessions in ms)', function () {
    const reinstatedAt = 1_700_000_100_500;
    expect(revocationRefusal(undefined, 0)).to.equal(undefined);
    expect(revocationRefusal({ revokedAt: 1_700_000_000, reinstatedAt: null }, Date.now())).to.contain('is revoked');
    const reinstated = { revokedAt: 1_700_000_000, reinstatedAt };
    expect(revocationRefusal(reinstated, 1_699_999_990_000), 'issued before the revocation').to.contain('reinstated after this credential');
    expect(revocationRefusal(reinstated, 1_700_000_050_000), 'issued while revoked (another issuer)').to.contain('reinstated after this credential');
    expect(revocationRefusal(reinstated, 1_700_000_100_000), 'same second as the reinstatement').to.equal(undefined);
    expect(revocationRefusal(reinstated, 1_700_000_101_000)).to.equal(undefined);
    expect(revocationRefusal(reinstated, 1_700_000_100_000, 'milliseconds'), 'session begun 500 ms before').to.contain('reinstated after this credential');
    expect(revocationRefusal(reinstated, reinstatedAt, 'milliseconds'), 'session of the very millisecond').to.contain('reinstated after this credential');
    expect(revocationRefusal(reinstated, reinstatedAt + 1, 'milliseconds')).to.equal(undefined);
    // Token issued at .100, revoked at .200, reinstated at .500 of one second: its iat cannot show it came after the revocation.
    const sameSecond = { revokedAt: 1_700_000_100, reinstatedAt };
    expect(revocationRefusal(sameSecond, 1_700_000_100_100), 'token of the second the node was revoked and reinstated in').to.contain('reinstated after this credential');
    expect(revocationRefusal(sameSecond, 1_700_000_101_000), 'token of the next second').to.equal(undefined);
  });

  it('token cache: one verification per token until exp (plus the skew), then refused as expired', async function () {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const verifier = new EarTokenVerifier({ issuers: [{ issuer: 'i', keys: [publicKey] }], maxLifetimeSeconds: 600 });
    const teePubkey = (await TeeKeyPair.generate('ec')).publicJwk;
    const now = Math.floor(Date.now() / 1000);
    const claims = { submods: { cpu0: { 'ear.status': 'affirming', 'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': teePubkey } } } } };
    const sign = (subject: string): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer('i').setSubject(subject).setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300).sign(privateKey);
    const token = await sign('node');
    const first = await verifier.verify(token, now);
    expect(await verifier.verify(token, now + 200), 'a hit is the verified token itself').to.equal(first);
    expect(await verifier.check(token, now + 200), 'check never uses the cache').to.not.equal(first);
    expect(await verifier.verify(await sign('other'), now), 'another token is verified on its own').to.not.equal(first);
    const forged = `${token.slice(0, token.lastIndexOf('.'))}.${Buffer.from(randomBytes(64)).toString('base64url')}`;
    expect(await kbsType(() => verifier.verify(forged, now)), 'the same claims with another signature').to.equal('TokenVerifierError');
    expect(await verifier.verify(token, now + 300 + 29)).to.equal(first);
    const expired = await verifier.verify(token, now + 300 + 31).then(() => undefined, (e: unknown) => e);
    expect(expired).to.be.instanceOf(KbsError);
    expect((expired as KbsError).message).to.contain('expired');
  });

  it('token expiry boundary: accepted until exp plus the skew, refused from that instant on, checked or cached', async function () {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const issuers = [{ issuer: 'i', keys: [publicKey] }];
    const teePubkey = (await TeeKeyPair.generate('ec')).publicJwk;
    const now = Math.floor(Date.now() / 1000);
    const exp = now + 300;
    const claims = { submods: { cpu0: { 'ear.status': 'affirming', 'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': teePubkey } } } } };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer('i').setSubject('node').setIssuedAt(now).setNotBefore(now).setExpirationTime(exp).sign(privateKey);
    const limit = exp + TOKEN_CLOCK_SKEW_SECONDS;
    const outcome = (promise: Promise<unknown>): Promise<string> => promise.then(() => 'accepted', (e: unknown) => (e instanceof KbsError ? e.message : 'thrown'));
    for (const at of [limit - 1, limit - 0.001]) {
      expect(await outcome(new EarTokenVerifier({ issuers, maxLifetimeSeconds: 600 }).check(token, at)), `checked ${at - limit} s from the limit`).to.equal('accepted');
    }
    for (const at of [limit, limit + 0.001, limit + 1]) {
      expect(await outcome(new EarTokenVerifier({ issuers, maxLifetimeSeconds: 600 }).check(token, at)), `checked ${at - limit} s from the limit`).to.equal('token refused: expired');
    }
    const cached = new EarTokenVerifier({ issuers, maxLifetimeSeconds: 600 });
    expect(await outcome(cached.verify(token, now)), 'first verification').to.equal('accepted');
    expect(await outcome(cached.verify(token, limit - 0.001)), 'cache hit just before the limit').to.equal('accepted');
    expect(await outcome(cached.verify(token, limit)), 'at the limit the cache is not used').to.equal('token refused: expired');
  });

  it('token checker: refuses a sub that is not a non-empty string (revocation and policy are looked up by the string)', async function () {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const verifier = new EarTokenVerifier({ issuers: [{ issuer: 'i', keys: [publicKey] }], maxLifetimeSeconds: 600 });
    const teePubkey = (await TeeKeyPair.generate('ec')).publicJwk;
    const now = Math.floor(Date.now() / 1000);
    const submods = { cpu0: { 'ear.status': 'affirming', 'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': teePubkey } } } };
    // SignJWT's setSubject takes strings only: the claim is put in the payload as a forger would.
    const token = (sub: unknown): Promise<string> =>
      new SignJWT({ submods, sub } as Record<string, unknown>).setProtectedHeader({ alg: 'ES256' }).setIssuer('i').setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300).sign(privateKey);
    expect((await verifier.check(await token('node'), now)).agentId).to.equal('node');
    for (const sub of [42, ['node'], { id: 'node' }, true, '']) {
      const error = await verifier.verify(await token(sub), now).then(() => undefined, (e: unknown) => e);
      expect(error, JSON.stringify(sub)).to.be.instanceOf(KbsError);
      expect([(error as KbsError).type, (error as KbsError).message], JSON.stringify(sub)).to.deep.equal(['TokenVerifierError', 'token sub must be a non-empty string']);
    }
  });

  it('token checker: refuses over-long lifetimes, non-affirming status, missing tee-pubkey and garbage', async function () {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const verifier = new EarTokenVerifier({ issuers: [{ issuer: 'i', keys: [publicKey] }], maxLifetimeSeconds: 600 });
    const teePubkey = (await TeeKeyPair.generate('ec')).publicJwk;
    const now = Math.floor(Date.now() / 1000);
    const token = (claims: Record<string, unknown>, lifetime = 300, issuedAt = now): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer('i').setSubject('node').setIssuedAt(issuedAt).setNotBefore(now).setExpirationTime(now + lifetime).sign(privateKey);
    const submods = (status: string, key: unknown): Record<string, unknown> => ({
      submods: { cpu0: { 'ear.status': status, 'ear.veraison.annotated-evidence': { runtime_data_claims: { 'tee-pubkey': key } } } },
    });
    expect((await verifier.check(await token(submods('affirming', teePubkey)))).agentId).to.equal('node');
    const refusals: [string, string][] = [
      [await token(submods('affirming', teePubkey), 3600), 'lifetime'],
      [await token(submods('affirming', teePubkey), 300, now + 120), 'iat'],
      [await token(submods('contraindicated', teePubkey)), 'does not affirm'],
      [await token(submods('affirming', null)), 'no tee-pubkey'],
      [await token(submods('affirming', { kty: 'oct' })), 'unusable'],
      ['not.a.jwt', 'not a JWT'],
      [randomBytes(64).toString('base64url'), 'not a JWT'],
    ];
    for (const [text, detail] of refusals) {
      const error = await verifier.check(text).then(() => undefined, (e: unknown) => e);
      expect(error, detail).to.be.instanceOf(KbsError);
      expect((error as KbsError).message, detail).to.contain(detail);
    }
  });
});
