import { IronlimeError, type ErrorCode } from '../../interfaces/errors.js';

/**
 * A structure could not be parsed. Carries the byte offset where parsing stopped and the trail of
 * structures being read (outermost first), like asn1-schema's `schemas` trail, so a message reads
 * "TPMS_ATTEST.attested.pcrSelect: at offset 71: need 4 bytes, 2 left".
 */
export class ParseError extends IronlimeError {
  readonly offset: number;
  readonly path: readonly string[];

  constructor(code: ErrorCode, detail: string, offset: number, path: readonly string[]) {
    const where = path.length > 0 ? `${path.join('.')}: ` : '';
    super(code, `${where}at offset ${offset}: ${detail}`);
    this.offset = offset;
    this.path = path;
  }
}

/** The constructor shape a reader needs to raise the parse error of its own domain. */
export type ParseErrorClass = new (detail: string, offset: number, path: readonly string[]) => ParseError;
