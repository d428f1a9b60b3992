import { expect } from 'chai';
import { validateDto, type DtoClass, type RequestLocation } from '../../lib/http/dto-validation.js';
import { parseJsonBody } from '../../lib/http/json-guard.js';
import { fastAgentParams, fastCapabilitiesBody, fastEvidenceBody, fastIndexParams } from '../../lib/verifier/push/push-body-fast-path.js';
import { AttestationIndexParams, CapabilitiesBody, EvidenceBody, PushAgentParams } from '../../lib/verifier/push/push-dtos.js';

/** Phase 1's body as `PushAgent.capabilities` sends it (an ECC AK, a UEFI log and an IMA log). */
const CAPABILITIES = {
  data: {
    type: 'attestation',
    attributes: {
      evidence_supported: [
        {
          evidence_class: 'certification',
          evidence_type: 'tpm_quote',
          capabilities: {
            component_version: '2.0',
            hash_algorithms: ['sha256'],
            signature_schemes: ['ecdsa'],
            available_subjects: { sha256: Array.from({ length: 24 }, (_, i) => i) },
            certification_keys: [
              {
                key_class: 'asymmetric',
                key_algorithm: 'ecc',
                key_size: 256,
                server_identifier: 'ak',
                allowable_signature_schemes: ['ecdsa'],
                allowable_hash_algorithms: ['sha256'],
                public: Buffer.from('an AK public area').toString('base64'),
              },
            ],
          },
        },
        {
          evidence_class: 'log',
          evidence_type: 'uefi_log',
          capabilities: { evidence_version: '2.1', entry_count: 0, supports_partial_access: false, appendable: false, formats: ['application/octet-stream'] },
        },
        { evidence_class: 'log', evidence_type: 'ima_log', capabilities: { entry_count: 12, supports_partial_access: true, appendable: true, formats: ['text/plain'] } },
      ],
      system_info: { boot_time: '2026-12-03T08:00:00Z' },
    },
  },
};

/** Phase 2's body as `PushAgent.evidence` sends it. */
const EVIDENCE = {
  data: {
    type: 'attestation',
    attributes: {
      evidence_collected: [
        {
          evidence_class: 'certification',
          evidence_type: 'tpm_quote',
          data: { message: Buffer.from('TPMS_ATTEST').toString('base64'), signature: Buffer.from('TPMT_SIGNATURE!').toString('base64'), subject_data: 'AAAA' },
        },
        { evidence_class: 'log', evidence_type: 'uefi_log', data: { entries: Buffer.from('a boot log').toString('base64') } },
        { evidence_class: 'log', evidence_type: 'ima_log', data: { entries: '10 abc ima-ng sha256:00 /usr/bin/bash\n', entry_count: 1 } },
      ],
    },
  },
};

/** `meta` (which a newer Rust agent may put on evidence data, and Keylime on capabilities) is accepted and ignored. */
const CAPABILITIES_WITH_META = JSON.parse(JSON.stringify(CAPABILITIES)) as typeof CAPABILITIES;
(CAPABILITIES_WITH_META.data.attributes.evidence_supported[0]!.capabilities as Record<string, unknown>)['meta'] = { note: 'ignored' };
const EVIDENCE_WITH_META = JSON.parse(JSON.stringify(EVIDENCE)) as typeof EVIDENCE;
(EVIDENCE_WITH_META.data.attributes.evidence_collected[0]!.data as Record<string, unknown>)['meta'] = { pcrs: { sha256: { '10': '0x00' } } };

