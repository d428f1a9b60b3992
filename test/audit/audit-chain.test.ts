import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { expect } from 'chai';
import { verifyAuditChain } from '../../lib/audit/audit-chain.js';
import { formatAuditLine, parseAuditExport } from '../../lib/audit/audit-export-format.js';
import { AUDIT_GENESIS_HASH, auditRecordBody, chainAuditEvent, sealAuditRecords, type AuditEvent, type AuditRecord } from '../../lib/audit/audit-record.js';
import { canonicalJson } from '../../lib/bytes/canonical-json.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { AuditFormatError } from '../../lib/audit/audit-errors.js';
import { sealedExport } from './helpers/sealed-export.js';

const key = generateKeyPairSync('ed25519');
const otherKey = generateKeyPairSync('ed25519');

function verdictEvent(stream: string, second: number, verdict: 'PASS' | 'FAIL'): AuditEvent {
  return { stream, at: new Date(Date.UTC(2026, 11, 2, 18, 0, second)).toISOString(), actor: 'verifier:v1', action: 'verdict', agentId: stream, details: { verdict } };
}

/**
 * `rounds` batches, each one record per stream of `streams` (the round writer's shape: one verdict per
 * agent per batch), every batch signed once.
 */
function batches(streams: readonly string[], rounds: number): AuditRecord[] {
  const heads = new Map(streams.map((stream) => [stream, { seq: 0, hash: AUDIT_GENESIS_HASH }]));
  const records: AuditRecord[] = [];
  for (let round = 1; round <= rounds; round += 1) {
    const chained = streams.map((stream) => {
      const head = heads.get(stream) as { seq: number; hash: string };
      const link = chainAuditEvent(verdictEvent(stream, round, 'PASS'), head.seq + 1, head.hash);
      heads.set(stream, { seq: link.seq, hash: link.hash });
      return link;
    });
    records.push(...sealAuditRecords(chained, key.privateKey));
  }
  return records;
}

/** `count` records of one stream, each signed alone (a batch of one, as the round writer signs a lone verdict). */
function chain(stream: string, count: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prev = AUDIT_GENESIS_HASH;
  for (let seq = 1; seq <= count; seq += 1) {
    const link = chainAuditEvent(
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
    );
    records.push(...sealAuditRecords([link], key.privateKey));
    prev = link.hash;
  }
  return records;
}

