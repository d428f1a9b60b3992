import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { formatAuditLine, MAX_AUDIT_LINE_BYTES } from '../../lib/audit/audit-export-format.js';
import { formatAuditManifestLine, sealAuditManifest } from '../../lib/audit/audit-manifest.js';
import { AUDIT_GENESIS_HASH, chainAuditEvent, sealAuditRecords, type AuditRecord } from '../../lib/audit/audit-record.js';
import { verifyAuditExport, verifyAuditExportFile } from '../../lib/audit/verify-audit-export.js';
import { spawnCli } from '../helpers/cli-runner.js';

const key = generateKeyPairSync('ed25519');
/**
 * The heap of the process that verifies: a file of twice its size cannot be held, nor its records.
 * The verify runs in a bare node process that loads the audit module only (the whole CLI needs about
 * 40 MiB of heap to load, which would force a far larger file to prove the same).
 */
const HEAP_MIB = 16;
const STREAMS = ['agent-big-0', 'agent-big-1', 'agent-big-2', 'agent-big-3'];
/** Each record's padding: its line stays just under the 1 MiB a record line may hold. */
const PADDING = 'p'.repeat(1_000_000);
const VERIFY_MODULE = path.resolve(import.meta.dirname, '../../lib/audit/verify-audit-export.js');
/** Verifies argv[2] with the public key in argv[3] and prints the result, or what it threw, as JSON. */
const VERIFY_RUNNER = `
const { createPublicKey } = await import('node:crypto');
const { readFileSync } = await import('node:fs');
const { verifyAuditExportFile } = await import(process.argv[1]);
const result = await verifyAuditExportFile(process.argv[2], createPublicKey(readFileSync(process.argv[3]))).then(
  (value) => ({ valid: value.valid, records: value.records, spans: value.streams.map((s) => s.span) }),
  (error) => ({ threw: error.code + ': ' + error.message }),
);
process.stdout.write(JSON.stringify(result));`;