const AGENT_PARAMS = { agent_id: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000' };
const INDEX_PARAMS = { agent_id: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000', index: 'latest' };

/** Values put in place of each field: other types, empties, bounds, and what only class-validator accepts. */
const REPLACEMENTS: unknown[] = [
  null,
  0,
  -1,
  1.5,
  24,
  65537,
  100_000_001,
  true,
  '',
  'x',
  'not base64!',
  'AAA=',
  'A'.repeat(65),
  'A'.repeat(300),
  '2026-12-03',
  [],
  [1],
  ['x'],
  Array.from({ length: 17 }, () => 'x'),
  {},
  { sha256: [0] },
];

/** Every body obtained from `body` by replacing one field, deleting one, or adding an unknown one at any level. */
function mutations(body: unknown): { name: string; value: unknown }[] {
  const out: { name: string; value: unknown }[] = [];
  const visit = (node: unknown, path: (string | number)[]): void => {
    if (node === null || typeof node !== 'object') return;
    const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (!Array.isArray(node)) out.push({ name: `${path.join('.')}+extra`, value: edit(body, path, (target) => ((target as Record<string, unknown>)['extra'] = 1)) });
    if (Array.isArray(node)) out.push({ name: `${path.join('.')}+item`, value: edit(body, path, (target) => (target as unknown[]).push(...(target as unknown[]))) });
    for (const key of keys) {
      out.push({ name: `${[...path, key].join('.')}-deleted`, value: edit(body, path, (target) => (Array.isArray(target) ? target.splice(key as number, 1) : delete (target as Record<string, unknown>)[key])) });
      for (const replacement of REPLACEMENTS) {
        out.push({ name: `${[...path, key].join('.')}=${JSON.stringify(replacement).slice(0, 20)}`, value: edit(body, path, (target) => ((target as Record<string | number, unknown>)[key] = replacement)) });
      }
      visit((node as Record<string | number, unknown>)[key], [...path, key]);
    }
  };
  visit(body, []);
  return out;
}

function edit(body: unknown, path: (string | number)[], change: (target: unknown) => void): unknown {
  const copy = JSON.parse(JSON.stringify(body)) as unknown;
  change(path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], copy));
  return copy;
}

function dtoAccepts<T extends object>(dto: DtoClass<T>, value: unknown, location: RequestLocation): boolean {
  try {
    validateDto(dto, value, location);
    return true;
  } catch {
    return false;
  }
}

