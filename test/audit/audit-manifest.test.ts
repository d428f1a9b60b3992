import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { AuditFormatError } from '../../lib/audit/audit-errors.js';
import { formatAuditLine } from '../../lib/audit/audit-export-format.js';
import { formatAuditManifestLine, sealAuditManifest, type AuditManifestStream } from '../../lib/audit/audit-manifest.js';
import { AUDIT_GENESIS_HASH, chainAuditEvent, sealAuditRecords, type AuditEvent, type AuditRecord } from '../../lib/audit/audit-record.js';
import { verifyAuditExport, type AuditExportResult } from '../../lib/audit/verify-audit-export.js';
import { sealedExport } from './helpers/sealed-export.js';

const key = generateKeyPairSync('ed25519');
const otherKey = generateKeyPairSync('ed25519');

function event(stream: string, second: number, outcome: 'PASS' | 'FAIL'): AuditEvent {
  return { stream, at: new Date(Date.UTC(2026, 11, 5, 18, 0, second)).toISOString(), actor: 'verifier:v1', action: 'verdict', agentId: stream, details: { outcome } };
}

/** PASS, PASS, PASS, FAIL: the agent's history as the verifier signed it. */
function chain(stream: string): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prev = AUDIT_GENESIS_HASH;
  for (let seq = 1; seq <= 4; seq += 1) {
    const link = chainAuditEvent(event(stream, seq, seq === 4 ? 'FAIL' : 'PASS'), seq, prev);
    records.push(...sealAuditRecords([link], key.privateKey));
    prev = link.hash;
  }
  return records;
}

/** The export's lines but the manifest, and the manifest line. */
function split(text: string): { lines: string[]; manifest: string } {
  const lines = text.split('\n').slice(0, -1);
  return { lines: lines.slice(0, -1), manifest: lines[lines.length - 1] as string };
}

const join = (lines: readonly string[]): string => lines.map((line) => `${line}\n`).join('');

/** Per broken stream: its name, why, and the export line of its first bad record. */
function breaks(result: AuditExportResult): unknown[] {
  return result.streams.filter((s) => !s.result.valid).map((s) => [s.stream, s.result.break?.reason, s.breakLine]);
}

