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

/** TPM 2.0 marshalled bytes (or a Keylime quote string) are malformed. */
export class TpmParseError extends ParseError {
  constructor(detail: string, offset: number, path: readonly string[]) {
    super('ERR_TPM_PARSE', detail, offset, path);
  }
}

/** An IMA measurement list (ASCII or binary) is malformed. */
export class ImaParseError extends ParseError {
  constructor(detail: string, offset: number, path: readonly string[]) {
    super('ERR_IMA_PARSE', detail, offset, path);
  }
}

/** A TCG PC Client / UEFI event log is malformed. */
export class EventLogParseError extends ParseError {
  constructor(detail: string, offset: number, path: readonly string[]) {
    super('ERR_EVENT_LOG_PARSE', detail, offset, path);
  }
}