describe('push bodies: the fast path accepts only what the DTOs accept', function () {
  const cases = [
    { name: 'capabilities', body: CAPABILITIES, fast: fastCapabilitiesBody, dto: CapabilitiesBody as DtoClass<object>, location: 'body' as const },
    { name: 'evidence', body: EVIDENCE, fast: fastEvidenceBody, dto: EvidenceBody as DtoClass<object>, location: 'body' as const },
    { name: 'capabilities with meta', body: CAPABILITIES_WITH_META, fast: fastCapabilitiesBody, dto: CapabilitiesBody as DtoClass<object>, location: 'body' as const },
    { name: 'evidence with meta', body: EVIDENCE_WITH_META, fast: fastEvidenceBody, dto: EvidenceBody as DtoClass<object>, location: 'body' as const },
    { name: 'agent params', body: AGENT_PARAMS, fast: fastAgentParams, dto: PushAgentParams as DtoClass<object>, location: 'params' as const },
    { name: 'index params', body: INDEX_PARAMS, fast: fastIndexParams, dto: AttestationIndexParams as DtoClass<object>, location: 'params' as const },
  ];

  for (const { name, body, fast, dto, location } of cases) {
    it(`accepts the agent's ${name} as it is, as the DTO does`, function () {
      const parsed = parseJsonBody(JSON.stringify(body));
      expect(fast(parsed)).to.equal(parsed);
      expect(dtoAccepts(dto, parsed, location)).to.equal(true);
      // The router's params object has no prototype.
      const bare = Object.assign(Object.create(null) as object, body);
      expect(fast(bare)).to.equal(bare);
    });

    it(`never accepts a ${name} the DTO refuses (every one-field mutation)`, function () {
      const all = mutations(body);
      let refused = 0;
      for (const mutated of all) {
        const accepted = dtoAccepts(dto, mutated.value, location);
        if (!accepted) refused += 1;
        if (fast(mutated.value) !== undefined) {
          expect(accepted, `fast path accepted ${mutated.name}, the DTO refuses it`).to.equal(true);
        }
      }
      expect(refused, 'mutations the DTO refuses').to.be.greaterThan(all.length / 3);
    });
  }

  it('leaves prototype keys, too deep nesting and non-objects to the DTO path', function () {
    const withProto = JSON.parse('{"data":{"type":"attestation","attributes":{"evidence_collected":[],"__proto__":{}}}}') as unknown;
    expect(fastEvidenceBody(withProto)).to.equal(undefined);
    expect(fastEvidenceBody([EVIDENCE])).to.equal(undefined);
    expect(fastEvidenceBody('body')).to.equal(undefined);
    expect(fastCapabilitiesBody(undefined)).to.equal(undefined);
  });

  it('leaves a meta object holding a prototype key or nested past the guard\'s depth to the DTO path, which refuses it', function () {
    let deep: Record<string, unknown> = {};
    for (let level = 0; level < 40; level += 1) deep = { next: deep };
    const hostile: [string, unknown][] = [
      ['constructor key', { constructor: {} }],
      ['__proto__ key', JSON.parse('{"__proto__":{"polluted":true}}') as unknown],
      ['40 levels deep', deep],
    ];
    for (const [name, meta] of hostile) {
      const evidence = JSON.parse(JSON.stringify(EVIDENCE)) as typeof EVIDENCE;
      (evidence.data.attributes.evidence_collected[0]!.data as Record<string, unknown>)['meta'] = meta;
      const capabilities = JSON.parse(JSON.stringify(CAPABILITIES)) as typeof CAPABILITIES;
      (capabilities.data.attributes.evidence_supported[0]!.capabilities as Record<string, unknown>)['meta'] = meta;
      expect(fastEvidenceBody(evidence), `evidence meta with a ${name}`).to.equal(undefined);
      expect(dtoAccepts(EvidenceBody, evidence, 'body'), `the DTO on evidence meta with a ${name}`).to.equal(false);
      expect(fastCapabilitiesBody(capabilities), `capabilities meta with a ${name}`).to.equal(undefined);
      expect(dtoAccepts(CapabilitiesBody, capabilities, 'body'), `the DTO on capabilities meta with a ${name}`).to.equal(false);
    }
  });

  it('boot_time: the fast path takes a UTC time to the second only when the DTO does, and leaves every other form to it', function () {
    const times = [
      '2026-12-03T08:00:00Z', '2024-02-29T23:59:59Z', '2000-02-29T00:00:00Z', '2100-02-29T00:00:00Z', '1000-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z', '0099-01-01T00:00:00Z', '0999-01-01T00:00:00Z',
      '2023-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-12-03T24:00:00Z', '2026-12-03T23:60:00Z', '2026-12-03T23:59:60Z',
      '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-12-00T00:00:00Z', '2026-12-03T08:00:00.000Z', '2026-12-03T08:00:00+01:00',
      '2026-12-03 08:00:00Z', '2026-12-03T08:00Z', '+002026-12-03T08:00:00Z', '2026-12-03T08:00:00z', '2026-12-03T08:00:00Z\n',
    ];
    for (const time of times) {
      const body = JSON.parse(JSON.stringify(CAPABILITIES)) as typeof CAPABILITIES;
      body.data.attributes.system_info.boot_time = time;
      const accepted = dtoAccepts(CapabilitiesBody, body, 'body');
      if (fastCapabilitiesBody(body) !== undefined) expect(accepted, `fast path accepted ${time}, the DTO refuses it`).to.equal(true);
      if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(time)) expect(fastCapabilitiesBody(body) !== undefined, time).to.equal(accepted);
    }
  });

  it('refuses a surrogate pair past a length bound, leaving class-validator to count it', function () {
    const body = JSON.parse(JSON.stringify(CAPABILITIES)) as typeof CAPABILITIES;
    body.data.attributes.evidence_supported[0]!.capabilities.component_version = '\u{1F600}'.repeat(40);
    expect(fastCapabilitiesBody(body)).to.equal(undefined);
    expect(dtoAccepts(CapabilitiesBody, body, 'body')).to.equal(true);
  });
});
