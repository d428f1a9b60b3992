import { EventLogParseError } from '../bytes/parse-errors.js';
import type { ParsedEventLog } from './event-log.js';
import { parseEventLog } from './parse-event-log.js';

const BASE64_TEXT = /^[A-Za-z0-9+/=\s]*$/;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes Keylime's `mb_measurement_list` (standard base64 of the binary log; line breaks and other
 * whitespace are ignored). Anything that is not strict base64 throws `EventLogParseError`, so a
 * corrupted transfer is never mistaken for a shorter log.
 */
export function decodeEventLogBase64(text: string): Uint8Array {
  const body = text.replace(/\s+/g, '');
  if (body.length % 4 !== 0 || !BASE64_BODY.test(body)) {
    throw new EventLogParseError('the event log is not valid base64', 0, ['base64']);
  }
  return new Uint8Array(Buffer.from(body, 'base64'));
}

/**
 * The binary log held by `input`: the bytes themselves when they are a binary log, or their base64
 * decoding when they are base64 text. A binary log can never pass for base64 text: its first four
 * bytes (PCR index 0 or a small PCR number, little-endian) contain NUL bytes.
 */
export function eventLogBytesFromInput(input: Uint8Array): Uint8Array {
  const text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
  if (input.length > 0 && BASE64_TEXT.test(text)) {
    return decodeEventLogBase64(text);
  }
  return input;
}

/** `parseEventLog` over raw binary or base64 text (see `eventLogBytesFromInput`). */
export function parseEventLogInput(input: Uint8Array): ParsedEventLog {
  return parseEventLog(eventLogBytesFromInput(input));
}
