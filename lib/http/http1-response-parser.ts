/** A complete HTTP/1.1 response as the thin client needs it. */
export interface Http1Response {
  readonly status: number;
  readonly statusText: string;
  readonly body: Buffer;
  /** The server keeps the connection open for the next request (no `Connection: close`, body length known). */
  readonly reusable: boolean;
}

/** Why a response could not be read; the caller turns it into `BadRemoteReplyError`. */
export class Http1ParseError extends Error {
  constructor(
    message: string,
    /** The connection ended before any byte of the response's head: the server sent nothing at all. */
    readonly closedBeforeHead = false,
  ) {
    super(message);
  }
}

/** Largest status line plus headers accepted (node's own default limit). */
const MAX_HEAD_BYTES = 16 * 1024;
/** Longest chunk-size line (hex size and extensions) accepted. */
const MAX_CHUNK_LINE = 1024;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?$/;
const DIGITS = /^\d{1,15}$/;
const HEX = /^[0-9a-fA-F]{1,12}$/;
/**
 * A body of a declared length past this many bytes is copied into one buffer of that length as its
 * parts arrive, instead of being joined at the end: joining 40 MiB at once held the event loop for
 * tens of ms, more on a loaded host. Smaller bodies (the usual few KB) are joined as before.
 */
const GATHERED_BODY_BYTES = 1024 * 1024;

