import { setTimeout as delay } from 'node:timers/promises';
import { KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';
import { backoffDelayMs, type ExponentialBackoff } from '../timing/backoff.js';
import { computeAuthTag } from '../tpm/auth-tag.js';
import { parseRetryAfter } from './push/retry-after.js';
import type { HostId } from '../identity/host-id.js';
import { RegistrarClient } from '../registrar/registrar-client.js';
import type { AkInfo, EkInfo, Tpm } from '../tpm-access/tpm-port.js';

export interface EnrolmentInput {
  readonly registrarUrl: string;
  /** PEM CA of an `https://` registrar. */
  readonly registrarCa?: string;
  /** A fixed registrar API version; without it the client negotiates one (`RegistrarClient`). */
  readonly apiVersion?: string | undefined;
  readonly uuid: string;
  readonly tpm: Tpm;
  /** `emulated-tpm`: the registrar never counts this TPM as hardware. */
  readonly identity: 'tpm' | 'emulated-tpm';
  /** Sent when known, so the registrar can refuse this host coming back without its TPM. */
  readonly hostId: HostId | undefined;
  readonly ek: EkInfo;
  readonly ak: AkInfo;
  /** Where the verifier and tenant reach us (a push agent has no address to give). */
  readonly contactIp?: string;
  readonly contactPort?: number;
  /** PEM of our self-signed HTTPS server certificate (`mtls_cert`, pinned by verifier and tenant), or "disabled" (push). */
  readonly serverCertPem: string;
  /** Tries while the registrar cannot be reached or answers 5xx or 429 (default 5: waits of 1, 2, 4 and 8 s in between; `Infinity`: until `signal`). */
  readonly attempts?: number;
  /** The waits between tries (default 1 s doubling). */
  readonly backoff?: ExponentialBackoff;
  /** The wait actually taken for a computed one (a push agent's jitter and bounds, `backoffWaitMs`); default: the computed one. */
  readonly drawWaitMs?: (computedMs: number) => number;
  /** Stops the tries: the wait or the next try rejects with an AbortError. */
  readonly signal?: AbortSignal;
  /** Told of each unreachable try before its wait. */
  readonly onRetry?: (error: unknown, attempt: number, waitMs: number) => void;
}

/** How `withRegistrarRetries` tries again: `EnrolmentInput`'s fields of the same names. */
export type RegistrarRetries = Pick<EnrolmentInput, 'attempts' | 'backoff' | 'drawWaitMs' | 'signal' | 'onRetry'>;

const DEFAULT_ATTEMPTS = 5;
/**
 * The longest `Retry-After` a registrar's 429 or 503 is followed for: Keylime's push back-off cap (spec
 * §10.1). A longer one is waited that long, then tried again (a registrar cannot hold a start for hours).
 */
const MAX_REGISTRAR_RETRY_AFTER_MS = 300_000;
/** 1 s, 2 s, 4 s … between tries; the number of tries bounds it. */
const REGISTRAR_BACKOFF: ExponentialBackoff = { initialDelayMs: 1000, maxDelayMs: Infinity };

/**
 * Registers the agent and proves its AK, as the Rust agent's `registrar_client.rs` does (spec §1.2–1.4):
 * POST the EK, EK certificate, AK, contact address and server certificate; TPM2_ActivateCredential
 * on the returned blob (it only works in the TPM holding that EK, for that AK); then PUT
 * `auth_tag = hex(HMAC-SHA384(base64(credential), uuid))`. Registrar refusals surface as
 * `KeylimeHttpError` carrying the registrar's status and text, and are not retried; an unreachable
 * registrar, or one answering 5xx or 429, is tried again with exponential backoff, or after the
 * `Retry-After` of a 429 or 503 when that is longer (the Rust agent retries too).
 */
export function registerAndActivate(input: EnrolmentInput): Promise<void> {
  return withRegistrarRetries(input, () => enrolOnce(input));
}

/**
 * Runs `enrol`, again with exponential backoff while the registrar cannot be reached or answers 5xx
 * or 429, at most `retries.attempts` times and until `retries.signal` aborts; a refusal is final.
 */
export async function withRegistrarRetries(retries: RegistrarRetries, enrol: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    retries.signal?.throwIfAborted();
    try {
      await enrol();
      return;
    } catch (error) {
      // A registrar still starting, briefly away or answering with a fault of its own (its database
      // down, a proxy's 502/503, 429) is waited for; a refusal (4xx) is final, and so is a failed TLS
      // handshake once the tries are unbounded (a wrong CA does not mend itself).
      const unbounded = retries.attempts === Infinity;
      const away = error instanceof ServiceUnreachableError ? !(unbounded && error.reason === 'tls') : isRegistrarFault(error);
      if (!away || attempt >= (retries.attempts ?? DEFAULT_ATTEMPTS)) {
        throw error;
      }
      const computedMs = backoffDelayMs(attempt, retries.backoff ?? REGISTRAR_BACKOFF);
      // A wait the registrar (or a proxy before it) named is not cut short by a shorter back-off.
      const waitMs = Math.max(retries.drawWaitMs?.(computedMs) ?? computedMs, registrarRetryAfterMs(error));
      retries.onRetry?.(error, attempt, waitMs);
      await delay(waitMs, undefined, retries.signal === undefined ? {} : { signal: retries.signal });
    }
  }
}

