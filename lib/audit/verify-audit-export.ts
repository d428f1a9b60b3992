import type { KeyObject } from 'node:crypto';
import { auditExportTextLines } from './audit-export-format.js';
import { readAuditExportLines } from './audit-export-lines.js';
import { AuditExportVerifier, type AuditExportOptions, type AuditExportResult } from './audit-export-verifier.js';

export type { AuditExportOptions, AuditExportResult, AuditStreamResult } from './audit-export-verifier.js';

/**
 * Checks an export held as text (`AuditExportVerifier`: chains, signatures, the signed manifest).
 *
 * @throws AuditFormatError when a line is neither a record nor the manifest.
 */
export function verifyAuditExport(text: string, publicKey: KeyObject, options: AuditExportOptions = {}): AuditExportResult {
  const verifier = new AuditExportVerifier(publicKey, options);
  for (const line of auditExportTextLines(text)) verifier.line(line);
  return verifier.end();
}

/**
 * Checks an export file as `verifyAuditExport` does, reading it line by line: memory holds a line and
 * a few numbers a stream, whatever the file's size (`ironlime audit verify`).
 *
 * @throws AuditFormatError when a line is neither a record nor the manifest, or longer than its bound.
 */
export async function verifyAuditExportFile(file: string, publicKey: KeyObject, options: AuditExportOptions = {}): Promise<AuditExportResult> {
  const verifier = new AuditExportVerifier(publicKey, options);
  for await (const line of readAuditExportLines(file)) verifier.line(line);
  return verifier.end();
}
