import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { BadRemoteReplyError, KeylimeHttpError, ServiceUnreachableError } from './client-errors.js';
import { classify, createHttpsAgent, parseEnvelope, type KeylimeClientTls } from './keylime-client.js';

export interface ThinHttpsClientOptions {
  /** `https://<host>:<port>` (`httpsServiceUrl`); paths are appended as given. */
  readonly baseUrl: string;
  readonly tls: KeylimeClientTls;
  readonly timeoutMs: number;
  /** Largest reply accepted (default 64 MiB: a first round may carry a whole IMA log). */
  readonly maxReplyBytes?: number;
}

const DEFAULT_MAX_REPLY = 64 * 1024 * 1024;

/**
 * A thin Keylime client on `node:https` and one kept-alive TLS agent (`createHttpsAgent`: a CA or one
 * pinned certificate, an optional client certificate): one request, the body gathered as buffers, one
 * `JSON.parse`, no interceptors, no option merging — the verifier's hot path runs through it. Resolves
 * to the envelope's `results`, unvalidated (`{}` for 204). Errors: `ServiceUnreachableError` (refused,
 * timeout, TLS incl. a certificate that is not the pinned one), `KeylimeHttpError` (non-2xx),
 * `BadRemoteReplyError` (not an envelope, too large).
 */
export class ThinHttpsClient {
  private readonly agent: HttpsAgent;
  private readonly host: string;
  private readonly port: number;
  private readonly origin: string;
  private readonly timeoutMs: number;
  private readonly maxReplyBytes: number;

  constructor(options: ThinHttpsClientOptions) {
    const base = new URL(options.baseUrl);
    this.agent = createHttpsAgent(options.tls);
    this.host = base.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(base.port || 443);
    this.origin = base.origin;
    this.timeoutMs = options.timeoutMs;
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY;
  }

  /** The URL a path is sent to (for error messages). */
  url(path: string): string {
    return `${this.origin}${path}`;
  }

  /** One request; resolves to the envelope's `results`. `body` is JSON text. */
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: string): Promise<unknown> {
    const url = this.url(path);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxReplyBytes) {
              req.destroy(new BadRemoteReplyError(url, 'reply larger than the configured maximum'));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', (error) => reject(transportError(url, error)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status === 204) {
              resolve({});
              return;
            }
            const envelope = parseEnvelope(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, size).toString('utf8'));
            if (status < 200 || status > 299) {
              reject(new KeylimeHttpError(url, status, envelope?.status ?? res.statusMessage ?? '', envelope?.results ?? {}));
            } else if (envelope === undefined) {
              reject(new BadRemoteReplyError(url, 'not a Keylime JSON envelope {code, status, results}'));
            } else {
              resolve(envelope.results);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new ServiceUnreachableError(url, 'timeout', `no answer within ${this.timeoutMs} ms`)));
      req.on('error', (error) => reject(transportError(url, error)));
      req.end(body);
    });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

function transportError(url: string, error: Error): Error {
  if (error instanceof ServiceUnreachableError || error instanceof BadRemoteReplyError) {
    return error;
  }
  const code = (error as { code?: string }).code ?? '';
  return new ServiceUnreachableError(url, classify(code, error.message), code === '' ? error.message : `${code}: ${error.message}`, { cause: error });
}