/**
 * A status the registrar (or a proxy before it) answers for a fault of its own or a moment's load, not
 * for the registration: 5xx, 429, and 408 (the server closed a request it found slow). The classes the
 * Rust agent's HTTP retry policy treats as transient; every other 4xx is final.
 */
function isRegistrarFault(error: unknown): boolean {
  if (!(error instanceof KeylimeHttpError)) return false;
  const status = error.remoteHttpStatus;
  return status >= 500 || status === 429 || status === 408;
}

/** The `Retry-After` of a registrar's 429 or 503 in milliseconds, at most `MAX_REGISTRAR_RETRY_AFTER_MS`; 0 without one. */
function registrarRetryAfterMs(error: unknown): number {
  if (!(error instanceof KeylimeHttpError) || (error.remoteHttpStatus !== 429 && error.remoteHttpStatus !== 503)) return 0;
  const seconds = parseRetryAfter(error.retryAfter);
  return seconds === undefined ? 0 : Math.min(MAX_REGISTRAR_RETRY_AFTER_MS, seconds * 1000);
}

/** A registrar client for the agent's registration URL (plain HTTP, or https with its CA). */
export function agentRegistrarClient(input: { readonly registrarUrl: string; readonly apiVersion?: string | undefined; readonly registrarCa?: string | undefined }): RegistrarClient {
  return new RegistrarClient({
    baseUrl: input.registrarUrl,
    ...(input.apiVersion === undefined ? {} : { apiVersion: input.apiVersion }),
    ...(input.registrarCa === undefined ? {} : { tls: { ca: input.registrarCa } }),
  });
}

async function enrolOnce(input: EnrolmentInput): Promise<void> {
  const client = agentRegistrarClient(input);
  // A stop closes the client, which ends its request in flight: a registrar that never answers would
  // otherwise hold the stop for the request timeout (30 s).
  const stop = (): void => client.close();
  input.signal?.addEventListener('abort', stop, { once: true });
  try {
    const blob = await client.registerTpm(input.uuid, {
      ekPublic: input.ek.ekPublic,
      ekCertificate: input.ek.ekCertificate,
      akPublic: input.ak.akPublic,
      ...(input.contactIp === undefined ? {} : { ip: input.contactIp }),
      ...(input.contactPort === undefined ? {} : { port: input.contactPort }),
      mtlsCert: input.serverCertPem,
    }, input.identity, input.hostId);
    const credential = await input.tpm.activateCredential(blob);
    // The registrar keys the HMAC with the base64 TEXT of the credential (spec §1.4 [!]).
    const keyText = Buffer.from(credential).toString('base64');
    await client.activate(input.uuid, computeAuthTag(keyText, input.uuid));
  } catch (error) {
    input.signal?.throwIfAborted();
    throw error;
  } finally {
    input.signal?.removeEventListener('abort', stop);
    client.close();
  }
}
