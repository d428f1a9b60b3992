import { ParseError } from './parse-error.js';

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