describe('audit chain', () => {
  it('canonical JSON sorts keys at every level and leaves out undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: undefined } })).to.equal('{"a":{"d":[true,null,"x"]},"b":1}');
    expect(() => canonicalJson({ n: Number.NaN })).to.throw(TypeError);
  });

  it('canonical JSON is the text of the filter/sort/map/join writer it replaced, on random values', () => {
    // The writer records were hashed with before the eighteenth pass (docs/fleet.md): earlier records must keep their hashes.
    const reference = (value: unknown): string => {
      if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
      if (value !== null && typeof value === 'object') {
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(record[k])}`).join(',')}}`;
      }
      return JSON.stringify(value);
    };
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const keyOf = (): string => ['a', 'B', '10', '9', '0', '', '\u20ac', '\u{1F600}', '\r', 'a"b', 'ä', '__proto_'][next(12)] as string;
    const valueOf = (depth: number): unknown => {
      const kind = next(depth > 3 ? 5 : 8);
      if (kind === 0) return null;
      if (kind === 1) return next(2) === 0;
      if (kind === 2) return [0, -1, 1.5, 1e21, 0.000001, 2 ** 53][next(6)];
      if (kind === 3) return ['', 'x', '\u0000', 'é\n"', '\u2028'][next(5)];
      if (kind === 4) return undefined;
      if (kind === 5 || kind === 6) {
        const record: Record<string, unknown> = {};
        for (let i = next(5); i > 0; i -= 1) record[keyOf()] = valueOf(depth + 1);
        return record;
      }
      return Array.from({ length: next(4) }, () => (next(3) === 0 ? null : valueOf(depth + 1)));
    };
    for (let i = 0; i < 3000; i += 1) {
      const record: Record<string, unknown> = {};
      for (let k = next(6); k > 0; k -= 1) record[keyOf()] = valueOf(0);
      expect(canonicalJson(record)).to.equal(reference(record));
    }
  });

  it('canonical JSON sorts objects of more keys than it sorts by insertion as the built-in sort does', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `${(i * 7919) % 1000}${i % 3 === 0 ? '\u20ac' : ''}`);
    for (const count of [31, 32, 33, 200]) {
      const record = Object.fromEntries(keys.slice(0, count).map((k, i) => [k, i]));
      const expected = `{${Object.keys(record).sort().map((k) => `${JSON.stringify(k)}:${record[k]}`).join(',')}}`;
      expect(canonicalJson(record)).to.equal(expected);
    }
  });

  it("a record's body is the canonical JSON of its hashed members, on random events", () => {
    // The body is written from a template (twentieth pass): it must stay the text every stored record was hashed over.
    let seed = 11;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const text = (): string => ['', 'verdict', 'a"b\\c', '\u0000\u001f', 'é\u2028', '\u{1F600}', 'verifier:v1', 'CN=ops, O="x"'][next(8)] as string;
    for (let i = 0; i < 2000; i += 1) {
      const details: Record<string, unknown> = {};
      for (let k = next(8); k > 0; k -= 1) details[text() + String(next(20))] = next(3) === 0 ? [text(), next(1000), null] : { [text()]: next(2) === 0 };
      const event: AuditEvent = { stream: text(), at: text(), actor: text(), action: text(), agentId: next(3) === 0 ? null : text(), details };
      const seq = [1, 2, 41, 2 ** 53 - 1][next(4)] as number;
      const prevHash = next(2) === 0 ? AUDIT_GENESIS_HASH : text();
      const members = { stream: event.stream, seq, prev_hash: prevHash, details, at: event.at, agent_id: event.agentId, actor: event.actor, action: event.action };
      expect(auditRecordBody(event, seq, prevHash)).to.equal(canonicalJson(members));
    }
  });

  it('a batch of three is signed over the root an independent RFC 6962-shaped tree gives, each path as stored before', () => {
    const records = batches(['agent-a', 'agent-b', 'agent-c'], 1);
    const leaves = records.map((r) => Buffer.from(r.hash, 'hex'));
    const inner = (left: Buffer, right: Buffer): Buffer => createHash('sha256').update(Buffer.from([1])).update(left).update(right).digest();
    const left = inner(leaves[0] as Buffer, leaves[1] as Buffer);
    const root = inner(left, leaves[2] as Buffer);
    expect(records.map((r) => r.batchPath)).to.deep.equal([
      [`R${(leaves[1] as Buffer).toString('hex')}`, `R${(leaves[2] as Buffer).toString('hex')}`],
      [`L${(leaves[0] as Buffer).toString('hex')}`, `R${(leaves[2] as Buffer).toString('hex')}`],
      [`L${left.toString('hex')}`],
    ]);
    expect(verify(null, root, key.publicKey, Buffer.from((records[0] as AuditRecord).signature, 'base64'))).to.equal(true);
  });

  it('a sealed chain verifies, and its export gives the same bytes every time', () => {
    const records = chain('agent-1', 5);
    expect(verifyAuditChain(records, key.publicKey)).to.deep.equal({ valid: true, checked: 5 });
    const text = sealedExport(records, key.privateKey);
    expect(sealedExport(parseAuditExport(text).records, key.privateKey)).to.equal(text);
    expect(verifyAuditExport(text, key.publicKey).valid).to.equal(true);
  });

  it('finds an edited record (hash), a re-hashed one (signature), a deleted one and a reordered pair', () => {
    const records = chain('agent-1', 5);
    const edited = records.map((r, i) => (i === 2 ? { ...r, details: { verdict: 'PASS' } } : r));
    expect(verifyAuditChain(edited, key.publicKey).break).to.include({ index: 2, seq: 3, reason: 'hash-mismatch' });

    const forged = sealAuditRecords([chainAuditEvent({ ...(records[2] as AuditRecord), details: { verdict: 'PASS' } }, 3, (records[1] as AuditRecord).hash)], otherKey.privateKey)[0] as AuditRecord;
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
    const text = sealedExport(lines, key.privateKey).replace('"verdict":"FAIL"', '"verdict":"PASS"');
    const result = verifyAuditExport(text, key.publicKey);
    expect(result.valid).to.equal(false);
    expect(result.streams.map((s) => [s.stream, s.result.valid, s.breakLine])).to.deep.equal([
      ['agent-a', false, 5],
      ['agent-b', true, undefined],
    ]);
  });

  it('a batch signed once verifies record by record, for every batch size, and in an export', () => {
    for (const size of [1, 2, 3, 5, 8, 13]) {
      const streams = Array.from({ length: size }, (_, i) => `agent-${i}`);
      const records = batches(streams, 3);
      const firstBatch = records.slice(0, size);
      expect(new Set(firstBatch.map((r) => r.signature)).size, 'one signature per batch').to.equal(1);
      expect(Math.max(...firstBatch.map((r) => r.batchPath.length)), 'a path is as long as the tree is deep').to.equal(Math.ceil(Math.log2(size)));
      for (const stream of streams) {
        expect(verifyAuditChain(records.filter((r) => r.stream === stream), key.publicKey), `${size}: ${stream}`).to.deep.equal({ valid: true, checked: 3 });
      }
      const text = sealedExport(records, key.privateKey);
      expect(sealedExport(parseAuditExport(text).records, key.privateKey)).to.equal(text);
      expect(verifyAuditExport(text, key.publicKey)).to.include({ valid: true, records: 3 * size });
    }
  });

  it('a record signed alone exports as before batches (no batch_path); a batch record carries its path', () => {
    const alone = formatAuditLine(chain('agent-1', 1)[0] as AuditRecord);
    expect(alone).not.to.contain('batch_path');
    const batched = formatAuditLine(batches(['agent-a', 'agent-b'], 1)[0] as AuditRecord);
    expect(JSON.parse(batched)).to.have.property('batch_path').that.is.an('array').with.length(1);
  });

  it('in a batch, a changed path, a path moved to another record, an edited record or another key break the signature', () => {
    const records = batches(['agent-a', 'agent-b', 'agent-c', 'agent-d', 'agent-e'], 2);
    const streamA = (list: readonly AuditRecord[]): AuditRecord[] => list.filter((r) => r.stream === 'agent-a');
    const a0 = records[0] as AuditRecord;
    const flipped = (a0.batchPath[0] as string).replace(/^[LR]/, (side) => (side === 'L' ? 'R' : 'L'));
    const sideChanged = records.map((r) => (r === a0 ? { ...r, batchPath: [flipped, ...r.batchPath.slice(1)] } : r));
    expect(verifyAuditChain(streamA(sideChanged), key.publicKey).break).to.include({ index: 0, reason: 'bad-signature' });
    const step = a0.batchPath[0] as string;
    const stepChanged = records.map((r) => (r === a0 ? { ...r, batchPath: [`${step.slice(0, 64)}${step.endsWith('0') ? '1' : '0'}`, ...r.batchPath.slice(1)] } : r));
    expect(verifyAuditChain(streamA(stepChanged), key.publicKey).break).to.include({ index: 0, reason: 'bad-signature' });
    const dropped = records.map((r) => (r === a0 ? { ...r, batchPath: r.batchPath.slice(1) } : r));
    expect(verifyAuditChain(streamA(dropped), key.publicKey).break).to.include({ index: 0, reason: 'bad-signature' });
    const borrowed = records.map((r) => (r === a0 ? { ...r, batchPath: (records[1] as AuditRecord).batchPath } : r));
    expect(verifyAuditChain(streamA(borrowed), key.publicKey).break).to.include({ index: 0, reason: 'bad-signature' });
    const notAPath = records.map((r) => (r === a0 ? { ...r, batchPath: ['X'.repeat(65)] } : r));
    expect(verifyAuditChain(streamA(notAPath), key.publicKey).break).to.include({ index: 0, reason: 'bad-signature' });
    // Re-hashing an edited record cannot reuse the batch signature: its leaf no longer leads to the signed root.
    const edited = chainAuditEvent({ ...verdictEvent('agent-a', 1, 'FAIL') }, 1, AUDIT_GENESIS_HASH);
    const rehashed = records.map((r) => (r === a0 ? { ...r, ...edited } : r));
    expect(verifyAuditChain(streamA(rehashed), key.publicKey).break).to.include({ index: 0, reason: 'bad-signature' });
    const resigned = sealAuditRecords(records.slice(0, 5).map((r) => chainAuditEvent(r, r.seq, r.prevHash)), otherKey.privateKey);
    expect(verifyAuditChain([resigned[0] as AuditRecord, records[5] as AuditRecord], key.publicKey).break).to.include({ index: 0, reason: 'bad-signature' });
  });

  it('refuses lines that are not records with a typed error naming the line', () => {
    const good = formatAuditLine(chain('agent-1', 1)[0] as AuditRecord);
    const cases = [
      'not json',
      '[]',
      '{}',
      good.replace('"seq":1', '"seq":0'),
      good.replace('"seq":1', '"seq":1,"extra":1'),
      good.replace(/"hash":"[0-9a-f]+"/, '"hash":"zz"'),
      good.replace('"at":', '"batch_path":[],"at":'),
      good.replace('"at":', '"batch_path":["L00"],"at":'),
      good.replace('"at":', `"batch_path":${JSON.stringify(Array.from({ length: 65 }, () => `R${'0'.repeat(64)}`))},"at":`),
    ];
    for (const line of cases) {
      expect(() => parseAuditExport(`${good}${line}\n`), line).to.throw(AuditFormatError, /^line 2: /);
    }
  });

  it('refuses details nested deeper than the bound with a typed error, not a stack overflow', () => {
    const good = formatAuditLine(chain('agent-1', 1)[0] as AuditRecord);
    const deep = good.replace('"details":{', `"details":{"x":${'['.repeat(200_000)}${']'.repeat(200_000)},`);
    expect(() => verifyAuditExport(`${good}${deep}`, key.publicKey, { unsealed: true })).to.throw(AuditFormatError, /^line 2: details are nested deeper than 64 levels$/);
  });
});
