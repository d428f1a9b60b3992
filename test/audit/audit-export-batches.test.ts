import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { formatAuditLine } from '../../lib/audit/audit-export-format.js';
import { AuditLog } from '../../lib/audit/audit-log.js';
import type { AuditEvent } from '../../lib/audit/audit-record.js';
import { auditRecordFromRow, type AuditRecordRow } from '../../lib/audit/audit-record-pages.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { forEachDatabase } from '../helpers/databases.js';
import { exportCollected, exportText } from './helpers/sealed-export.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { privateKey, publicKey };
const BATCH = 4;

function verdict(stream: string, second: number): AuditEvent {
  return { stream, at: new Date(Date.UTC(2026, 11, 5, 18, 0, second)).toISOString(), actor: 'verifier:v1', action: 'verdict', agentId: stream, details: { outcome: second % 7 === 0 ? 'FAIL' : 'PASS' } };
}

/** Every stored record, in export order, read straight from the table: what a complete export must hold. */
async function storedLines(knex: Knex): Promise<string> {
  const rows = (await knex('audit_records').select('*').orderBy([{ column: 'stream' }, { column: 'seq' }])) as AuditRecordRow[];
  return rows.map(auditRecordFromRow).map(formatAuditLine).join('');
}

forEachDatabase('audit export of a log larger than one batch', (fixture) => {
  it(`reads at most ${BATCH} records a statement, and writes the bytes of a one-batch export`, async () => {
    const knex = fixture.database.knex;
    const log = new AuditLog(knex, key);
    // Three streams of 9, 10 and 11 records, appended interleaved; plus one stream of one record.
    const lengths = new Map([['agent-a', 9], ['agent-b', 10], ['agent-c', 11]]);
    for (let second = 1; second <= 11; second += 1) {
      for (const [stream, length] of lengths) if (second <= length) await log.append(verdict(stream, second));
    }
    await log.append(verdict('fleet', 3));
    const rowsPerStatement: number[] = [];
    const count = (response: unknown): void => {
      const rows = Array.isArray(response) ? response : (response as { rows?: unknown[] } | undefined)?.rows;
      if (Array.isArray(rows)) rowsPerStatement.push(rows.length);
    };
    knex.on('query-response', count);
    const queries = [{}, { stream: 'agent-c' }, { since: verdict('x', 5).at }, { stream: 'agent-b', since: verdict('x', 9).at }, { since: verdict('x', 60).at }];
    try {
      for (const query of queries) {
        rowsPerStatement.length = 0;
        const batched = await exportCollected(knex, key, query, BATCH);
        expect(Math.max(...rowsPerStatement), `${JSON.stringify(query)}: rows of one statement`).to.be.at.most(BATCH);
        const whole = await exportCollected(knex, key, query, 1000);
        expect(exportText(batched), JSON.stringify(query)).to.equal(exportText(whole));
        expect(verifyAuditExport(exportText(batched), publicKey).valid, JSON.stringify(query)).to.equal(true);
      }
    } finally {
      knex.removeListener('query-response', count);
    }
    const complete = exportText(await exportCollected(knex, key, {}, BATCH));
    expect(complete.slice(0, complete.lastIndexOf('{"manifest":'))).to.equal(await storedLines(knex));
    expect(complete.split('\n')).to.have.length(9 + 10 + 11 + 1 + 2);
  });
}, { migrate: true });
