import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isJsonCount } from '../../attestation/json-count.js';
import { PUSH_AGENT_BACKOFF_CAP_MS } from '../../attestation/push-agent-waits.js';
import type { AkInfo, Tpm, TpmHashAlgorithm } from '../../tpm-access/tpm-port.js';
import { backoffDelayMs } from '../../timing/backoff.js';
import type { AgentLogs } from '../agent-logs.js';
import { certificationKey } from './certification-key.js';
import { challengeBytes } from './challenge-bytes.js';
import { sameOriginPath } from './evidence-location.js';
import { evidenceRequested } from './evidence-requested.js';
import { backoffWaitMs, namedWaitMs } from './failure-wait.js';
import { PushHttp, type PushHttpReply } from './push-http.js';

/** Keylime's push-agent back-off defaults (spec §10.1): 10 s doubling, at most 300 s. */
export const PUSH_BACKOFF_DEFAULTS = Object.freeze({ initialDelayMs: 10_000, maxDelayMs: PUSH_AGENT_BACKOFF_CAP_MS, maxRetries: 5 });
/**
 * Bounds of a wait the verifier names (`seconds_to_next_attestation`, `Retry-After`): at least 1 s, so
 * a 0 makes no hot loop; at most 1 h, far beyond Keylime's 60 s interval and 300 s back-off cap, and
 * below setTimeout's 2^31−1 ms, past which Node fires at once.
 */
const VERIFIER_WAIT_BOUNDS_MS = Object.freeze({ min: 1000, max: 3_600_000 });

/** A session id usable as one path segment as it is: URL-unreserved characters, not "." or "..". */
const SESSION_ID = /^(?!\.{1,2}$)[A-Za-z0-9._~-]{1,128}$/;
/**
 * A bearer token the agent can send back: RFC 6750 §2.1's b64token, at most 1 KiB (Keylime's and
 * ours are a session UUID, a dot and 43 characters). Any other was kept and failed every request
 * (a line break refused by the HTTP client, a 200 KB header answered 431) without the 401 that
 * alone dropped it: the agent opened no new session until restarted.
 */
const BEARER_TOKEN = /^(?=.{1,1024}$)[A-Za-z0-9\-._~+/]+=*$/;

export interface PushBackoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Doublings before the delay stays at `maxDelayMs` (the agent never stops trying). */
  readonly maxRetries: number;
}

export interface PushAgentOptions {
  readonly uuid: string;
  /** `https://HOST:PORT` of the verifier. */
  readonly verifierUrl: string;
  /** PEM of the CA the verifier's certificate chains to. */
  readonly caCert?: string;
  /** The local address to connect from (default: the system's choice). */
  readonly localAddress?: string;
  readonly tpm: Tpm;
  /** The AK (registered with the registrar) and its hash. */
  readonly ak: AkInfo;
  /**
   * The IMA list and UEFI log it sends (`fileAgentLogs` for a real node; an emulated node's own); an
   * unreadable IMA list is offered as no `ima_log`, an unreadable UEFI log as no `uefi_log`.
   */
  readonly logs: AgentLogs;
  /** When the node booted (`system_info.boot_time`). */
  readonly bootTime: Date;
  readonly backoff?: Partial<PushBackoff>;
  readonly log: Logger;
}

/** A reply the agent cannot go on with; `retryAfter` when the verifier named a wait (429, 503). */
export class PushAttemptFailed extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'PushAttemptFailed';
  }
}

interface QuoteRequestParameters {
  readonly challenge: Uint8Array;
  readonly hashAlgorithm: string;
  readonly pcrs: number[];
}

/**
 * A push-model agent (keylime-protocol §10): opens a proof-of-possession session (TPM2_Certify of the
 * AK over the verifier's challenge), then per attestation sends its capabilities, and the evidence the
 * verifier asks for — a quote over the chosen PCRs with the challenge as qualifying data, the UEFI
 * log, the IMA entries from the requested offset — and waits the interval the verifier names (within
 * `VERIFIER_WAIT_BOUNDS_MS`). A 401 opens a new session at once; other failures back off
 * exponentially (Keylime's defaults), or wait the verifier's `Retry-After`, each wait drawn at random
 * around its value so that a fleet does not retry in step (`failure-wait.ts`). Opens no port.
 */
export class PushAgent {
  private readonly http: PushHttp;
  private readonly backoff: PushBackoff;
  private token: string | undefined;

