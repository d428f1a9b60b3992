import { expect } from 'chai';
import { validateDto } from '../../lib/http/dto-validation.js';
import { parseJsonBody } from '../../lib/http/json-guard.js';
import { fastEvidenceBody } from '../../lib/verifier/evidence-body-fast-path.js';
import { EvidenceBody } from '../../lib/verifier/verify-route-dtos.js';
import { maskOf } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { evidenceData } from './helpers/evidence-data.js';

/** Every field `data` may hold; the optional ones are absent from the agent's body, so they are also added. */
const DATA_FIELDS = ['quote', 'nonce', 'hash_alg', 'tpm_ak', 'tpm_ek', 'tpm_policy', 'runtime_policy', 'mb_policy', 'ima_measurement_list', 'mb_log'];

/** Values tried in place of a field: other types, empties, bounds and alphabets of the DTO's rules, and what only class-validator accepts. */
const VALUES: unknown[] = [
  undefined,
  null,
  0,
  true,
  [],
  {},
  '',
  'tpm',
  'x',
  'AAAA',
  'AAA=',
  'AAB=',
  'AAAA\n',
  'not base64!',
  'rAAAA:AAAA:AAAA',
  'r',
  'r' + 'A'.repeat(65_536),
  'r' + 'A'.repeat(65_537),
  'n'.repeat(128),
  'n'.repeat(129),
  'nonce with spaces',
  'sha256',
  's'.repeat(16),
  's'.repeat(17),
  // 20 UTF-16 units, 10 characters: over MaxLength(16) in units only.
  '\u{1F600}'.repeat(10),
  'A'.repeat(4096),
  'A'.repeat(4100),
];

interface Mutation {
  readonly name: string;
  readonly body: unknown;
}

/** The body with `data[field]` (or the body's own `field` when `inData` is false) set to `value`, deleted for undefined. */
function withField(body: Record<string, unknown>, inData: boolean, field: string, value: unknown): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
  const target = inData ? (copy['data'] as Record<string, unknown>) : copy;
  if (value === undefined) {
    delete target[field];
  } else {
    target[field] = value;
  }
  return copy;
}

/** Each one-field change of `body`: every field of the body and of its data set to each value or deleted, plus an unknown field at each level. */
function oneFieldChanges(body: Record<string, unknown>): Mutation[] {
  const changes: Mutation[] = [];
  for (const field of ['type', 'data', 'extra']) {
    for (const value of VALUES) {
      changes.push({ name: `${field}=${JSON.stringify(value)?.slice(0, 24)}`, body: withField(body, false, field, value) });
    }
  }
  for (const field of [...DATA_FIELDS, 'extra']) {
    for (const value of VALUES) {
      changes.push({ name: `data.${field}=${JSON.stringify(value)?.slice(0, 24)}`, body: withField(body, true, field, value) });
    }
  }
  return changes;
}

function dtoAccepts(body: unknown): boolean {
  try {
    validateDto(EvidenceBody, body, 'body');
    return true;
  } catch {
    return false;
  }
}

describe('POST /verify/evidence body: the fast path accepts only what the EvidenceBody DTO accepts', function () {
  const agent = new FakeAgent();
  agent.measure('/usr/bin/bash', 'bash');
  const data = evidenceData(agent, 'fastPathNonce0000001', maskOf([]), { runtime_policy: '{}', mb_policy: 'null', tpm_policy: '{}' });
  const body: Record<string, unknown> = { type: 'tpm', data };

  it("accepts an agent's evidence as it is, as the DTO does", function () {
    const parsed = parseJsonBody(JSON.stringify(body));
    expect(fastEvidenceBody(parsed)).to.equal(parsed);
    expect(dtoAccepts(parsed)).to.equal(true);
  });

  it('never accepts a body the DTO refuses (every one-field change, at both levels)', function () {
    const changes = oneFieldChanges(body);
    let refused = 0;
    let fast = 0;
    for (const change of changes) {
      const accepted = dtoAccepts(change.body);
      refused += accepted ? 0 : 1;
      if (fastEvidenceBody(change.body) !== undefined) {
        fast += 1;
        expect(accepted, `the fast path accepted ${change.name}, which the DTO refuses`).to.equal(true);
      }
    }
    expect(refused, 'changes the DTO refuses').to.be.greaterThan(changes.length / 2);
    expect(fast, 'changes the fast path accepts').to.be.greaterThan(20);
  });

  it('leaves prototype keys, arrays and non-objects to the DTO path', function () {
    const withProto = JSON.parse(`{"type":"tpm","data":${JSON.stringify(data).replace(/^\{/, '{"__proto__":{},')}}`) as unknown;
    expect(fastEvidenceBody(withProto)).to.equal(undefined);
    expect(fastEvidenceBody([body])).to.equal(undefined);
    expect(fastEvidenceBody('body')).to.equal(undefined);
    expect(fastEvidenceBody(undefined)).to.equal(undefined);
    expect(fastEvidenceBody({ type: 'tpm', data: [data] })).to.equal(undefined);
  });

  it('refuses a surrogate pair past a length bound, leaving class-validator to count it', function () {
    const wide = withField(body, true, 'hash_alg', '\u{1F600}'.repeat(10));
    expect(fastEvidenceBody(wide)).to.equal(undefined);
    expect(dtoAccepts(wide)).to.equal(true);
  });
});