type BodyMode = { readonly kind: 'length'; remaining: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' };

/**
 * Reads ONE HTTP/1.1 response (RFC 9112) from the bytes of a connection, fed as they arrive, for a
 * client that sent one GET/POST and waits: status line and headers (at most 16 KiB), then a body
 * framed by `Content-Length`, `Transfer-Encoding: chunked` or the end of the connection; 1xx
 * interim responses are skipped. Strict where a reply could be read two ways: both framings, a
 * second differing `Content-Length`, a transfer coding other than chunked, or a malformed chunk are
 * errors (`Http1ParseError`), never guesses. The body is capped at `maxBodyBytes`.
 */
export class Http1ResponseParser {
  private pending: Buffer | undefined;
  private status = 0;
  private statusText = '';
  private closeAfter = false;
  private body: BodyMode | undefined;
  private readonly parts: Buffer[] = [];
  /** The body of a declared length over `GATHERED_BODY_BYTES`, filled as it arrives (instead of `parts`). */
  private gathered: Buffer | undefined;
  private size = 0;
  private chunkRemaining = -1;
  private inTrailers = false;
  private done: Http1Response | undefined;
  /** Bytes came after the response (a server that does not follow the framing): the connection is not reusable. */
  excess = false;
  /**
   * Once the head is read, the most body bytes the response can have: its `Content-Length`, or
   * `maxBodyBytes` for a chunked body or one that ends with the connection. Undefined before.
   */
  declaredBodyBytes: number | undefined;

  constructor(
    private readonly maxBodyBytes: number,
    private readonly headRequest = false,
  ) {}

  /** Feeds the next bytes; returns the response once complete (bytes after it are `excess`). */
  feed(chunk: Buffer): Http1Response | undefined {
    if (this.done !== undefined) {
      this.excess = true;
      return this.done;
    }
    let data = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    while (this.done === undefined && data.length > 0) {
      const rest = this.body === undefined ? this.readHead(data) : this.readBody(data);
      if (rest === undefined) {
        return undefined;
      }
      data = rest;
    }
    if (this.done !== undefined && data.length > 0) {
      this.excess = true;
    }
    return this.done;
  }

  /** The connection ended: completes a body framed by the close, else reports a truncated response. */
  end(): Http1Response {
    if (this.done !== undefined) {
      return this.done;
    }
    if (this.body?.kind === 'close') {
      return this.finish();
    }
    if (this.body !== undefined) throw new Http1ParseError('connection closed before the response body ended');
    throw new Http1ParseError('connection closed before the response head', this.pending === undefined);
  }

  private readHead(data: Buffer): Buffer | undefined {
    const end = data.indexOf(HEAD_END);
    if (end < 0) {
      if (data.length > MAX_HEAD_BYTES) {
        throw new Http1ParseError('response head larger than 16 KiB');
      }
      this.pending = data;
      return undefined;
    }
    if (end > MAX_HEAD_BYTES) {
      throw new Http1ParseError('response head larger than 16 KiB');
    }
    const lines = data.toString('latin1', 0, end).split('\r\n');
    const statusLine = STATUS_LINE.exec(lines[0] ?? '');
    if (statusLine === null) {
      throw new Http1ParseError('not an HTTP/1.x status line');
    }
    const status = Number(statusLine[1]);
    const rest = data.subarray(end + HEAD_END.length);
    if (status >= 100 && status < 200) {
      if (status === 101) {
        throw new Http1ParseError('unexpected protocol switch');
      }
      return rest;
    }
    this.status = status;
    this.statusText = statusLine[2] ?? '';
    this.body = this.framing(lines, status);
    this.declaredBodyBytes = this.body.kind === 'length' ? this.body.remaining : this.maxBodyBytes;
    if (this.body.kind === 'length' && this.body.remaining === 0) {
      this.finish();
    }
    return rest;
  }

  private framing(lines: readonly string[], status: number): BodyMode {
    let length: string | undefined;
    let chunked = false;
    for (let i = 1; i < lines.length; i += 1) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon <= 0) {
        throw new Http1ParseError('malformed header line');
      }
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!DIGITS.test(value) || (length !== undefined && length !== value)) {
          throw new Http1ParseError('invalid Content-Length');
        }
        length = value;
      } else if (name === 'transfer-encoding') {
        if (value.toLowerCase() !== 'chunked' || chunked) {
          throw new Http1ParseError(`unsupported Transfer-Encoding "${value}"`);
        }
        chunked = true;
      } else if (name === 'connection' && value.toLowerCase().split(/\s*,\s*/).includes('close')) {
        this.closeAfter = true;
      }
    }
    if (chunked && length !== undefined) {
      throw new Http1ParseError('both Content-Length and Transfer-Encoding');
    }
    if (this.headRequest || status === 204 || status === 304) {
      return { kind: 'length', remaining: 0 };
    }
    if (chunked) {
      return { kind: 'chunked' };
    }
    if (length !== undefined) {
      const remaining = Number(length);
      if (remaining > this.maxBodyBytes) {
        throw new Http1ParseError('reply larger than the configured maximum');
      }
      return { kind: 'length', remaining };
    }
    this.closeAfter = true;
    return { kind: 'close' };
  }

  private readBody(data: Buffer): Buffer | undefined {
    const body = this.body as BodyMode;
    if (body.kind === 'chunked') {
      return this.readChunked(data);
    }
    if (body.kind === 'close') {
      this.append(data);
      return undefined;
    }
    const take = Math.min(body.remaining, data.length);
    this.append(take === data.length ? data : data.subarray(0, take));
    body.remaining -= take;
    if (body.remaining === 0) {
      this.finish();
    }
    return data.subarray(take);
  }

  /** RFC 9112 §7.1: `size[;ext]CRLF data CRLF` … `0CRLF [trailers] CRLF`. */
  private readChunked(data: Buffer): Buffer | undefined {
    let at = 0;
    while (at < data.length) {
      if (this.chunkRemaining > 0) {
        const take = Math.min(this.chunkRemaining, data.length - at);
        this.append(data.subarray(at, at + take));
        this.chunkRemaining -= take;
        at += take;
        continue;
      }
      const lineEnd = data.indexOf(CRLF, at);
      if (lineEnd < 0) {
        if (data.length - at > MAX_CHUNK_LINE) {
          throw new Http1ParseError('malformed chunk');
        }
        this.pending = data.subarray(at);
        return undefined;
      }
      const line = data.toString('latin1', at, lineEnd);
      at = lineEnd + CRLF.length;
      if (this.chunkRemaining === 0) {
        // The CRLF that closes a chunk's data.
        if (line !== '') {
          throw new Http1ParseError('malformed chunk');
        }
        this.chunkRemaining = -1;
      } else if (this.inTrailers) {
        if (line === '') {
          this.finish();
          return data.subarray(at);
        }
      } else {
        const size = line.split(';', 1)[0]?.trim() ?? '';
        if (!HEX.test(size)) {
          throw new Http1ParseError('malformed chunk size');
        }
        const bytes = Number.parseInt(size, 16);
        if (bytes === 0) {
          this.inTrailers = true;
        } else {
          if (this.size + bytes > this.maxBodyBytes) {
            throw new Http1ParseError('reply larger than the configured maximum');
          }
          this.chunkRemaining = bytes;
        }
      }
    }
    return data.subarray(at);
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.size += part.length;
    if (this.size > this.maxBodyBytes) {
      throw new Http1ParseError('reply larger than the configured maximum');
    }
    const at = this.size - part.length;
    // A length-framed body's remaining bytes still count this part: at + remaining is its declared length.
    if (this.body?.kind === 'length' && at + this.body.remaining > GATHERED_BODY_BYTES) {
      this.gathered ??= Buffer.allocUnsafe(at + this.body.remaining);
      part.copy(this.gathered, at);
      return;
    }
    this.parts.push(part);
  }

  private finish(): Http1Response {
    const body = this.gathered ?? (this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.size));
    this.done = { status: this.status, statusText: this.statusText, body, reusable: !this.closeAfter && this.body?.kind !== 'close' };
    return this.done;
  }
}
