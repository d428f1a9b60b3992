import { validateDto, type DtoClass } from '../http/dto-validation.js';
import { BadRemoteReplyError } from '../http/client-errors.js';
import { RequestValidationError } from '../http/http-errors.js';
import { RepeatedMemberJsonReader, type RepeatedTexts } from '../http/repeated-member-json.js';
import type { KeylimeClientTls } from '../http/keylime-client-tls.js';
import type { ReplyBudget } from '../http/reply-budget.js';
import type { OffThreadJson } from '../http/off-thread-json.js';
import { ThinHttpsClient } from '../http/thin-https-client.js';
import { AgentInfoResults, AgentVersionResults, PubkeyResults, QuoteResults, VerifyKeyResults } from './agent-reply-dtos.js';

export interface AgentClientOptions {
  /** `https://<ip>:<port>` (`httpsServiceUrl` from the registrar's or the enrolment's `ip` and `port`). */
  readonly baseUrl: string;
  /** The agent's `mtls_cert` from the registrar: the one server certificate accepted (pinned). */
  readonly agentCert: string;
  /**
   * Client certificate and key from the CA the agent trusts (Keylime `trusted_client_ca`), read again
   * for each new connection: the verifier hands its `RenewableTls`, so a renewed certificate is used.
   */
  readonly clientTls: { readonly cert: string; readonly key: string };
  /** API version in the URLs; default 2.6. */
  readonly apiVersion?: string;
  /** Whole-request timeout; default 30 s. */
  readonly timeoutMs?: number;
  /** Largest reply accepted; default 64 MiB (a first quote may carry a whole IMA log). */
  readonly maxReplyBytes?: number;
  /**
   * Boot logs shared by the clients of one process: with it, an integrity quote whose boot log repeats
   * the last one is read without decoding the log again (`RepeatedMemberJsonReader`). The verifier's
   * pull loop polls each agent every few seconds; a one-off caller gains nothing from it.
   */
  readonly bootLogs?: RepeatedTexts;
  /** Bytes of replies the clients of one process read and judge at once (`ThinHttpsClientOptions.replyBudget`): the verifier's pull loop shares one. */
  readonly replyBudget?: ReplyBudget;
  /** Where replies over 1 MiB are parsed, off the event loop (`ThinHttpsClientOptions.offThreadJson`): the verifier's pull loop shares one. */
  readonly offThreadJson?: OffThreadJson;
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

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * THE client for a Keylime pull agent (ours or the Rust keylime-agent) over mTLS, pinning the agent's
 * self-signed certificate — used by the tenant and, kept alive per agent, by the verifier's pull loop.
 * It runs on the thin keep-alive client (`lib/http/thin-https-client.ts`). The typed methods resolve
 * on a 2xx reply whose `results` have the documented shape; the `…Reply` methods hand `results` over
 * unvalidated, for the attestation engine, which checks their shape itself and turns a bad one into a
 * Keylime failure instead of a transport error. Errors: `KeylimeHttpError`, `ServiceUnreachableError`
 * (also for a certificate that is not the pinned one), `BadRemoteReplyError`.
 */
export class AgentClient {
  private readonly http: ThinHttpsClient;
  private prefix: string;
  private readonly quoteReader: RepeatedMemberJsonReader | undefined;

