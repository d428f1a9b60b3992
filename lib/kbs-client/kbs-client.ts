import { decodeJwt, type FlattenedJWE } from 'jose';
import {
  DEFAULT_REPORT_DATA_HASH,
  KBS_PREFIX,
  KBS_PROTOCOL_VERSION,
  KBS_SESSION_COOKIE,
  REPORT_DATA_HASHES,
  type ReportDataHash,
  reportDataHashNamed,
  reportDataOf,
  type RuntimeData,
} from '../broker/kbs-wire.js';
import { BrokerCookies } from './broker-cookies.js';
import type { EvidenceProvider } from './evidence-provider.js';
import { KbsBadReplyError, KbsRefusedError } from './kbs-client-errors.js';
import type { KbsHttp } from './kbs-http.js';
import { parseResourceUri } from './resource-uri.js';
import { TeeKeyPair, type TeeKeyKind } from './tee-key-pair.js';

/** `background`: attest to the resource broker itself; `passport`: get a token from the issuer, show it to the broker. */
export type KbsMode = 'background' | 'passport';

export interface KbsClientOptions {
  /** The broker that holds the resources. */
  readonly broker: KbsHttp;
  /** Passport mode: the broker that appraises evidence and issues tokens (default: `broker`). */
  readonly issuer?: KbsHttp;
  readonly evidence: EvidenceProvider;
  readonly mode: KbsMode;
  readonly teeKeyKind?: TeeKeyKind;
  /** Renew the cached token this many seconds before it expires (default 30). */
  readonly renewMarginSeconds?: number;
  /** Unix milliseconds (tests). */
  readonly now?: () => number;
}

/** A resource answer not yet decrypted: the JWE the broker sent, and how to open it with the tee key. */
export interface SealedResource {
  readonly jwe: FlattenedJWE;
  /** Decrypts `jwe` with the tee key. @throws KbsBadReplyError when it does not open (tampered, another key) */
  open(): Promise<Uint8Array>;
}

/** An attestation result the client holds: the token, the session's cookie header and the key both are bound to. */
interface Credential {
  readonly token: string;
  /** `kbs-session-id` and the other cookies the broker set during the attestation (`BrokerCookies`). */
  readonly cookies: string;
  readonly key: TeeKeyPair;
  /** Unix seconds. */
  readonly expiresAt: number;
}

/**
 * A KBS client over RCAR (guest-components `kbs_protocol` shape: evidence provider, builder, getResource
 * by `kbs:///` URI). It attests once, caches the token (and, in background mode, the session's cookies)
 * until shortly before the token expires, and attests again when the cache is stale or the broker
 * refuses it with 401. Resources come back as JWEs only the tee key opens. The tee key pair is made at
 * the first attestation and kept for the client's life, as guest-components' `KbsClient` keeps the
 * one its builder makes: every attestation of this client binds the same tee-pubkey into its quote.
 */
export class KbsClient {
  private credential: Credential | undefined;
  private teeKey: Promise<TeeKeyPair> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: KbsClientOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The resource at `kbs:///<repository>/<type>/<tag>`, decrypted. */
  async getResource(uri: string): Promise<Uint8Array> {
    return (await this.getSealedResource(uri)).open();
  }

  /**
   * The resource at `kbs:///<repository>/<type>/<tag>` as the broker sent it — the JWE, still closed —
   * and `open`, which decrypts it with the tee key it was wrapped to (what `getResource` returns). For a
   * caller that keeps the secret sealed until it needs it, or checks only some answers (the benchmark).
   */
  async getSealedResource(uri: string): Promise<SealedResource> {
    const path = parseResourceUri(uri);
    const resourcePath = `${KBS_PREFIX}/resource/${path.repository}/${path.type}/${path.tag}`;
    const fresh = this.credential === undefined || this.isStale(this.credential);
    const credential = await this.currentCredential();
    try {
      return await this.fetch(resourcePath, credential);
    } catch (error) {
      if (fresh || !(error instanceof KbsRefusedError) || error.remoteHttpStatus !== 401) {
        throw error;
      }
      this.credential = undefined;
      return this.fetch(resourcePath, await this.currentCredential());
    }
  }

  /** The current attestation token, attesting first when none is cached or it is about to expire. */
  async token(): Promise<string> {
    return (await this.currentCredential()).token;
  }

  /** Forgets the cached token and session (the tee key pair stays). */
  invalidate(): void {
    this.credential = undefined;
  }

  /** The client's one tee key pair, made at its first attestation (concurrent first calls share it); a failed generation is tried again next time. */
  private teeKeyPair(): Promise<TeeKeyPair> {
    this.teeKey ??= TeeKeyPair.generate(this.options.teeKeyKind ?? 'ec').catch((error: unknown) => {
      this.teeKey = undefined;
      throw error;
    });
    return this.teeKey;
  }

