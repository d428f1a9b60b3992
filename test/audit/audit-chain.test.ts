import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { verifyAuditChain } from '../../lib/audit/audit-chain.js';
import { formatAuditLine, parseAuditExport } from '../../lib/audit/audit-export-format.js';
import { AUDIT_GENESIS_HASH, sealAuditRecord, type AuditRecord } from '../../lib/audit/audit-record.js';
import { canonicalJson } from '../../lib/bytes/canonical-json.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { AuditFormatError } from '../../lib/audit/audit-errors.js';

const key = generateKeyPairSync('ed25519');
const otherKey = generateKeyPairSync('ed25519');

function chain(stream: string, count: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prev = AUDIT_GENESIS_HASH;
  for (let seq = 1; seq <= count; seq += 1) {
    const record = sealAuditRecord(
      {
        stream,
        at: new Date(Date.UTC(2026, 11, 2, 18, 0, seq)).toISOString(),
        actor: 'verifier:v1',
        action: 'verdict',
        agentId: stream,
        details: { verdict: seq === count ? 'FAIL' : 'PASS', event: seq === count ? 'ima.validation.ima-ng.not_in_allowlist' : null, context: 'nul\u0000 inside' },
      },
      seq,
      prev,
      key.privateKey,
    );
    records.push(record);
    prev = record.hash;
  }
  return records;
}

describe('audit chain', () => {
  it('canonical JSON sorts keys at every level and leaves out undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: undefined } })).to.equal('{"a":{"d":[true,null,"x"]},"b":1}');
    expect(() => canonicalJson({ n: Number.NaN })).to.throw(TypeError);
  });

  it('a sealed chain verifies, and its export gives the same bytes every time', () => {
    const records = chain('agent-1', 5);
    expect(verifyAuditChain(records, key.publicKey)).to.deep.equal({ valid: true, checked: 5 });
    const text = records.map(formatAuditLine).join('');
    expect(parseAuditExport(text).map(formatAuditLine).join('')).to.equal(text);
    expect(verifyAuditExport(text, key.publicKey).valid).to.equal(true);
  });

  it('finds an edited record (hash), a re-hashed one (signature), a deleted one and a reordered pair', () => {
    const records = chain('agent-1', 5);
    const edited = records.map((r, i) => (i === 2 ? { ...r, details: { verdict: 'PASS' } } : r));
    expect(verifyAuditChain(edited, key.publicKey).break).to.include({ index: 2, seq: 3, reason: 'hash-mismatch' });

    const forged = sealAuditRecord({ ...(records[2] as AuditRecord), details: { verdict: 'PASS' } }, 3, (records[1] as AuditRecord).hash, otherKey.privateKey);
    const resigned = records.map((r, i) => (i === 2 ? forged : r));
    expect(verifyAuditChain(resigned, key.publicKey).break).to.include({ index: 2, reason: 'bad-signature' });

    const deleted = records.filter((_, i) => i !== 1);
    expect(verifyAuditChain(deleted, key.publicKey).break).to.include({ index: 1, seq: 3, reason: 'sequence-gap' });

    const swapped = [records[0], records[2], records[1], records[3], records[4]] as AuditRecord[];
    expect(verifyAuditChain(swapped, key.publicKey).break).to.include({ index: 1, reason: 'sequence-gap' });

    const firstDropped = records.slice(1).map((r, i) => (i === 0 ? { ...r } : r));
    expect(verifyAuditChain(firstDropped, key.publicKey).valid, 'a --since export starts later').to.equal(true);
  });

  it('names the export line of the first broken record, per stream', () => {
    const a = chain('agent-a', 3);
    const b = chain('agent-b', 3);
    const lines = [a[0], b[0], a[1], b[1], a[2], b[2]] as AuditRecord[];
    const text = lines.map(formatAuditLine).join('').replace('"verdict":"FAIL"', '"verdict":"PASS"');
    const result = verifyAuditExport(text, key.publicKey);
    expect(result.valid).to.equal(false);
    expect(result.streams.map((s) => [s.stream, s.result.valid, s.breakLine])).to.deep.equal([
      ['agent-a', false, 5],
      ['agent-b', true, undefined],
    ]);
  });

  it('refuses lines that are not records with a typed error naming the line', () => {
    const good = formatAuditLine(chain('agent-1', 1)[0] as AuditRecord);
    const cases = ['not json', '[]', '{}', good.replace('"seq":1', '"seq":0'), good.replace('"seq":1', '"seq":1,"extra":1'), good.replace(/"hash":"[0-9a-f]+"/, '"hash":"zz"')];
    for (const line of cases) {
      expect(() => parseAuditExport(`${good}${line}\n`), line).to.throw(AuditFormatError, /^line 2: /);
    }
  });
});
