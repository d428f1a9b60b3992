import { createReadStream } from 'node:fs';
import { AuditFormatError } from './audit-errors.js';
import { MANIFEST_LINE_START, MAX_AUDIT_LINE_BYTES, MAX_AUDIT_MANIFEST_LINE_BYTES } from './audit-export-format.js';

/** `\n`: in UTF-8 its byte is never part of another character, so lines are split before decoding. */
const LINE_END = 0x0a;
const MANIFEST_START = Buffer.from(MANIFEST_LINE_START);

/**
 * The lines of an export file as `auditExportTextLines` gives them from its text, read a chunk at a
 * time: memory holds one line, never the file. A line is refused (AuditFormatError naming it) as soon
 * as it grows past its bound, the record line's, or the manifest line's for one that starts as the
 * manifest does, so a file with no line end is not read whole either.
 */
export async function* readAuditExportLines(file: string): AsyncGenerator<string> {
  let pieces: Buffer[] = [];
  let length = 0;
  let lineNumber = 1;
  const take = (piece: Buffer): void => {
    pieces.push(piece);
    length += piece.length;
    if (length > MAX_AUDIT_LINE_BYTES) refuseLong(pieces, length, lineNumber);
  };
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let end = chunk.indexOf(LINE_END); end !== -1; end = chunk.indexOf(LINE_END, start)) {
      take(chunk.subarray(start, end));
      yield Buffer.concat(pieces, length).toString('utf8');
      pieces = [];
      length = 0;
      lineNumber += 1;
      start = end + 1;
    }
    if (start < chunk.length) take(chunk.subarray(start));
  }
  if (length > 0) yield Buffer.concat(pieces, length).toString('utf8');
}

/** Throws for a line past the record bound, unless it may be the manifest and is within the manifest's bound. */
function refuseLong(pieces: readonly Buffer[], length: number, lineNumber: number): void {
  const manifest = Buffer.concat(pieces, MANIFEST_START.length).equals(MANIFEST_START);
  if (!manifest) throw new AuditFormatError(`line ${lineNumber}: longer than ${MAX_AUDIT_LINE_BYTES} bytes`);
  if (length > MAX_AUDIT_MANIFEST_LINE_BYTES) throw new AuditFormatError(`line ${lineNumber}: manifest: longer than ${MAX_AUDIT_MANIFEST_LINE_BYTES} bytes`);
}