  private async fetch(resourcePath: string, credential: Credential): Promise<SealedResource> {
    const headers: Record<string, string> =
      this.options.mode === 'passport' ? { authorization: `Bearer ${credential.token}` } : { cookie: credential.cookies };
    const reply = await this.options.broker.send('GET', resourcePath, { headers });
    const jwe = reply.body as FlattenedJWE;
    const baseUrl = this.options.broker.baseUrl;
    return {
      jwe,
      open: async () => {
        try {
          return await credential.key.decrypt(jwe);
        } catch (cause) {
          throw new KbsBadReplyError(baseUrl, 'the resource JWE does not open with the tee key', { cause });
        }
      },
    };
  }

  private isStale(credential: Credential): boolean {
    return this.now() / 1000 >= credential.expiresAt - (this.options.renewMarginSeconds ?? 30);
  }

  private async currentCredential(): Promise<Credential> {
    if (this.credential !== undefined && !this.isStale(this.credential)) {
      return this.credential;
    }
    const http = this.options.mode === 'passport' ? (this.options.issuer ?? this.options.broker) : this.options.broker;
    this.credential = await this.attest(http);
    return this.credential;
  }

  /**
   * One RCAR exchange: Request → Challenge (+cookie), Attestation → token. The report data is hashed
   * with the Challenge's `selected-hash-algorithm` (SHA-384 when it names none, as guest-components);
   * there are no additional devices, so `additional_evidence` is `""`, sent and bound.
   */
  private async attest(http: KbsHttp): Promise<Credential> {
    const tee = this.options.evidence.tee;
    const auth = await http.send('POST', `${KBS_PREFIX}/auth`, {
      body: { version: KBS_PROTOCOL_VERSION, tee, 'extra-params': { 'supported-hash-algorithms': REPORT_DATA_HASHES } },
    });
    const cookie = cookieOf(auth.headers['set-cookie']);
    const cookies = new BrokerCookies(this.now);
    cookies.take(auth.headers['set-cookie']);
    const challenge = auth.body as { nonce?: unknown; 'extra-params'?: unknown } | undefined;
    const nonce = challenge?.nonce;
    if (cookie === undefined || typeof nonce !== 'string') {
      throw new KbsBadReplyError(http.baseUrl, 'Challenge without nonce or session cookie');
    }
    const hash = selectedHash(challenge?.['extra-params'], http.baseUrl);
    const key = await this.teeKeyPair();
    const runtimeData: RuntimeData = { nonce, 'tee-pubkey': key.publicJwk };
    const additionalEvidence = '';
    const evidence = await this.options.evidence.primaryEvidence(reportDataOf({ runtimeData, additionalEvidence, hash, tee }));
    const attest = await http.send('POST', `${KBS_PREFIX}/attest`, {
      body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence, additional_evidence: additionalEvidence } },
      headers: { cookie: cookies.headerWith(cookie) },
    });
    cookies.take(attest.headers['set-cookie']);
    const token = (attest.body as { token?: unknown } | undefined)?.token;
    if (typeof token !== 'string') {
      throw new KbsBadReplyError(http.baseUrl, 'attest answer without token');
    }
    // The token goes into an Authorization header as it is: only the compact JWS alphabet may reach it.
    if (!COMPACT_JWS.test(token)) {
      throw new KbsBadReplyError(http.baseUrl, 'token is not a compact JWS (three base64url parts)');
    }
    let exp: unknown;
    try {
      exp = decodeJwt(token).exp;
    } catch (cause) {
      throw new KbsBadReplyError(http.baseUrl, 'token is not a JWT', { cause });
    }
    // Without a numeric exp the credential is stale at once (attest again next time), never kept for ever.
    const expiresAt = typeof exp === 'number' && Number.isFinite(exp) ? exp : 0;
    return { token, cookies: cookies.headerWith(cookie), key, expiresAt };
  }
}

/**
 * The hash a Challenge's `extra-params` selects: `selected-hash-algorithm` when it is an object with
 * that member (sha256/384/512, any letter case), else SHA-384 (guest-components `get_hash_algorithm`).
 * @throws KbsBadReplyError for a selection that is not a string or names another hash
 */
function selectedHash(extraParams: unknown, baseUrl: string): ReportDataHash {
  if (extraParams === null || typeof extraParams !== 'object' || !Object.hasOwn(extraParams, 'selected-hash-algorithm')) {
    return DEFAULT_REPORT_DATA_HASH;
  }
  const selected = (extraParams as Record<string, unknown>)['selected-hash-algorithm'];
  const hash = typeof selected === 'string' ? reportDataHashNamed(selected) : undefined;
  if (hash === undefined) {
    throw new KbsBadReplyError(baseUrl, `Challenge selects an unsupported hash algorithm ${JSON.stringify(selected)?.slice(0, 40)}`);
  }
  return hash;
}

/** A JWS in compact serialization (RFC 7515 §7.1): base64url header, payload and signature. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The session cookie's value in a `set-cookie` line: a whole value (up to `;` or the end), not the start of a longer one. */
function cookieOf(header: string | string[] | undefined): string | undefined {
  for (const line of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
    const match = new RegExp(`(?:^|;\\s*)${KBS_SESSION_COOKIE}=([A-Za-z0-9_-]{1,64})\\s*(?:;|$)`).exec(line);
    if (match?.[1] !== undefined) {
      return match[1];
    }
  }
  return undefined;
}