  constructor(private readonly options: PushAgentOptions) {
    this.http = new PushHttp(options.verifierUrl, options.caCert, options.localAddress);
    this.backoff = { ...PUSH_BACKOFF_DEFAULTS, ...options.backoff };
  }

  /**
   * Attests until `signal` aborts; resolves once stopped: the request in flight and the wait are
   * aborted, and no quote is made after it. A 401 opens a new session at once; a second 401 in a row
   * backs off like any other failure.
   */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let reauthenticated = false;
    while (!signal.aborted) {
      let waitMs: number;
      try {
        waitMs = verifierWaitMs(await this.attestOnce(signal));
        failures = 0;
        reauthenticated = false;
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof PushAttemptFailed && error.status === 401 && !reauthenticated) {
          reauthenticated = true;
          this.options.log.warn({ err: error }, 'push attestation refused (401); opening a new session');
          continue;
        }
        reauthenticated = false;
        const named = error instanceof PushAttemptFailed ? error.retryAfter : undefined;
        failures += 1;
        waitMs = named !== undefined ? namedWaitMs(verifierWaitMs(named)) : this.delayAfter(failures);
        this.options.log.warn({ err: error, failures, waitMs }, 'push attestation attempt failed');
      }
      await sleep(waitMs, undefined, { signal }).catch(() => undefined);
    }
    await this.http.close();
  }

  /**
   * The wait after `failures` consecutive failures: initial × 2^(n−1), at most `maxRetries` doublings,
   * capped, then drawn from 0.75 … 1.25 times that and kept within 1 s … 1 h (`backoffWaitMs`).
   */
  delayAfter(failures: number): number {
    const { initialDelayMs, maxDelayMs, maxRetries } = this.backoff;
    return backoffWaitMs(backoffDelayMs(failures, { initialDelayMs, maxDelayMs, maxDoublings: maxRetries }));
  }

  /**
   * One attestation (opening a session first when there is none); resolves to the seconds until the
   * next one. `signal` aborts every request, and no TPM command starts once it has.
   */
  async attestOnce(signal?: AbortSignal): Promise<number> {
    this.token ??= await this.openSession(signal);
    const created = await this.http.send('POST', this.attestationsPath(), await this.capabilities(), this.token, signal);
    this.refuseUnless(created, 201, 'capabilities');
    const requested = evidenceRequested(created.document);
    if (requested === undefined) throw new PushAttemptFailed('capabilities: the verifier\'s 201 requests no evidence this agent can send', created.status);
    const where = this.evidencePath(created);
    signal?.throwIfAborted();
    const evidence = await this.evidence(requested);
    const accepted = await this.http.send('PATCH', where, evidence, this.token, signal);
    this.refuseUnless(accepted, 202, 'evidence');
    const next = (accepted.document as { meta?: { seconds_to_next_attestation?: unknown } } | undefined)?.meta?.seconds_to_next_attestation;
    return typeof next === 'number' && Number.isFinite(next) && next >= 0 ? next : 60;
  }

  /** Releases the connection pool (`run` does it on its own when stopped). */
  close(): Promise<void> {
    return this.http.close();
  }

  private attestationsPath(): string {
    return `/v3.0/agents/${this.options.uuid}/attestations`;
  }

  /** Where the evidence goes: the 201's `Location` when it stays on the verifier's origin, else `/latest`. */
  private evidencePath(created: PushHttpReply): string {
    if (created.location === undefined) return `${this.attestationsPath()}/latest`;
    const path = sameOriginPath(created.location, new URL(this.attestationsPath(), this.options.verifierUrl));
    if (path === undefined) throw new PushAttemptFailed('capabilities: the verifier\'s Location is not a path on its own origin', created.status);
    return path;
  }

  private refuseUnless(reply: PushHttpReply, status: number, what: string): void {
    if (reply.status === status) return;
    if (reply.status === 401) this.token = undefined;
    throw new PushAttemptFailed(`${what}: the verifier answered ${reply.status}`, reply.status, reply.retryAfter);
  }

  /** Opens a session and proves the AK (`POST` then `PATCH /v3.0/sessions`); resolves to the bearer token. */
  async openSession(signal?: AbortSignal): Promise<string> {
    const { uuid, tpm, ak } = this.options;
    const opened = await this.http.send(
      'POST',
      '/v3.0/sessions',
      { data: { type: 'session', attributes: { agent_id: uuid, authentication_supported: [{ authentication_class: 'pop', authentication_type: 'tpm_pop' }] } } },
      undefined,
      signal,
    );
    this.refuseUnless(opened, 200, 'session');
    const data = (opened.document as { data?: { id?: unknown; attributes?: { authentication_requested?: { chosen_parameters?: { challenge?: unknown } }[] } } } | undefined)?.data;
    const sent = data?.attributes?.authentication_requested?.[0]?.chosen_parameters?.challenge;
    if (data?.id === undefined || sent === undefined) throw new PushAttemptFailed('session: no challenge in the reply', opened.status);
    // The id becomes a path segment: a "../" or "?" in it would send the proof elsewhere on the verifier.
    const sessionId = data.id;
    if (!(Number.isSafeInteger(sessionId) || (typeof sessionId === 'string' && SESSION_ID.test(sessionId)))) {
      throw new PushAttemptFailed('session: the session id is not an integer or a string of letters, digits and -._~', opened.status);
    }
    const challenge = challengeBytes(sent);
    if (challenge === undefined) throw new PushAttemptFailed('session: the challenge is not base64 of 1 to 64 bytes', opened.status);
    signal?.throwIfAborted();
    const proof = await tpm.certifyAk(ak.hashAlg, challenge);
    const proved = await this.http.send('PATCH', `/v3.0/sessions/${String(sessionId)}`, {
      data: {
        type: 'session',
        id: sessionId,
        attributes: {
          agent_id: uuid,
          authentication_provided: [
            {
              authentication_class: 'pop',
              authentication_type: 'tpm_pop',
              data: { message: Buffer.from(proof.attest).toString('base64'), signature: Buffer.from(proof.signature).toString('base64') },
            },
          ],
        },
      },
    }, undefined, signal);
    this.refuseUnless(proved, 200, 'session proof');
    const token = (proved.document as { data?: { attributes?: { evaluation?: string; token?: string } } } | undefined)?.data?.attributes;
    if (token?.evaluation !== 'pass' || typeof token.token !== 'string') throw new PushAttemptFailed('session proof: not accepted', proved.status);
    if (!BEARER_TOKEN.test(token.token)) throw new PushAttemptFailed('session proof: the token is not a bearer token of at most 1,024 characters', proved.status);
    return token.token;
  }

  /** Phase 1's body: the quote the AK can make, and the logs this node has. */
  async capabilities(): Promise<object> {
    const { ak, bootTime, logs } = this.options;
    const items: object[] = [
      {
        evidence_class: 'certification',
        evidence_type: 'tpm_quote',
        capabilities: {
          component_version: '2.0',
          hash_algorithms: [ak.hashAlg],
          signature_schemes: [ak.signAlg],
          available_subjects: { [ak.hashAlg]: Array.from({ length: 24 }, (_, i) => i) },
          certification_keys: [certificationKey(ak)],
        },
      },
    ];
    if ((await logs.bootLogBase64()) !== undefined) {
      items.push({
        evidence_class: 'log',
        evidence_type: 'uefi_log',
        capabilities: { evidence_version: '2.1', entry_count: 0, supports_partial_access: false, appendable: false, formats: ['application/octet-stream'] },
      });
    }
    const lines = await logs.imaLineCount();
    if (lines !== undefined) {
      items.push({
        evidence_class: 'log',
        evidence_type: 'ima_log',
        capabilities: { entry_count: lines, supports_partial_access: true, appendable: true, formats: ['text/plain'] },
      });
    }
    return { data: { type: 'attestation', attributes: { evidence_supported: items, system_info: { boot_time: bootTime.toISOString().replace(/\.\d{3}Z$/, 'Z') } } } };
  }

  /**
   * Phase 2's body: what was asked for — the quote first, then the logs (read after it: a log ahead
   * of PCR 10 is tolerated, one behind is not). Keylime asks for no quote when the agent's policy
   * requires no PCR; then only the logs asked for are sent.
   */
  async evidence(requested: readonly unknown[]): Promise<object> {
    const items: object[] = [];
    const quoteItem = requested.find((item) => (item as { evidence_type?: unknown }).evidence_type === 'tpm_quote');
    if (quoteItem !== undefined) items.push(await this.quoteEvidence(quoteParameters(quoteItem)));
    if (requested.some((item) => (item as { evidence_type?: unknown }).evidence_type === 'uefi_log')) {
      items.push({ evidence_class: 'log', evidence_type: 'uefi_log', data: { entries: (await this.options.logs.bootLogBase64()) ?? '' } });
    }
    const ima = requested.find((item) => (item as { evidence_type?: unknown }).evidence_type === 'ima_log') as
      | { chosen_parameters?: { starting_offset?: unknown; entry_count?: unknown } }
      | undefined;
    if (ima !== undefined) {
      const { starting_offset: offset, entry_count: most } = ima.chosen_parameters ?? {};
      items.push({ evidence_class: 'log', evidence_type: 'ima_log', data: await this.imaEntriesFrom(isJsonCount(offset) ? offset : 0, isJsonCount(most) ? most : undefined) });
    }
    return { data: { type: 'attestation', attributes: { evidence_collected: items } } };
  }

  /**
   * The IMA lines from `offset` on and their count. An offset past the end of the list (it restarted,
   * or the verifier counts from another boot) gets no lines, as the Rust push agent answers
   * (`ImaLog::get_entries`), not the whole list from entry 0 as the pull agent's `ima_ml_entry` rule
   * does: the push evidence carries no starting entry, so the verifier would read that list as the
   * lines from `offset` on.
   */
  private async imaEntriesFrom(offset: number, most: number | undefined): Promise<{ readonly entries: string; readonly entry_count: number }> {
    const slice = await this.options.logs.imaList(offset);
    if (slice === undefined || slice.entry !== offset) return { entries: '', entry_count: 0 };
    const count = slice.totalLines - slice.entry;
    if (most === undefined || most >= count) return { entries: slice.list, entry_count: count };
    return { entries: firstLines(slice.list, most), entry_count: most };
  }

  private async quoteEvidence(quote: QuoteRequestParameters): Promise<object> {
    if (quote.hashAlgorithm !== this.options.ak.hashAlg) {
      throw new PushAttemptFailed(`the verifier asked for a ${quote.hashAlgorithm} quote; the AK signs with ${this.options.ak.hashAlg}`, undefined);
    }
    const made = await this.options.tpm.quote({ nonce: quote.challenge, pcrs: quote.pcrs, hashAlg: quote.hashAlgorithm as TpmHashAlgorithm });
    return {
      evidence_class: 'certification',
      evidence_type: 'tpm_quote',
      data: {
        message: Buffer.from(made.attest).toString('base64'),
        signature: Buffer.from(made.signature).toString('base64'),
        subject_data: Buffer.from(made.pcrBlob).toString('base64'),
      },
    };
  }
}

