import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { fastAttestationBody, fastAuthRequest, fastResourcePath } from '../../lib/broker/kbs-body-fast-path.js';
import { KbsAttestationBody, KbsRequestBody, ResourcePathParams } from '../../lib/broker/kbs-dtos.js';
import { validateDto, type DtoClass, type RequestLocation } from '../../lib/http/dto-validation.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { parseJsonBody } from '../../lib/http/json-guard.js';

/** `/auth` as `KbsClient` sends it. */
const AUTH = { version: '0.4.0', tee: 'tpm', 'extra-params': { 'supported-hash-algorithms': ['sha256', 'sha384', 'sha512'] } };

/** `/attest` as `KbsClient` sends it for a node with IMA and measured boot (logs shortened). */
const ATTESTATION = {
  'runtime-data': {
    nonce: randomBytes(32).toString('base64'),
    'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: randomBytes(32).toString('base64url'), y: randomBytes(32).toString('base64url') },
  },
  'tee-evidence': {
    primary_evidence: {
      agent_id: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000',
      quote: `r${randomBytes(60).toString('base64')}:${randomBytes(40).toString('base64')}:${randomBytes(30).toString('base64')}`,
      hash_alg: 'sha256',
      ima_measurement_list: '10 abc ima-ng sha256:00 /usr/bin/bash\n',
      mb_measurement_list: randomBytes(48).toString('base64'),
    },
    additional_evidence: '{}',
  },
  'init-data': { format: 'json', body: '{}' },
};

const RESOURCE_PATH = { repository: 'node', type: 'disk-key', tag: 'u.12_a-b' };

/** Values at and just past every bound of the DTOs, other types, and what only class-validator accepts. */
const EDGES: unknown[] = [
  null,
  undefined,
  0,
  1.5,
  true,
  '',
  'x',
  '..',
  'a b',
  'not base64!',
  'AB==',
  'AAAA',
  'md5',
  'yaml',
  'sha1',
  'toml',
  'AAAA:AAAA:AAAA',
  'rAAAA:AAAA:AAAA',
  'x'.repeat(32),
  'x'.repeat(33),
  'x'.repeat(128),
  'x'.repeat(129),
  'AAAA'.repeat(32),
  'AAAA'.repeat(33),
  'x'.repeat(64 * 1024 - 2),
  'x'.repeat(64 * 1024 - 1),
  'x'.repeat(64 * 1024 + 1),
  `r${'A'.repeat(64 * 1024)}:A:A`,
  '\u{1F600}'.repeat(17),
  'a'.repeat(81),
  '__proto__',
  [],
  [1],
  [{ kty: 'EC' }],
  {},
  { kty: null },
  { kty: 1 },
  { hasOwnProperty: 'x' },
];

type Mutation =
  | { readonly kind: 'set'; readonly at: number; readonly value: unknown }
  | { readonly kind: 'delete'; readonly at: number }
  | { readonly kind: 'add'; readonly at: number; readonly key: string; readonly value: unknown };

/** Every path to a value inside `body`, the body itself first. */
function pathsOf(body: unknown, path: readonly string[] = []): (readonly string[])[] {
  if (body === null || typeof body !== 'object') return [path];
  return [path, ...Object.keys(body).flatMap((key) => pathsOf((body as Record<string, unknown>)[key], [...path, key]))];
}

const anyValue: fc.Arbitrary<unknown> = fc.oneof(fc.constantFrom(...EDGES), fc.anything(), fc.string(), fc.base64String({ maxLength: 200 }));

function mutationOf(paths: number): fc.Arbitrary<Mutation> {
  const at = fc.nat({ max: paths - 1 });
  return fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at, value: anyValue }),
    fc.record({ kind: fc.constant('delete' as const), at }),
    fc.record({ kind: fc.constant('add' as const), at, key: fc.constantFrom('extra', '__proto__', 'constructor', 'nonce', 'quote', 'kty'), value: anyValue }),
  );
}

/** A copy of `body` with the mutations applied (a `__proto__` key becomes an own member, as JSON.parse makes it). */
function mutated(body: unknown, mutations: readonly Mutation[]): unknown {
  const paths = pathsOf(body);
  let copy = JSON.parse(JSON.stringify(body)) as unknown;
  for (const mutation of mutations) {
    const path = paths[mutation.at] ?? [];
    if (path.length === 0 && mutation.kind === 'set') {
      copy = mutation.value;
      continue;
    }
    const parentPath = mutation.kind === 'add' ? path : path.slice(0, -1);
    const parent = parentPath.reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), copy);
    if (parent === null || typeof parent !== 'object') continue;
    const target = parent as Record<string, unknown>;
    const key = mutation.kind === 'add' ? mutation.key : (path[path.length - 1] ?? '');
    if (mutation.kind === 'delete') {
      delete target[key];
    } else {
      Object.defineProperty(target, key, { value: mutation.value, enumerable: true, writable: true, configurable: true });
    }
  }
  return copy;
}

/** Whether `validateDto` takes `value` (any throw is a refusal: the property needs only the verdict). */
function dtoAccepts(dto: DtoClass<object>, value: unknown, location: RequestLocation): boolean {
  return passes(() => validateDto(dto, value, location));
}

function passes(action: () => unknown): boolean {
  try {
    action();
  } catch {
    return false;
  }
  return true;
}

