import type { Knex } from 'knex';
import { formatAuditCheckpointLine } from '../../../lib/audit/audit-checkpoint.js';
import { exportAuditLog } from '../../../lib/audit/audit-export.js';
import type { AuditQuery } from '../../../lib/audit/audit-export-scope.js';
import { formatAuditLine } from '../../../lib/audit/audit-export-format.js';
import { formatAuditManifestLine } from '../../../lib/audit/audit-manifest.js';
import type { AuditSigningKey } from '../../../lib/audit/audit-signing-key.js';

/** The text `ironlime audit export` writes for `query`: records, each retention checkpoint in its place, then the manifest. */
export async function exportWithCheckpoints(knex: Knex, key: AuditSigningKey, query: AuditQuery = {}, batchSize?: number): Promise<string> {
  let text = '';
  const summary = await exportAuditLog(
    knex,
    key,
    query,
    async (batch) => {
      text += batch.map(formatAuditLine).join('');
    },
    batchSize,
    undefined,
    async (checkpoint) => {
      text += formatAuditCheckpointLine(checkpoint);
    },
  );
  return text + formatAuditManifestLine(summary.manifest);
}
