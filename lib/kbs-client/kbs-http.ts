import { Agent, request, type Dispatcher } from 'undici';
import { readBoundedBody } from '../http/bounded-body.js';
import { ServiceUnreachableError } from '../http/client-errors.js';
import { KbsBadReplyError, KbsRefusedError } from './kbs-client-errors.js';

/** Largest broker reply read (a resource JWE of a 1 MiB secret is ~1.4 MiB). */
const MAX_REPLY_BYTES = 8 * 1024 * 1024;

export interface KbsHttpOptions {
  /** Broker base URL, e.g. `https://broker:8080` (the `/kbs/v0` prefix is added). */
  readonly url: string;
  /** PEM CA(s) the broker's certificate must chain to; absent: the system's roots. */
  readonly ca?: string;
  readonly timeoutMs?: number;
}

export interface KbsReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
}

/**
 * One keep-alive HTTPS connection pool to one broker. Non-2xx answers become `KbsRefusedError`
 * (with the RFC 7807 type and detail when the body has them), transport failures
 * `ServiceUnreachableError`, oversized or non-JSON bodies `KbsBadReplyError`.
 */
export class KbsHttp {
  readonly baseUrl: string;
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;

  constructor(options: KbsHttpOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.dispatcher = new Agent({ connect: options.ca === undefined ? {} : { ca: options.ca }, connections: 8 });
  }

  async send(method: 'GET' | 'POST', path: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<KbsReply> {
    const url = `${this.baseUrl}${path}`;
    // One deadline for the whole exchange: undici's own timeouts count each wait apart, so a broker
    // sending a byte now and then would otherwise hold the call forever.
    const deadline = AbortSignal.timeout(this.timeoutMs);
    let reply: Dispatcher.ResponseData;
    let text: string;
    try {
      reply = await request(url, {
        method,
        dispatcher: this.dispatcher,
        signal: deadline,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      if (Number(reply.headers['content-length'] ?? 0) > MAX_REPLY_BYTES) {
        reply.body.destroy();
        throw new KbsBadReplyError(url, `reply larger than ${MAX_REPLY_BYTES} bytes`);
      }
      text = await readBoundedBody(reply.body, MAX_REPLY_BYTES, () => new KbsBadReplyError(url, `reply larger than ${MAX_REPLY_BYTES} bytes`));
    } catch (cause) {
      if (cause instanceof KbsBadReplyError) {
        throw cause;
      }
      if (deadline.aborted) {
        throw new ServiceUnreachableError(url, 'timeout', `no complete reply within ${this.timeoutMs} ms`, { cause });
      }
      const reason = /certificate|TLS|SSL/i.test(String(cause)) ? 'tls' : 'network';
      throw new ServiceUnreachableError(url, reason, String((cause as Error).message ?? cause), { cause });
    }
    let body: unknown;
    try {
      body = text.length === 0 ? undefined : JSON.parse(text);
    } catch (cause) {
      if (reply.statusCode >= 300) {
        throw new KbsRefusedError(url, reply.statusCode, 'unknown', text.slice(0, 200));
      }
      throw new KbsBadReplyError(url, 'reply is not JSON', { cause });
    }
    if (reply.statusCode < 200 || reply.statusCode >= 300) {
      const problem = (body ?? {}) as { type?: unknown; detail?: unknown };
      const type = typeof problem.type === 'string' ? problem.type.replace(/^.*\/errors\//, '') : 'unknown';
      throw new KbsRefusedError(url, reply.statusCode, type, typeof problem.detail === 'string' ? problem.detail : '');
    }
    return { status: reply.statusCode, headers: reply.headers, body };
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}