  constructor(options: AgentClientOptions) {
    this.http = new ThinHttpsClient({
      baseUrl: options.baseUrl,
      tls: pinnedWithClient(options.agentCert, options.clientTls),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ...(options.maxReplyBytes === undefined ? {} : { maxReplyBytes: options.maxReplyBytes }),
      ...(options.replyBudget === undefined ? {} : { replyBudget: options.replyBudget }),
      ...(options.offThreadJson === undefined ? {} : { offThreadJson: options.offThreadJson }),
    });
    this.prefix = `/v${options.apiVersion ?? '2.6'}`;
    this.quoteReader = options.bootLogs === undefined ? undefined : new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], options.bootLogs);
  }

  /** Speaks `version` in every later URL (after a renegotiation). */
  useApiVersion(version: string): void {
    this.prefix = `/v${version}`;
  }

  /** `GET /version` (unversioned). */
  async version(): Promise<AgentVersionResults> {
    return this.validated('/version', AgentVersionResults, await this.versionReply());
  }

  /** `GET /version`, `results` unvalidated (the verifier's renegotiation reads what it can). */
  versionReply(): Promise<unknown> {
    return this.http.request('GET', '/version');
  }

  /** `GET /v2.x/agent/info` (API ≥ 2.2). */
  async info(): Promise<AgentInfoResults> {
    const path = `${this.prefix}/agent/info`;
    return this.validated(path, AgentInfoResults, await this.http.request('GET', path));
  }

  /** `GET /v2.x/keys/pubkey`: the NK public key PEM. */
  async pubkey(): Promise<string> {
    const path = `${this.prefix}/keys/pubkey`;
    return this.validated(path, PubkeyResults, await this.http.request('GET', path)).pubkey;
  }

  /** `GET /v2.x/quotes/identity?nonce=`. */
  async identityQuote(nonce: string): Promise<QuoteResults> {
    const path = `${this.prefix}/quotes/identity?nonce=${encodeURIComponent(nonce)}`;
    return this.validated(path, QuoteResults, await this.http.request('GET', path));
  }

  /** `GET /v2.x/quotes/integrity?nonce=&mask=&partial=&ima_ml_entry=` (spec §6.2 step 1). */
  async integrityQuote(request: IntegrityQuoteRequest): Promise<QuoteResults> {
    return this.validated(this.integrityPath(request), QuoteResults, await this.integrityQuoteReply(request));
  }

  /** The same request, `results` unvalidated: the verifier's pull round hands them to the engine. */
  integrityQuoteReply(request: IntegrityQuoteRequest): Promise<unknown> {
    return this.http.request('GET', this.integrityPath(request), undefined, this.quoteReader?.read);
  }

  /**
   * The same request, its `results` handed unvalidated to `judge`, which may take several turns of the
   * event loop: the reply's share of the `replyBudget` is held until `judge`'s answer settles (the
   * verifier's pull round judges a huge IMA list a slice at a time). Resolves to `judge`'s answer.
   */
  judgeIntegrityQuote<T>(request: IntegrityQuoteRequest, judge: (results: unknown) => T | Promise<T>): Promise<T> {
    const path = this.integrityPath(request);
    return this.quoteReader === undefined ? this.http.requestJudged(path, judge) : this.http.requestJudged(path, judge, this.quoteReader.read);
  }

  /** `POST /v2.x/keys/ukey` (tenant): U wrapped under the NK, its auth_tag, an optional encrypted payload. */
  async sendUkey(body: { readonly encryptedKey: string; readonly authTag: string; readonly payload?: string }): Promise<void> {
    const json = JSON.stringify({ encrypted_key: body.encryptedKey, auth_tag: body.authTag, ...(body.payload === undefined ? {} : { payload: body.payload }) });
    await this.http.request('POST', `${this.prefix}/keys/ukey`, json);
  }

  /** `POST /v2.x/keys/vkey` (verifier, spec §6.2 step 3): V wrapped under the NK. */
  async sendVkey(encryptedKey: string): Promise<void> {
    await this.http.request('POST', `${this.prefix}/keys/vkey`, JSON.stringify({ encrypted_key: encryptedKey }));
  }

  /** `GET /v2.x/keys/verify?challenge=`: hex HMAC-SHA384(K, challenge). */
  async verifyKey(challenge: string): Promise<string> {
    const path = `${this.prefix}/keys/verify?challenge=${encodeURIComponent(challenge)}`;
    return this.validated(path, VerifyKeyResults, await this.http.request('GET', path)).hmac;
  }

  /** `POST /v2.x/notifications/revocation` with a signed revocation envelope's JSON (spec §9.2). */
  async notifyRevocation(envelopeJson: string): Promise<void> {
    await this.http.request('POST', `${this.prefix}/notifications/revocation`, envelopeJson);
  }

  /** The kept-alive connection open now (`ThinHttpsClient.connectionSerial`): it changes when the agent restarts. */
  connectionSerial(): number | undefined {
    return this.http.connectionSerial();
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.http.close();
  }

  private integrityPath(request: IntegrityQuoteRequest): string {
    const ima = request.imaEntry === undefined ? '' : `&ima_ml_entry=${request.imaEntry}`;
    return `${this.prefix}/quotes/integrity?nonce=${encodeURIComponent(request.nonce)}&mask=${encodeURIComponent(request.mask)}&partial=${request.partial ? '1' : '0'}${ima}`;
  }

  private validated<T extends object>(path: string, dto: DtoClass<T>, results: unknown): T {
    try {
      return validateDto(dto, results, 'results');
    } catch (error) {
      if (error instanceof RequestValidationError) {
        throw new BadRemoteReplyError(this.http.url(path), error.message, { cause: error });
      }
      throw error;
    }
  }
}

/** The pinned agent certificate and the client's, the latter read when a connection is opened. */
function pinnedWithClient(agentCert: string, client: AgentClientOptions['clientTls']): KeylimeClientTls {
  return {
    pinnedServerCert: agentCert,
    get cert() {
      return client.cert;
    },
    get key() {
      return client.key;
    },
  };
}
