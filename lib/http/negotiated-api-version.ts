import { IronlimeError } from '../../interfaces/errors.js';
import { isUnsupportedVersionReply, negotiateApiVersion, versionsInReply } from './api-version.js';
import { KeylimeHttpError } from './client-errors.js';

/** Used when the service names no version: `/version` came with API 2.3 (Keylime 7.12), 2.1 is the oldest we speak. */
const VERSION_WHEN_UNNAMED = '2.1';

/** How a client negotiates the API version with a registrar or verifier. */
export interface ApiVersionNegotiation {
  /** The service as the error names it: `registrar`, `verifier`. */
  readonly service: string;
  /** A fixed version for the URLs: never negotiated, never asked again. */
  readonly fixed: string | undefined;
  /** The versions this client speaks. */
  readonly local: readonly string[];
  /** `GET /version`, its results as received. */
  readonly askVersions: () => Promise<unknown>;
  /** Statuses of a `GET /version` refusal that mean the service predates it: it is then spoken to in 2.1. */
  readonly predatesVersionRoute: readonly number[];
}

/**
 * A client's API version (spec §0.2): unless fixed, the first use asks `GET /version` and takes the
 * highest version both sides speak (Keylime `negotiate_version`); a failed negotiation is asked again
 * at the next use. No version in common is `ERR_UNSUPPORTED_API_VERSION`.
 */
export class NegotiatedApiVersion {
  private negotiated: Promise<string> | undefined;

  constructor(private readonly options: ApiVersionNegotiation) {}

  /** The version the client uses (negotiated on first use unless fixed). */
  current(): Promise<string> {
    if (this.options.fixed !== undefined) {
      return Promise.resolve(this.options.fixed);
    }
    this.negotiated ??= this.negotiate().catch((error: unknown) => {
      this.negotiated = undefined;
      throw error;
    });
    return this.negotiated;
  }

  /**
   * Runs `send` with the `/v<x.y>` prefix. Refused with "API version not supported" (the service was
   * replaced by an older one), a negotiated client asks `/version` again and, when that gives another
   * version, sends once more with it: the refused request was not acted on.
   */
  async call<T>(send: (prefix: string) => Promise<T>): Promise<T> {
    const version = await this.current();
    try {
      return await send(`/v${version}`);
    } catch (error) {
      if (this.options.fixed !== undefined || !(error instanceof KeylimeHttpError) || !isUnsupportedVersionReply(error.remoteHttpStatus, error.status)) {
        throw error;
      }
      this.negotiated = undefined;
      const renegotiated = await this.current();
      if (renegotiated === version) {
        throw error;
      }
      return send(`/v${renegotiated}`);
    }
  }

  private async negotiate(): Promise<string> {
    const { service, local, askVersions, predatesVersionRoute } = this.options;
    let results: unknown;
    try {
      results = await askVersions();
    } catch (error) {
      if (error instanceof KeylimeHttpError && predatesVersionRoute.includes(error.remoteHttpStatus)) {
        return VERSION_WHEN_UNNAMED;
      }
      throw error;
    }
    const remote = versionsInReply(results) ?? [];
    const common = negotiateApiVersion(remote, local);
    if (common === undefined) {
      throw new IronlimeError(
        'ERR_UNSUPPORTED_API_VERSION',
        `the ${service} speaks API ${remote.length === 0 ? '(none named)' : remote.join(', ')}; this client speaks ${local.join(', ')}`,
      );
    }
    return common;
  }
}
