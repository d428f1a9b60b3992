import { EventLogParseError } from '../bytes/parse-errors.js';
import type { ParsedEventLog } from './event-log.js';
import { EventLogTooLarge, MAX_EVENT_LOG_BYTES, parseEventLog } from './parse-event-log.js';
import { finish, type Stepwise } from '../ima/stepwise.js';

const BASE64_TEXT = /^[A-Za-z0-9+/=\s]*$/;
/** A piece of the text without its whitespace: base64 characters, then any padding. */
const BASE64_PIECE = /^([A-Za-z0-9+/]*)(=*)$/;
/**
 * Characters of text checked and decoded between pauses: a millisecond or so. A multiple of 4, so that
 * a text without whitespace (as Keylime sends it) splits into whole 4-character groups.
 */
const BASE64_CHARS_PER_STEP = 1024 * 1024;
/**
 * Characters of base64 text refused before any is decoded: twice the text of the largest log parsed
 * (`MAX_EVENT_LOG_BYTES`), room for a line break every few characters.
 */
const MAX_EVENT_LOG_BASE64_CHARS = 2 * 4 * Math.ceil(MAX_EVENT_LOG_BYTES / 3);

/**
 * Decodes Keylime's `mb_measurement_list` (standard base64 of the binary log; line breaks and other
 * whitespace are ignored). Anything that is not strict base64 throws `EventLogParseError`, so a
 * corrupted transfer is never mistaken for a shorter log.
 */
export function decodeEventLogBase64(text: string): Uint8Array {
  return finish(decodeEventLogBase64Stepwise(text));
}

/**
 * `decodeEventLogBase64` a piece at a time, pausing between pieces (`Stepwise`): a log of tens of MiB
 * is tens of milliseconds of checking and decoding. Whole 4-character groups are decoded as they come
 * (the padding can only end the last one); the same bytes, or the same error. A text far longer than the
 * largest log parsed is refused as it is (`EventLogTooLarge`), not decoded.
 */
export function* decodeEventLogBase64Stepwise(text: string): Stepwise<Uint8Array> {
  if (text.length > MAX_EVENT_LOG_BASE64_CHARS) {
    throw new EventLogTooLarge(`the event log's base64 text is ${text.length} characters, more than the ${MAX_EVENT_LOG_BASE64_CHARS} a boot log may take`, 0, ['base64']);
  }
  const out = Buffer.alloc(Math.ceil(text.length / 4) * 3);
  let written = 0;
  let pending = '';
  let padding = 0;
  for (let at = 0; at < text.length; at += BASE64_CHARS_PER_STEP) {
    const piece = text.slice(at, at + BASE64_CHARS_PER_STEP).replace(/\s+/g, '');
    const match = BASE64_PIECE.exec(piece);
    const characters = match?.[1] ?? '';
    if (match === null || (padding > 0 && characters !== '')) {
      throw notBase64();
    }
    padding += (match[2] ?? '').length;
    if (padding > 2) {
      throw notBase64();
    }
    pending = pending === '' ? piece : pending + piece;
    const whole = pending.length - (pending.length % 4);
    written += out.write(pending.slice(0, whole), written, 'base64');
    pending = pending.slice(whole);
    yield;
  }
  if (pending !== '') {
    throw notBase64();
  }
  return new Uint8Array(out.buffer, out.byteOffset, written);
}

function notBase64(): EventLogParseError {
  return new EventLogParseError('the event log is not valid base64', 0, ['base64']);
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
