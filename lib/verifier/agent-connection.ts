import { createKeylimeClient, type KeylimeClient } from '../http/keylime-client.js';

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
}

export interface IntegrityRequest {
  readonly nonce: string;
  /** Keylime wire form, e.g. `0x408400`. */
  readonly mask: string;
  readonly partial: boolean;
  readonly imaEntry: number;
}

/**
 * The verifier's kept-alive mTLS connection to one pull agent. Unlike the tenant's `AgentClient` it
 * hands the quote reply's `results` over unvalidated: the attestation engine checks their shape
 * itself and turns a bad one into Keylime's `qoute_validation.invalid_data` failure instead of a
 * transport error. Errors: `ServiceUnreachableError` (incl. a certificate that is not the pinned
 * one), `KeylimeHttpError` (non-2xx), `BadRemoteReplyError` (not an envelope).
 */
export class AgentConnection {
  private readonly http: KeylimeClient;
  private readonly prefix: string;

  constructor(options: AgentConnectionOptions) {
    this.http = createKeylimeClient({
      baseUrl: options.baseUrl,
      tls: { pinnedServerCert: options.agentCert, cert: options.clientCert, key: options.clientKey },
      timeoutMs: options.timeoutMs,
    });
    this.prefix = `/v${options.apiVersion}`;
  }

  /** `GET /v<x>/quotes/integrity?nonce=&mask=&partial=&ima_ml_entry=` (spec §6.2 step 1). */
  async integrityQuote(request: IntegrityRequest): Promise<unknown> {
    const reply = await this.http.get(`${this.prefix}/quotes/integrity`, {
      query: {
        nonce: request.nonce,
        mask: request.mask,
        partial: request.partial ? '1' : '0',
        ima_ml_entry: String(request.imaEntry),
      },
    });
    return reply.results;
  }

  /** `POST /v<x>/keys/vkey {"encrypted_key"}` (spec §6.2 step 3). */
  async sendVKey(encryptedKey: string): Promise<void> {
    await this.http.post(`${this.prefix}/keys/vkey`, { encrypted_key: encryptedKey });
  }

  close(): void {
    this.http.close();
  }
}

/** `https://<ip>:<port>` with IPv6 addresses in brackets. */
export function agentBaseUrl(ip: string, port: number): string {
  return `https://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}