/** The property under test: whatever `fast` accepts, the DTO accepts. */
function fastIsSubset(body: unknown, fast: (value: unknown) => unknown, dto: DtoClass<object>, location: RequestLocation): fc.IPropertyWithHooks<[readonly Mutation[]]> {
  return fc.property(fc.array(mutationOf(pathsOf(body).length), { minLength: 1, maxLength: 3 }), (mutations) => {
    const value = mutated(body, mutations);
    if (fast(value) !== undefined) {
      expect(dtoAccepts(dto, value, location), `fast path accepted ${JSON.stringify(value)?.slice(0, 300)}`).to.equal(true);
    }
  });
}

describe('KBS bodies: the fast path accepts only what the DTOs accept', function () {
  const cases = [
    { name: 'auth body', body: AUTH, fast: fastAuthRequest, dto: KbsRequestBody as DtoClass<object>, location: 'body' as const },
    { name: 'attest body', body: ATTESTATION, fast: fastAttestationBody, dto: KbsAttestationBody as DtoClass<object>, location: 'body' as const },
    { name: 'resource path', body: RESOURCE_PATH, fast: fastResourcePath, dto: ResourcePathParams as DtoClass<object>, location: 'params' as const },
  ];

  for (const { name, body, fast, dto, location } of cases) {
    it(`takes the client's ${name} unchanged, parsed or as a prototype-less params object, and so does the DTO`, function () {
      for (const sent of [parseJsonBody(JSON.stringify(body)), Object.assign(Object.create(null) as object, body)]) {
        expect([fast(sent) === sent, dtoAccepts(dto, sent, location)]).to.deep.equal([true, true]);
      }
    });

    it(`never accepts a ${name} the DTO refuses (fast-check: one to three mutations anywhere)`, function () {
      this.timeout(60_000);
      fc.assert(fastIsSubset(body, fast, dto, location), { numRuns: 3000 });
    });

    it(`the ${name} mutations reach both verdicts, so the property can fail`, function () {
      this.timeout(60_000);
      const samples = fc.sample(fc.array(mutationOf(pathsOf(body).length), { minLength: 1, maxLength: 3 }), { numRuns: 500, seed: 14 });
      const values = samples.map((mutations) => mutated(body, mutations));
      const refused = values.filter((value) => !dtoAccepts(dto, value, location)).length;
      const fastAccepted = values.filter((value) => fast(value) !== undefined).length;
      expect(refused, 'mutations the DTO refuses').to.be.greaterThan(values.length / 3);
      expect(fastAccepted, 'mutations the fast path accepts').to.be.greaterThan(0);
      // A fast path that accepted everything would be caught.
      expect(fc.check(fastIsSubset(body, (value) => value, dto, location), { numRuns: 500, seed: 14 }).failed).to.equal(true);
    });
  }

  it('leaves null optional members, non-string JWK members and surrogate pairs to the DTO, which accepts them', function () {
    const evidence = ATTESTATION['tee-evidence'].primary_evidence;
    const accepted: unknown[] = [
      { ...ATTESTATION, 'init-data': null },
      { ...ATTESTATION, 'tee-evidence': { primary_evidence: { ...evidence, ima_measurement_list: null } } },
      { ...ATTESTATION, 'runtime-data': { ...ATTESTATION['runtime-data'], 'tee-pubkey': { kty: 'EC', key_ops: [] } } },
      { ...ATTESTATION, 'tee-evidence': { primary_evidence: evidence, additional_evidence: '\u{1F600}'.repeat(40 * 1024) } },
    ];
    for (const value of accepted) {
      expect(fastAttestationBody(value)).to.equal(undefined);
      expect(dtoAccepts(KbsAttestationBody, value, 'body')).to.equal(true);
    }
  });

  it('takes extra-params of any JSON value up to the bound, as kbs-types does, on both paths', function () {
    for (const extraParams of [null, '', 'x'.repeat(64 * 1024 - 2), 0, [], {}, [{ a: [null] }]]) {
      const body = { ...AUTH, 'extra-params': extraParams };
      expect([fastAuthRequest(body) === body, dtoAccepts(KbsRequestBody, body, 'body')], JSON.stringify(extraParams).slice(0, 20)).to.deep.equal([true, true]);
    }
    const over = { ...AUTH, 'extra-params': 'x'.repeat(64 * 1024 - 1) };
    expect([fastAuthRequest(over), dtoAccepts(KbsRequestBody, over, 'body')]).to.deep.equal([undefined, false]);
  });

  it('the DTO refuses nested arrays, a tee-pubkey of null members and one with a hasOwnProperty member, as a validation error', function () {
    const refused: unknown[] = [
      { ...ATTESTATION, 'runtime-data': [ATTESTATION['runtime-data']] },
      { ...ATTESTATION, 'tee-evidence': [ATTESTATION['tee-evidence']] },
      { ...ATTESTATION, 'tee-evidence': { primary_evidence: [ATTESTATION['tee-evidence'].primary_evidence] } },
      { ...ATTESTATION, 'init-data': [ATTESTATION['init-data']] },
      { ...ATTESTATION, 'runtime-data': { ...ATTESTATION['runtime-data'], 'tee-pubkey': { kty: null } } },
      { ...ATTESTATION, 'runtime-data': { ...ATTESTATION['runtime-data'], 'tee-pubkey': {} } },
      { ...ATTESTATION, 'runtime-data': { ...ATTESTATION['runtime-data'], 'tee-pubkey': { hasOwnProperty: 'x' } } },
    ];
    for (const value of refused) {
      expect(() => validateDto(KbsAttestationBody, value, 'body'), JSON.stringify(value).slice(0, 120)).to.throw(RequestValidationError);
    }
    expect(fastAttestationBody(refused[refused.length - 1])).to.equal(undefined);
  });
});