/** A wait the verifier named, in seconds, as milliseconds within `VERIFIER_WAIT_BOUNDS_MS`. */
function verifierWaitMs(seconds: number): number {
  return Math.min(VERIFIER_WAIT_BOUNDS_MS.max, Math.max(VERIFIER_WAIT_BOUNDS_MS.min, seconds * 1000));
}

/**
 * The first `count` lines of IMA list text. §10.4: the verifier refuses more lines than the
 * `entry_count` it asked for in phase 1 (Keylime's `ima_log` chosen parameters); ironlime's verifier
 * asks none, so only a Keylime verifier's request is capped here.
 */
function firstLines(list: string, count: number): string {
  let end = 0;
  for (let line = 0; line < count; line += 1) {
    const newline = list.indexOf('\n', end);
    if (newline === -1) return list;
    end = newline + 1;
  }
  return list.slice(0, end);
}

/** The `chosen_parameters` of the `tpm_quote` item in phase 1's reply. */
function quoteParameters(requested: unknown): QuoteRequestParameters {
  const item = requested as { chosen_parameters?: { challenge?: unknown; hash_algorithm?: unknown; selected_subjects?: Record<string, unknown> } };
  const chosen = item.chosen_parameters;
  const hash = chosen?.hash_algorithm;
  const pcrs = typeof hash === 'string' ? chosen?.selected_subjects?.[hash] : undefined;
  const challenge = challengeBytes(chosen?.challenge);
  if (challenge === undefined || typeof hash !== 'string' || !Array.isArray(pcrs) || !pcrs.every((p) => Number.isInteger(p) && p >= 0 && p <= 23)) {
    throw new PushAttemptFailed('the verifier asked for no usable quote', undefined);
  }
  return { challenge, hashAlgorithm: hash, pcrs: pcrs as number[] };
}
