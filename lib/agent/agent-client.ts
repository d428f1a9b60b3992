import { createKeylimeClient, type KeylimeClient } from '../http/keylime-client.js';
import { AgentInfoResults, AgentVersionResults, PubkeyResults, QuoteResults, VerifyKeyResults } from './agent-reply-dtos.js';

export interface AgentClientOptions {
  /** `https://<ip>:<port>` from the registrar's `ip` and `port`. */
  readonly baseUrl: string;
  /** The agent's `mtls_cert` from the registrar: the one server certificate accepted (pinned). */
  readonly agentCert: string;
  /** Client certificate and key from the CA the agent trusts (Keylime `trusted_client_ca`). */
  readonly clientCert: string;
  readonly clientKey: string;
  /** API version in the URLs; default 2.6. */
  readonly apiVersion?: string;
  readonly timeoutMs?: number;
}

export interface IntegrityQuoteRequest {
  readonly nonce: string;
  /** Hex PCR mask, e.g. `0x408400`. */
  readonly mask: string;
  /** Omit `pubkey` from the reply (the verifier already has it). */
  readonly partial: boolean;
  /** First IMA line wanted. */
  readonly imaEntry?: number;
}

/**
 * A typed client for a Keylime pull agent (ours or the Rust keylime-agent) over mTLS, pinning the
 * agent's self-signed certificate. Every method resolves on a 2xx reply whose `results` have the
 * documented shape, or throws the shell's typed errors (`KeylimeHttpError`, `ServiceUnreachableError`
 * — also for a certificate that is not the pinned one —, `BadRemoteReplyError`). It checks shapes
 * only: quotes are judged by lib/tpm and lib/attestation.
 */
export class AgentClient {
  private readonly http: KeylimeClient;
  private readonly prefix: string;

  constructor(options: AgentClientOptions) {
    this.http = createKeylimeClient({
      baseUrl: options.baseUrl,
      tls: { pinnedServerCert: options.agentCert, cert: options.clientCert, key: options.clientKey },
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    this.prefix = `/v${options.apiVersion ?? '2.6'}`;
  }

  /** `GET /version` (unversioned). */
  async version(): Promise<AgentVersionResults> {
    return (await this.http.get('/version', { results: AgentVersionResults })).results;
  }

  /** `GET /v2.x/agent/info` (API ≥ 2.2). */
  async info(): Promise<AgentInfoResults> {
    return (await this.http.get(`${this.prefix}/agent/info`, { results: AgentInfoResults })).results;
  }

  /** `GET /v2.x/keys/pubkey`: the NK public key PEM. */
  async pubkey(): Promise<string> {
    return (await this.http.get(`${this.prefix}/keys/pubkey`, { results: PubkeyResults })).results.pubkey;
  }

  /** `GET /v2.x/quotes/identity?nonce=`. */
  async identityQuote(nonce: string): Promise<QuoteResults> {
    return (await this.http.get(`${this.prefix}/quotes/identity`, { query: { nonce }, results: QuoteResults })).results;
  }

  /** `GET /v2.x/quotes/integrity?nonce=&mask=&partial=&ima_ml_entry=`. */
  async integrityQuote(request: IntegrityQuoteRequest): Promise<QuoteResults> {
    const query = {
      nonce: request.nonce,
      mask: request.mask,
      partial: request.partial ? '1' : '0',
      ...(request.imaEntry === undefined ? {} : { ima_ml_entry: String(request.imaEntry) }),
    };
    return (await this.http.get(`${this.prefix}/quotes/integrity`, { query, results: QuoteResults })).results;
  }

  /** `POST /v2.x/keys/ukey` (tenant): U wrapped under the NK, its auth_tag, an optional encrypted payload. */
  async sendUkey(body: { readonly encryptedKey: string; readonly authTag: string; readonly payload?: string }): Promise<void> {
    await this.http.post(`${this.prefix}/keys/ukey`, {
      encrypted_key: body.encryptedKey,
      auth_tag: body.authTag,
      ...(body.payload === undefined ? {} : { payload: body.payload }),
    });
  }

  /** `POST /v2.x/keys/vkey` (verifier): V wrapped under the NK. */
  async sendVkey(encryptedKey: string): Promise<void> {
    await this.http.post(`${this.prefix}/keys/vkey`, { encrypted_key: encryptedKey });
  }

  /** `GET /v2.x/keys/verify?challenge=`: hex HMAC-SHA384(K, challenge). */
  async verifyKey(challenge: string): Promise<string> {
    return (await this.http.get(`${this.prefix}/keys/verify`, { query: { challenge }, results: VerifyKeyResults })).results.hmac;
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.http.close();
  }
}
