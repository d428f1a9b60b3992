import type { AuditExportResult } from '../audit/verify-audit-export.js';

/**
 * What `ironlime audit verify` prints: per stream its status and, when it holds records, the seqs
 * held and the time of the last one; then what the signed manifest vouches for (one agent or every
 * stream, complete or only since a time). "valid" alone would let an auditor take a `--since`
 * export, or an old one, for the agent's whole and current history.
 */
export function auditVerifyReport(result: AuditExportResult): string {
  const lines = result.streams.map(({ stream, result: chain, breakLine, span }) => {
    const name = printable(stream);
    if (chain.break !== undefined) return `${name}: BROKEN${breakLine === undefined ? '' : ` at line ${breakLine}`}: ${chain.break.message} [${chain.break.reason}]`;
    const checkpoints = span?.checkpoints ?? 0;
    const pruned = span === undefined || checkpoints === 0 ? '' : ` (${span.pruned ?? 0} of them deleted by retention, stood for by ${checkpoints} signed checkpoint(s))`;
    return `${name}: ok, ${chain.checked - checkpoints} record(s)${span === undefined ? '' : `, seq ${span.fromSeq} to ${span.lastSeq}${pruned}, the last at ${printable(span.lastAt)}`}`;
  });
  if (result.problem !== undefined) lines.push(`manifest: ${result.problem}`);
  else if (result.manifest === undefined) lines.push('manifest: none (--unsealed): chains checked, not where they end');
  else {
    const scope = result.manifest.agent === null ? 'every stream' : `agent ${printable(result.manifest.agent)}`;
    const range =
      result.manifest.since === null
        ? 'complete: each stream from seq 1 to its last record when exported'
        : `since ${printable(result.manifest.since)} only: each stream from its first record at or after that time (its last record when none is); before it, only the record just before is in this export`;
    lines.push(`manifest: signed; ${scope}; ${range}`);
  }
  lines.push(result.valid ? `valid: ${result.records} record(s)` : 'invalid');
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * `text` with its control characters (C0, DEL, C1) written as `\uXXXX`: a stream name comes from the
 * file, signed or not, and an escape sequence in it could redraw the terminal to hide a BROKEN line.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
