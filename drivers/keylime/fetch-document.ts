import { createHash, timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { AttestationServiceUnavailable, InvalidParameterValue } from '../../interfaces/errors.js';
import { describeSource, type CheckedDocument, type DocumentSource } from './document-source.js';

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
 * @throws InvalidParameterValue for a missing file, a 4xx answer, an oversized document, or a
 *   checksum mismatch (naming `driver_info.<field>_checksum`).
 * @throws AttestationServiceUnavailable when the URL cannot be reached, times out or answers 5xx.
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
  let handle;
  try {
    // Without blocking: opening a FIFO to read waits for a writer, holding a libuv pool thread for ever.
    handle = await open(source.path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    throw new InvalidParameterValue(`driver_info.${source.field}`, `cannot read ${source.path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new InvalidParameterValue(`driver_info.${source.field}`, `${source.path} is not a regular file`);
    }
    const { size } = info;
    if (size > limits.maxBytes) {
      throw tooLarge(source, limits.maxBytes);
    }
    // Read one byte more than allowed, in case the file grew since stat.
    const buffer = Buffer.alloc(Math.min(size, limits.maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) {
        break;
      }
      length += bytesRead;
      if (length > limits.maxBytes) {
        throw tooLarge(source, limits.maxBytes);
      }
      if (length === buffer.length) {
        break;
      }
    }
    return new Uint8Array(buffer.subarray(0, length));
  } finally {
    await handle.close();
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
  if (response.status >= 500) {
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
