import { Agent, request } from 'undici';
import { readBoundedBody } from '../../http/bounded-body.js';
import { parseRetryAfter } from './retry-after.js';

/** The push routes' media type (JSON:API). */
const JSON_API = 'application/vnd.api+json';
/**
 * Largest verifier reply read beyond the size of the request: its own documents are a few KiB, but
 * Keylime's 202 repeats the evidence it was sent (after a boot, the whole IMA log).
 */
const MAX_REPLY_BYTES = 1024 * 1024;

export interface PushHttpReply {
  readonly status: number;
  /** `Retry-After` in seconds, when the verifier sent a valid one (delay-seconds or HTTP-date). */
  readonly retryAfter: number | undefined;
  readonly location: string | undefined;
  /** The parsed JSON:API document, or undefined when the body was not JSON. */
  readonly document: unknown;
}

/**
 * The push agent's connection to the verifier: HTTPS trusting `caCert` (the verifier's CA) — or plain
 * HTTP for an `http://` URL (in-process tests) — JSON:API bodies, replies bounded by 1 MiB plus the
 * size of the request (a verifier may repeat what it was sent), a timeout per request. The agent
 * opens every connection; it listens on nothing.
 */
export class PushHttp {
  private readonly dispatcher: Agent;

  /** `localAddress`: the address connections leave from (a simulated fleet gives each node its own loopback address). */
  constructor(
    private readonly baseUrl: string,
    caCert: string | undefined,
    localAddress?: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.dispatcher = new Agent({
      connect: caCert === undefined ? {} : { ca: caCert },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
  }

  /** One request; `signal` (the agent's stop) aborts it, as does the per-request timeout. */
  async send(method: 'POST' | 'PATCH' | 'GET', path: string, body: object | undefined, token?: string, signal?: AbortSignal): Promise<PushHttpReply> {
    const headers: Record<string, string> = { accept: JSON_API };
    if (body !== undefined) headers['content-type'] = JSON_API;
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    const text = body === undefined ? undefined : JSON.stringify(body);
    const response = await request(new URL(path, this.baseUrl), {
      method,
      headers,
      dispatcher: this.dispatcher,
      signal: signal === undefined ? AbortSignal.timeout(this.timeoutMs) : AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      ...(text === undefined ? {} : { body: text }),
    });
    const limit = MAX_REPLY_BYTES + (text === undefined ? 0 : Buffer.byteLength(text));
    const replyText = await readBoundedBody(response.body, limit, () => new Error(`verifier reply larger than ${limit} bytes`));
    let document: unknown;
    try {
      document = replyText === '' ? undefined : (JSON.parse(replyText) as unknown);
    } catch {
      document = undefined;
    }
    return {
      status: response.statusCode,
      retryAfter: parseRetryAfter(header(response.headers['retry-after'])),
      location: header(response.headers['location']),
      document,
    };
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