describe('audit export manifest: removed records and streams are found', () => {
  it('a sealed export verifies, names its scope, and the same records give the same bytes', () => {
    const records = [...chain('agent-a'), ...chain('agent-b')];
    const text = sealedExport(records, key.privateKey);
    expect(sealedExport(records, key.privateKey)).to.equal(text);
    const result = verifyAuditExport(text, key.publicKey);
    expect(result).to.include({ valid: true, records: 8 });
    expect(result.manifest).to.deep.include({ agent: null, since: null });
  });

  it('the stream\'s newest records removed (the FAIL verdict): truncated, at the last record left', () => {
    const { lines, manifest } = split(sealedExport(chain('agent-a'), key.privateKey));
    const result = verifyAuditExport(join([...lines.slice(0, 3), manifest]), key.publicKey);
    expect(result.valid).to.equal(false);
    expect(breaks(result)).to.deep.equal([['agent-a', 'truncated', 3]]);
    expect(result.streams[0]?.result.break?.message).to.equal('record 3 (seq 3): the signed manifest ends the stream at seq 4: records after this one were removed');
  });

  it('the first records of a complete export removed: truncated (a record after seq 1 is not taken as a --since start)', () => {
    const { lines, manifest } = split(sealedExport(chain('agent-a'), key.privateKey));
    const result = verifyAuditExport(join([...lines.slice(2), manifest]), key.publicKey);
    expect(breaks(result)).to.deep.equal([['agent-a', 'truncated', 1]]);
    // Even a manifest that says a complete export starts later is not believed.
    const records = chain('agent-a').slice(2);
    const late: AuditManifestStream = { stream: 'agent-a', fromSeq: 3, lastSeq: 4, lastHash: (records[1] as AuditRecord).hash };
    const claimed = `${records.map(formatAuditLine).join('')}${formatAuditManifestLine(sealAuditManifest({ agent: null, since: null, streams: [late] }, key.privateKey))}`;
    expect(breaks(verifyAuditExport(claimed, key.publicKey))).to.deep.equal([['agent-a', 'truncated', 1]]);
  });

  it('a --since export starts at its signed first seq; records removed from its start are found', () => {
    const since = event('x', 3, 'PASS').at;
    const text = sealedExport(chain('agent-a').slice(2), key.privateKey, since);
    expect(verifyAuditExport(text, key.publicKey)).to.include({ valid: true, records: 2 });
    const { lines, manifest } = split(text);
    expect(breaks(verifyAuditExport(join([...lines.slice(1), manifest]), key.publicKey))).to.deep.equal([['agent-a', 'truncated', 1]]);
  });

  it('a --since manifest listing a stream that has records with none in range (as exports before the last record was always kept): refused, the stream\'s end cannot be checked', () => {
    const since = event('x', 9, 'PASS').at;
    const records = chain('agent-a');
    const quiet: AuditManifestStream = { stream: 'agent-a', fromSeq: 5, lastSeq: 4, lastHash: (records[3] as AuditRecord).hash };
    const text = formatAuditManifestLine(sealAuditManifest({ agent: 'agent-a', since, streams: [quiet] }, key.privateKey));
    const result = verifyAuditExport(text, key.publicKey);
    expect(result.valid).to.equal(false);
    expect(breaks(result)).to.deep.equal([['agent-a', 'missing-stream', undefined]]);
    // A stream with no record at all (a head row only) has nothing to check: an empty range is its whole history.
    const empty: AuditManifestStream = { stream: 'agent-b', fromSeq: 1, lastSeq: 0, lastHash: AUDIT_GENESIS_HASH };
    const none = formatAuditManifestLine(sealAuditManifest({ agent: 'agent-b', since, streams: [empty] }, key.privateKey));
    expect(verifyAuditExport(none, key.publicKey)).to.include({ valid: true, records: 0 });
  });

  it("one agent's whole stream removed from a multi-agent export: missing-stream; a stream added: unlisted-stream", () => {
    const { lines, manifest } = split(sealedExport([...chain('agent-a'), ...chain('agent-b')], key.privateKey));
    const removed = verifyAuditExport(join([...lines.slice(0, 4), manifest]), key.publicKey);
    expect(removed.valid).to.equal(false);
    expect(breaks(removed)).to.deep.equal([['agent-b', 'missing-stream', undefined]]);
    const added = verifyAuditExport(join([...lines, ...chain('agent-c').map((r) => formatAuditLine(r).trimEnd()), manifest]), key.publicKey);
    expect(breaks(added)).to.deep.equal([['agent-c', 'unlisted-stream', 9]]);
  });

  it('an edited manifest, one signed by another key, or none at all: refused (none is read with --unsealed, chains only)', () => {
    const records = chain('agent-a');
    const { lines, manifest } = split(sealedExport(records, key.privateKey));
    const shortened = manifest.replace('"last_seq":4', '"last_seq":3').replace((records[3] as AuditRecord).hash, (records[2] as AuditRecord).hash);
    const edited = verifyAuditExport(join([...lines.slice(0, 3), shortened]), key.publicKey);
    expect(edited).to.include({ valid: false, problem: 'its manifest is not signed by the audit key: edited, or from another verifier' });
    const foreign = split(sealedExport(records.slice(0, 3), otherKey.privateKey)).manifest;
    expect(verifyAuditExport(join([...lines.slice(0, 3), foreign]), key.publicKey).valid).to.equal(false);
    const none = verifyAuditExport(join(lines.slice(0, 3)), key.publicKey);
    expect(none).to.include({ valid: false, problem: 'the export has no signed manifest: records removed from the end or the start of a stream, or whole streams, cannot be seen' });
    expect(verifyAuditExport(join(lines), key.publicKey, { unsealed: true })).to.include({ valid: true, records: 4 });
  });

  it('a head row that did not name the last record when exported: head-mismatch', () => {
    const records = chain('agent-a').slice(0, 3);
    const last = records[2] as AuditRecord;
    const entry: AuditManifestStream = { stream: 'agent-a', fromSeq: 1, lastSeq: 3, lastHash: last.hash, head: { seq: 4, hash: 'a'.repeat(64) } };
    const text = `${records.map(formatAuditLine).join('')}${formatAuditManifestLine(sealAuditManifest({ agent: 'agent-a', since: null, streams: [entry] }, key.privateKey))}`;
    const result = verifyAuditExport(text, key.publicKey);
    expect(breaks(result)).to.deep.equal([['agent-a', 'head-mismatch', 3]]);
    expect(result.streams[0]?.result.break?.message).to.contain('the database had its head at seq 4 but its last record was seq 3');
  });

  it('refuses a manifest that is not last or not of the manifest shape, naming the line', () => {
    const { lines, manifest } = split(sealedExport(chain('agent-a'), key.privateKey));
    expect(() => verifyAuditExport(join([manifest, ...lines]), key.publicKey)).to.throw(AuditFormatError, /^line 1: fields must be exactly/);
    const cases = [
      manifest.replace('"format":"ironlime-audit-export/2"', '"format":"ironlime-audit-export/3"'),
      manifest.replace('"from_seq":1', '"from_seq":0'),
      manifest.replace('"last_seq":4', '"last_seq":"4"'),
      manifest.replace('"stream":"agent-a"', '"stream":"agent-a","extra":1'),
      manifest.replace('"since":null', '"since":1'),
      manifest.replace(/"streams":\[(.*)\]/, '"streams":[$1,$1]'),
      `${manifest.slice(0, -1)},"x":1}`,
    ];
    for (const line of cases) {
      expect(() => verifyAuditExport(join([...lines, line]), key.publicKey), line).to.throw(AuditFormatError, /^line 5: manifest: /);
    }
  });
});
