import { createHash, timingSafeEqual } from 'node:crypto';
import { AttestationServiceUnavailable, InvalidParameterValue } from '../../interfaces/errors.js';
import { FileReadError } from '../../lib/files/regular-file.js';
import { readDriverFile } from './driver-file.js';
import { describeSource, type CheckedDocument, type DocumentSource } from './document-source.js';
import { isRetryableStatus } from './retryable-status.js';

export interface FetchLimits {
  /** Whole-download timeout for a URL. */
  readonly timeoutMs: number;
  /** Largest accepted document, in bytes (checked while reading, before it is all in memory). */
  readonly maxBytes: number;
  /** The task's signal: aborting it stops the download and rejects with its reason. */
  readonly signal: AbortSignal;
}

/**
 * Reads a document from its file or URL, bounded in size and time, then checks its sha256 against the
 * expected checksum (constant-time) when one is given. Nothing is parsed here and nothing is sent
 * anywhere: a mismatch stops the caller before it talks to any attestation service.
 *
 * @throws InvalidParameterValue for a missing file, a 4xx answer (but 408 and 429), an oversized
 *   document, or a checksum mismatch (naming `driver_info.<field>_checksum`).
 * @throws AttestationServiceUnavailable when the URL cannot be reached, times out or answers 5xx, 408 or 429.
 */
export async function fetchCheckedDocument(document: CheckedDocument, limits: FetchLimits): Promise<Uint8Array> {
  const bytes = document.source.kind === 'file' ? await readBoundedFile(document.source, limits) : await download(document.source, limits);
  if (document.checksum !== undefined) {
    checkSha256(bytes, document.checksum, document.source.field);
  }
  return bytes;
}

/**
 * Compares sha256(`bytes`) with the expected lowercase hex digest in constant time.
 *
 * @throws InvalidParameterValue naming `driver_info.<field>_checksum` on a mismatch.
 */
export function checkSha256(bytes: Uint8Array, expectedHex: string, field: string): void {
  const actual = createHash('sha256').update(bytes).digest();
  const expected = Buffer.from(expectedHex, 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new InvalidParameterValue(
      `driver_info.${field}_checksum`,
      `the fetched ${field} has sha256 ${actual.toString('hex')}, not the expected ${expectedHex}; nothing was sent to the attestation service`,
    );
  }
}

async function readBoundedFile(source: Extract<DocumentSource, { kind: 'file' }>, limits: FetchLimits): Promise<Uint8Array> {
  limits.signal.throwIfAborted();
  try {
    return new Uint8Array(await readDriverFile(source.path, `driver_info.${source.field}`, limits.maxBytes));
  } catch (error) {
    if (error instanceof InvalidParameterValue && error.cause instanceof FileReadError && error.cause.fault === 'too-large') {
      throw tooLarge(source, limits.maxBytes);
    }
    throw error;
  }
}

async function download(source: Extract<DocumentSource, { kind: 'url' }>, limits: FetchLimits): Promise<Uint8Array> {
  limits.signal.throwIfAborted();
  const signal = AbortSignal.any([limits.signal, AbortSignal.timeout(limits.timeoutMs)]);
  let response: Response;
  try {
    response = await fetch(source.url, { signal, redirect: 'follow', headers: { accept: '*/*' } });
  } catch (cause) {
    throw unreachable(source, limits, cause);
  }
  // A server error, a rate limit or a request timeout: the next attempt may be answered; a driver_info
  // error (which the hooks throw whatever the fail flags) would stop the step for a busy server.
  if (isRetryableStatus(response.status)) {
    await response.body?.cancel();
    throw new AttestationServiceUnavailable(`${describeSource(source)} answered ${response.status}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new InvalidParameterValue(`driver_info.${source.field}`, `${source.url} answered ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    await response.body?.cancel();
    throw tooLarge(source, limits.maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    const reader = response.body?.getReader();
    while (reader !== undefined) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      length += value.length;
      if (length > limits.maxBytes) {
        await reader.cancel();
        throw tooLarge(source, limits.maxBytes);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof InvalidParameterValue) {
      throw error;
    }
    throw unreachable(source, limits, error);
  }
  return new Uint8Array(Buffer.concat(chunks, length));
}

/** The task's abort passes through as its reason; anything else is an unreachable document server. */
function unreachable(source: DocumentSource, limits: FetchLimits, cause: unknown): unknown {
  if (limits.signal.aborted) {
    return limits.signal.reason;
  }
  const detail = cause instanceof Error && cause.name === 'TimeoutError' ? `no answer within ${limits.timeoutMs} ms` : causeText(cause);
  return new AttestationServiceUnavailable(`cannot fetch ${describeSource(source)}: ${detail}`, { cause });
}

function causeText(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause.cause as { code?: string; message?: string } | undefined) ?? undefined;
    return inner?.code ?? inner?.message ?? cause.message;
  }
  return String(cause);
}

function tooLarge(source: DocumentSource, maxBytes: number): InvalidParameterValue {
  return new InvalidParameterValue(`driver_info.${source.field}`, `the document is larger than ${maxBytes} bytes`);
}
