import { expect } from 'chai';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { MAX_JSON_DEPTH } from '../../lib/bytes/json-text-bound.js';
import { checkJsonText, DEFAULT_MAX_JSON_VALUES, parseJsonBody } from '../../lib/http/json-guard.js';
import { PUSH_MAX_JSON_VALUES } from '../../lib/verifier/push/push-routes.js';

/** JSON values in a parsed value, counted the way `checkJsonText` counts them in text: keys not counted. */
function valuesIn(value: unknown): number {
  if (value === null || typeof value !== 'object') return 1;
  return 1 + (Object.values(value) as unknown[]).reduce<number>((sum, member) => sum + valuesIn(member), 0);
}

function refusal(check: () => unknown): string {
  try {
    check();
  } catch (error) {
    expect(error).to.be.instanceOf(RequestValidationError);
    return (error as Error).message;
  }
  return 'accepted';
}

describe('http: a body bounded by its number of JSON values before it is parsed (hunt H5)', () => {
  const documents = [
    '0',
    '"a string"',
    '[]',
    '{}',
    '[ ]',
    '{ \n }',
    '[[],{},[[]],{"a":{}}]',
    '{"a":1,"b":[1,2,3],"c":{"d":null,"e":[{"f":true}]}}',
    // Marks inside strings, escaped quotes and backslashes are not structure.
    '{"a,[{":"x,y]}[{","b":"\\"],{\\\\","c":["\\\\",",","\\"\\\\\\""]}',
    ' { "a" : [ 1 , 2 ] , "b" : { } } ',
    JSON.stringify({ data: { type: 'attestation', attributes: { evidence_collected: [{ data: { entries: 'ABC=' }, meta: { é: '→' } }] } } }),
  ];

  for (const text of documents) {
    it(`counts the values of ${text.slice(0, 50)} exactly`, () => {
      const values = valuesIn(JSON.parse(text));
      expect(refusal(() => checkJsonText(text, values))).to.equal('accepted');
      if (values > 1) expect(refusal(() => checkJsonText(text, values - 1))).to.equal(`body: holds more than ${values - 1} JSON values`);
    });
  }

  it('refuses before JSON.parse: the values past the bound come before text that is not JSON', () => {
    const text = `[${'{},'.repeat(DEFAULT_MAX_JSON_VALUES)} this is not JSON`;
    expect(refusal(() => parseJsonBody(text))).to.equal(`body: holds more than ${DEFAULT_MAX_JSON_VALUES} JSON values`);
    expect(refusal(() => parseJsonBody(`[${'{},'.repeat(DEFAULT_MAX_JSON_VALUES - 2)}{}]`))).to.equal('accepted');
  });

  it('refuses text with more marks than that many values can have, which is not JSON, without reading to its end', () => {
    // JSON.parse would say "must be JSON"; the scan stops at the 5 × 512 + 1st mark instead.
    for (const mark of ['[]', '""', ']', '{}']) {
      expect(refusal(() => parseJsonBody(mark.repeat(3000)))).to.equal(`body: holds more than ${DEFAULT_MAX_JSON_VALUES} JSON values`);
    }
    const widest = `{${Array.from({ length: 255 }, (_, i) => `"k${i}":"v"`).join(',')}}`;
    expect(valuesIn(JSON.parse(widest))).to.equal(256);
    expect(refusal(() => checkJsonText(widest, 256))).to.equal('accepted');
  });

  it('refuses nesting past the bound in the text, whatever the number of values', () => {
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    expect(refusal(() => checkJsonText(deep, 1_000_000))).to.equal(`body: nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(refusal(() => checkJsonText(deep.slice(1, -1), 1_000_000))).to.equal('accepted');
  });

  it('takes a string of 32 MiB as one value', () => {
    expect(refusal(() => parseJsonBody(JSON.stringify({ entries: 'A'.repeat(32 * 1024 * 1024) }), 2))).to.equal('accepted');
  });

  it('counts exactly on 5,000 random bodies of hostile strings (escaped quotes, backslash runs, marks, unicode)', () => {
    const strings = ['', '\\', '"', '\\"', '\\\\', '\\\\\\"', '\u2028', 'é😀', '\u0000', 'a"b', '[{,}]', '\\u0022', '\\\\u0022'];
    let seed = 9;
    // mulberry32: a seeded generator whose low bits are not periodic, so every kind of value comes up.
    const next = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    const valueAt = (depth: number): unknown => {
      const kind = depth > 5 ? 0 : next(3);
      if (kind === 0) return [strings[next(strings.length)], -1e10, 0, true, null, 1.5e-7][next(6)];
      if (kind === 1) return Array.from({ length: next(4) }, () => valueAt(depth + 1));
      return Object.fromEntries(Array.from({ length: next(4) }, (_, i) => [`${strings[next(strings.length)] as string}${i}`, valueAt(depth + 1)]));
    };
    for (let i = 0; i < 5000; i += 1) {
      const value = valueAt(0);
      const text = JSON.stringify(value, null, i % 2 === 0 ? 2 : undefined);
      const values = valuesIn(value);
      expect(refusal(() => checkJsonText(text, values)), text).to.equal('accepted');
      if (values > 1) expect(refusal(() => checkJsonText(text, values - 1)), text).to.equal(`body: holds more than ${values - 1} JSON values`);
    }
  });

  it('takes a push agent\'s largest capabilities (8 PCR banks of 24, three certification keys) within a third of the push bound', () => {
    const banks = ['sha1', 'sha256', 'sha384', 'sha512', 'sm3_256', 'sha3_256', 'sha3_384', 'sha3_512'];
    const schemes = ['rsassa', 'rsapss', 'ecdsa', 'ecschnorr', 'sm2'];
    const key = (id: string): object => ({
      key_class: 'asymmetric', key_algorithm: 'rsa', key_size: 2048, server_identifier: id, local_identifier: '0x81010002',
      allowable_signature_schemes: schemes, allowable_hash_algorithms: banks, public: 'AAAA',
    });
    const log = (type: string): object => ({
      evidence_class: 'log', evidence_type: type, capabilities: { evidence_version: '2.0', entry_count: 100000, supports_partial_access: true, appendable: true, formats: ['text/plain'] },
    });
    const capabilities = {
      data: { type: 'attestation', attributes: {
        evidence_supported: [
          { evidence_class: 'certification', evidence_type: 'tpm_quote', capabilities: {
            component_version: '2.0', hash_algorithms: banks, signature_schemes: schemes,
            available_subjects: Object.fromEntries(banks.map((bank) => [bank, [...Array(24).keys()]])),
            certification_keys: [key('ak'), key('iak'), key('idevid')],
          } },
          log('uefi_log'),
          log('ima_log'),
        ],
        system_info: { boot_time: '2026-12-05T10:00:00Z' },
      } },
    };
    expect(valuesIn(capabilities)).to.be.above(300);
    expect(refusal(() => checkJsonText(JSON.stringify(capabilities), Math.floor(PUSH_MAX_JSON_VALUES / 3)))).to.equal('accepted');
  });
});
