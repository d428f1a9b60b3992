import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { BadRemoteReplyError, KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';
import { classify, createHttpsAgent } from '../http/keylime-client.js';

export interface AgentConnectionOptions {
  /** `https://<cloudagent_ip>:<cloudagent_port>`. */
  readonly baseUrl: string;
  /** The agent's `mtls_cert`: the one server certificate accepted (pinned, byte for byte). */
  readonly agentCert: string;
  /** The verifier's client certificate and key (from the CA the agents trust). */
  readonly clientCert: string;
  readonly clientKey: string;
  /** Agent API version in the URLs (`supported_version`). */
  readonly apiVersion: string;
  readonly timeoutMs: number;
  /** Largest reply accepted (default 64 MiB, as the other clients: a first round may carry a whole IMA log). */
  readonly maxReplyBytes?: number;
}

export interface IntegrityRequest {
  readonly nonce: string;
  /** Keylime wire form, e.g. `0x408400`. */
  readonly mask: string;
  readonly partial: boolean;
  readonly imaEntry: number;
}

const DEFAULT_MAX_REPLY = 64 * 1024 * 1024;

/**
 * The verifier's kept-alive mTLS connection to one pull agent — the hot path, so a thin client on
 * `node:https` and the shared TLS agent (pinned agent certificate, verifier client certificate):
 * one request, the body gathered as buffers, one `JSON.parse`, no interceptors, no option merging.
 * It hands the quote reply's `results` over unvalidated: the attestation engine checks their shape
 * itself and turns a bad one into Keylime's `qoute_validation.invalid_data` failure instead of a
 * transport error. Errors: `ServiceUnreachableError` (refused, timeout, TLS incl. a certificate that
 * is not the pinned one), `KeylimeHttpError` (non-2xx), `BadRemoteReplyError` (not an envelope, too large).
 */
export class AgentConnection {
  private readonly agent: HttpsAgent;
  private readonly host: string;
  private readonly port: number;
  private prefix: string;
  private readonly origin: string;
  private readonly timeoutMs: number;
  private readonly maxReplyBytes: number;

  constructor(options: AgentConnectionOptions) {
    const base = new URL(options.baseUrl);
    this.agent = createHttpsAgent({ pinnedServerCert: options.agentCert, cert: options.clientCert, key: options.clientKey });
    this.host = base.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(base.port || 443);
    this.origin = base.origin;
    this.prefix = `/v${options.apiVersion}`;
    this.timeoutMs = options.timeoutMs;
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY;
  }

  /** `GET /v<x>/quotes/integrity?nonce=&mask=&partial=&ima_ml_entry=` (spec §6.2 step 1). */
  async integrityQuote(request: IntegrityRequest): Promise<unknown> {
    const query = `nonce=${encodeURIComponent(request.nonce)}&mask=${encodeURIComponent(request.mask)}&partial=${request.partial ? '1' : '0'}&ima_ml_entry=${request.imaEntry}`;
    return this.send('GET', `${this.prefix}/quotes/integrity?${query}`, undefined);
  }

  /** `GET /version` (unversioned): the agent's `results`, naming the API versions it serves (spec §0.2). */
  async versionReply(): Promise<unknown> {
    return this.send('GET', '/version', undefined);
  }

  /** Speaks `version` in every later URL (after a renegotiation). */
  useApiVersion(version: string): void {
    this.prefix = `/v${version}`;
  }

  /** `POST /v<x>/keys/vkey {"encrypted_key"}` (spec §6.2 step 3). */
  async sendVKey(encryptedKey: string): Promise<void> {
    await this.send('POST', `${this.prefix}/keys/vkey`, JSON.stringify({ encrypted_key: encryptedKey }));
  }

  /** `POST /v<x>/notifications/revocation` with a signed revocation envelope (spec §9.2), on this kept-alive connection. */
  async notifyRevocation(envelopeJson: string): Promise<void> {
    await this.send('POST', `${this.prefix}/notifications/revocation`, envelopeJson);
  }

  close(): void {
    this.agent.destroy();
  }

  /** One request; resolves to the envelope's `results`. */
  private send(method: 'GET' | 'POST', path: string, body: string | undefined): Promise<unknown> {
    const url = `${this.origin}${path}`;
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
}

function transportError(url: string, error: Error): Error {
  if (error instanceof ServiceUnreachableError || error instanceof BadRemoteReplyError) {
    return error;
  }
  const code = (error as { code?: string }).code ?? '';
  return new ServiceUnreachableError(url, classify(code), code === '' ? error.message : `${code}: ${error.message}`, { cause: error });
}

function parseEnvelope(text: string): { status: string; results: unknown } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') {
    return undefined;
  }
  const { code, status, results } = value as Record<string, unknown>;
  return typeof code === 'number' && typeof status === 'string' ? { status, results: results ?? {} } : undefined;
}
