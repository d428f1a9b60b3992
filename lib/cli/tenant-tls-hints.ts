import { InvalidParameterValue, IronlimeError } from '../../interfaces/errors.js';
import { ServiceUnreachableError } from '../http/client-errors.js';
import { Http1ParseError } from '../http/http1-response-parser.js';
import { tlsFailureKind } from '../http/keylime-transport-errors.js';

/** The tenant's service URLs and where its TLS files came from, for naming the option at fault. */
export interface TenantTlsOptions {
  readonly registrar: string;
  readonly verifier?: string;
  readonly dataDir?: string;
}

/**
 * A failed TLS handshake with the registrar or the verifier as one line naming the option to change,
 * as the keylime driver names its setting (`tlsConfigurationError`): the service certificate does not
 * verify with the CA (`--ca` or `--data-dir`), the service refused the client certificate (`--cert` or
 * `--data-dir`), or the port speaks no TLS (`--verifier`, `--registrar`); an agent that closed the
 * connection unanswered (`agentClientCaHint`). Undefined for anything else,
 * a pinned agent certificate included (that is about the agent, not an option).
 */
export function tenantTlsHint(error: unknown, options: TenantTlsOptions): IronlimeError | undefined {
  const kind = tlsFailureKind(error);
  if (kind === undefined) return agentClientCaHint(error, options);
  if (kind === 'pinned-certificate') return undefined;
  const url = (error as ServiceUnreachableError).url;
  const service = [['--verifier', options.verifier], ['--registrar', options.registrar]].find(
    (entry): entry is [string, string] => entry[1] !== undefined && url.startsWith(entry[1].replace(/\/$/, '')),
  );
  if (service === undefined) return undefined;
  const files = options.dataDir === undefined ? undefined : '--data-dir';
  const message = (error as Error).message;
  switch (kind) {
    case 'server-certificate':
      return new InvalidParameterValue(files ?? '--ca', `the service at ${service[1]} has a certificate that does not verify with this CA (is it the CA of that service?): ${message}`, { cause: error });
    case 'client-certificate':
      return new InvalidParameterValue(files ?? '--cert', `the service at ${service[1]} refused this client certificate (is it from that service's CA?): ${message}`, { cause: error });
    case 'protocol':
      return new InvalidParameterValue(service[0], `${service[1]} speaks no TLS in common with the tenant (is it the service's https port?): ${message}`, { cause: error });
  }
}

/**
 * An agent that closed the connection without a byte of answer, as a Node agent does right after the
 * handshake to a client certificate not from its `--client-ca` (no TLS alert: the tenant saw only
 * "connection closed before the response head"), with what to check; undefined for anything else,
 * the registrar and the verifier included.
 */
function agentClientCaHint(error: unknown, options: TenantTlsOptions): IronlimeError | undefined {
  if (!(error instanceof ServiceUnreachableError) || !(error.cause instanceof Http1ParseError) || !error.cause.closedBeforeHead) return undefined;
  if ([options.verifier, options.registrar].some((url) => url !== undefined && error.url.startsWith(url.replace(/\/$/, '')))) return undefined;
  return new IronlimeError(
    error.code,
    `${error.message} (an agent closes the connection unanswered when the client certificate is not from the CA it trusts: start it with --client-ca <the services' ca/cacert.crt>; its default is its own <data-dir>/ca/cacert.crt)`,
    { cause: error },
  );
}
