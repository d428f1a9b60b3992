import { AxiosError } from 'axios';
import { BadRemoteReplyError, ServiceUnreachableError, type UnreachableReason } from './client-errors.js';

/** OpenSSL's words when TLS meets a peer that does not speak it (a plain HTTP port), reported as EPROTO. */
const NOT_TLS = /wrong version number|packet length too long|http request/i;

/** The typed error for a failed axios request: a size limit is `BadRemoteReplyError`, anything else `ServiceUnreachableError`. */
export function mapTransportError(url: string, error: unknown): Error {
  if (!(error instanceof AxiosError)) {
    return new ServiceUnreachableError(url, 'network', String(error), { cause: error });
  }
  const code = error.code ?? (error.cause as { code?: string } | undefined)?.code ?? '';
  if (error.message.includes('maxContentLength')) {
    return new BadRemoteReplyError(url, 'reply larger than the configured maximum', { cause: error });
  }
  if (code === 'ERR_FR_MAX_BODY_LENGTH_EXCEEDED') {
    return new BadRemoteReplyError(url, 'request body larger than the configured maximum', { cause: error });
  }
  return new ServiceUnreachableError(url, classify(code, error.message), code === '' ? error.message.trim() : `${code}: ${error.message.trim()}`, { cause: error });
}

/** Why a transport error means the service was not reached; `message` tells TLS to a plain port apart. */
export function classify(code: string, message = ''): UnreachableReason {
  if (code === 'EPROTO' && NOT_TLS.test(message)) {
    return 'tls';
  }
  if (code === 'ECONNREFUSED') {
    return 'refused';
  }
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') {
    return 'timeout';
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|PINNED/.test(code)) {
    return 'tls';
  }
  return 'network';
}

/** Which side of a TLS handshake failed deterministically (retrying cannot help). */
export type TlsFailureKind = 'server-certificate' | 'client-certificate' | 'pinned-certificate' | 'protocol';

/**
 * Why a `ServiceUnreachableError` of reason `tls` happened, from the OpenSSL/Node error code behind
 * it: the server's certificate did not verify against our CA or its name (`server-certificate`), the
 * server refused our client certificate with a TLS alert (`client-certificate`), a pinned agent
 * certificate differed (`pinned-certificate`), or the two sides share no protocol — for example TLS
 * spoken to a plain HTTP port (`protocol`). Undefined for any other error, including a handshake that
 * timed out or was cut. Each kind is a configuration fact, not a passing fault: callers fail at once.
 */
export function tlsFailureKind(error: unknown): TlsFailureKind | undefined {
  if (!(error instanceof ServiceUnreachableError) || error.reason !== 'tls') {
    return undefined;
  }
  const cause = error.cause as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  const code = String(cause?.code ?? cause?.cause?.code ?? '');
  if (code === 'EPROTO' && NOT_TLS.test(String(cause?.message ?? ''))) {
    return 'protocol';
  }
  if (code === 'ERR_PINNED_CERT_MISMATCH') {
    return 'pinned-certificate';
  }
  if (/ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)/.test(code)) {
    return 'client-certificate';
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_/.test(code)) {
    return 'server-certificate';
  }
  if (/WRONG_VERSION_NUMBER|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW|PROTOCOL_VERSION|NO_SHARED_CIPHER|HTTP_REQUEST/.test(code)) {
    return 'protocol';
  }
  return undefined;
}