/** `verifyAuditExportFile` in a node process whose heap is capped at `HEAP_MIB`: its exit code and output. */
function verifyWithCappedHeap(file: string, publicKey: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MIB}`, '--input-type=module', '-e', VERIFY_RUNNER, VERIFY_MODULE, file, publicKey], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr: stderr.slice(-600) })));
}

/**
 * Writes a genuine export of `count` records per stream, one line at a time (about `count` × 4 MB,
 * never held whole in this process), then its signed manifest; returns the bytes written.
 */
function writeLargeExport(file: string, count: number): number {
  const fd = openSync(file, 'w');
  try {
    let bytes = 0;
    const streams = STREAMS.map((stream) => {
      let hash = AUDIT_GENESIS_HASH;
      for (let seq = 1; seq <= count; seq += 1) {
        const at = new Date(Date.UTC(2026, 11, 5, 18, 0, 0, seq)).toISOString();
        const link = chainAuditEvent({ stream, at, actor: 'verifier:v1', action: 'verdict', agentId: stream, details: { outcome: 'PASS', padding: PADDING } }, seq, hash);
        bytes += writeSync(fd, formatAuditLine(sealAuditRecords([link], key.privateKey)[0] as AuditRecord));
        hash = link.hash;
      }
      return { stream, fromSeq: 1, lastSeq: count, lastHash: hash };
    });
    return bytes + writeSync(fd, formatAuditManifestLine(sealAuditManifest({ agent: null, since: null, streams }, key.privateKey)));
  } finally {
    closeSync(fd);
  }
}

/** A verify's result, or the message of what it threw. */
function outcome(run: () => unknown): unknown {
  try {
    return run();
  } catch (error) {
    return { threw: (error as Error).message };
  }
}

async function outcomeOf(result: Promise<unknown>): Promise<unknown> {
  return result.then(
    (value) => value,
    (error: unknown) => ({ threw: (error as Error).message }),
  );
}

describe('ironlime audit verify reads an export line by line', function () {
  this.timeout(60_000);
  let dir: string;
  let publicKey: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-audit-large-'));
    publicKey = path.join(dir, 'audit-public-key.pem');
    writeFileSync(publicKey, key.publicKey.export({ type: 'spki', format: 'pem' }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`an export of about 32 MB verifies with a heap of ${HEAP_MIB} MiB: memory follows one line and the streams, not the file`, async () => {
    const file = path.join(dir, 'large.jsonl');
    try {
      const bytes = writeLargeExport(file, 8);
      expect(bytes).to.be.above(1.8 * HEAP_MIB * 1024 * 1024);
      const run = await verifyWithCappedHeap(file, publicKey);
      expect({ code: run.code, stderr: run.stderr }).to.deep.equal({ code: 0, stderr: '' });
      const span = { fromSeq: 1, lastSeq: 8, lastAt: '2026-12-05T18:00:00.008Z' };
      expect(JSON.parse(run.stdout)).to.deep.equal({ valid: true, records: 32, spans: STREAMS.map(() => span) });
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('reading a file gives the lines, results and refusals that reading its text does (line ends, chunk edges, a manifest line over 1 MiB)', async () => {
    const records: AuditRecord[] = [];
    let hash = AUDIT_GENESIS_HASH;
    for (let seq = 1; seq <= 3; seq += 1) {
      // A record of about 100 KB: the file is read in chunks of 64 KiB, so lines end inside and across them.
      const link = chainAuditEvent({ stream: 'agent-a', at: `2026-12-05T18:00:0${seq}.000Z`, actor: 'verifier:v1', action: 'verdict', agentId: 'agent-a', details: { outcome: 'PASS', padding: 'q'.repeat(100_000 + seq) } }, seq, hash);
      records.push(sealAuditRecords([link], key.privateKey)[0] as AuditRecord);
      hash = link.hash;
    }
    const lines = records.map(formatAuditLine);
    // Ten thousand streams with no record: a manifest line of more than 1 MiB, within its own bound.
    const empty = Array.from({ length: 10_000 }, (_, i) => ({ stream: `agent-empty-${String(i).padStart(5, '0')}`, fromSeq: 1, lastSeq: 0, lastHash: AUDIT_GENESIS_HASH }));
    const manifest = formatAuditManifestLine(sealAuditManifest({ agent: null, since: null, streams: [{ stream: 'agent-a', fromSeq: 1, lastSeq: 3, lastHash: hash }, ...empty] }, key.privateKey));
    expect(Buffer.byteLength(manifest)).to.be.above(MAX_AUDIT_LINE_BYTES);
    const texts = [
      lines.join('') + manifest,
      lines.join('') + manifest.trimEnd(),
      `${lines.join('')}${manifest}\n`,
      lines.join('').replace(/\n/g, '\r\n') + manifest,
      [lines[0], lines[2], manifest].join(''),
      [manifest, ...lines].join(''),
      lines.join(''),
      '',
      'garbage\n',
    ];
    for (const [index, text] of texts.entries()) {
      const file = path.join(dir, `case-${index}.jsonl`);
      writeFileSync(file, text);
      const fromText = outcome(() => verifyAuditExport(text, key.publicKey));
      expect(await outcomeOf(verifyAuditExportFile(file, key.publicKey)), `case ${index}`).to.deep.equal(fromText);
    }
    expect(outcome(() => verifyAuditExport(texts[0] as string, key.publicKey))).to.deep.include({ valid: true, records: 3 });
  });

  it('a file of 32 MB with no line end is refused at its first line\'s bound (ERR_AUDIT_FORMAT; the CLI exits 2), not read whole', async () => {
    const file = path.join(dir, 'one-line.jsonl');
    try {
      const fd = openSync(file, 'w');
      try {
        const chunk = Buffer.alloc(1024 * 1024, 'x');
        for (let mib = 0; mib < 2 * HEAP_MIB; mib += 1) writeSync(fd, chunk);
      } finally {
        closeSync(fd);
      }
      const run = await verifyWithCappedHeap(file, publicKey);
      expect({ code: run.code, stderr: run.stderr, stdout: JSON.parse(run.stdout) as unknown }).to.deep.equal({ code: 0, stderr: '', stdout: { threw: 'ERR_AUDIT_FORMAT: line 1: longer than 1048576 bytes' } });
      const cli = spawnCli(['audit', 'verify', file, '--public-key', publicKey]);
      expect({ code: await cli.exited(), stderr: cli.stderr().slice(-600) }).to.deep.equal({ code: 2, stderr: 'ironlime: line 1: longer than 1048576 bytes\n' });
    } finally {
      rmSync(file, { force: true });
    }
  });
});
