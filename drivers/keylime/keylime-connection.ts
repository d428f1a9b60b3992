import { AttestationFailed, AttestationServiceUnavailable, InvalidParameterValue, IronlimeError } from '../../interfaces/errors.js';
import { BadRemoteReplyError, KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import type { KeylimeClientTls } from '../../lib/http/keylime-client-tls.js';
import { tlsFailureKind } from '../../lib/http/keylime-transport-errors.js';
import { MAX_PEM_FILE_BYTES } from '../../lib/files/regular-file.js';
import { readRequiredPrivate } from '../../lib/pki/private-file.js';
import { tlsFileProblem } from '../../lib/pki/tls-file-contents.js';
import { createKeylimeClient } from '../../lib/http/keylime-client.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { LivenessClient } from '../../lib/verifier/liveness/liveness-client.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { readDriverFile } from './driver-file.js';
import type { KeylimeNodeSettings, TlsFile } from './keylime-driver-info.js';

/** The PEMs read from the node's TLS settings. */
export interface TlsMaterial {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

/**
 * Open clients for one operation on one node; `close()` drops their kept-alive sockets and ends the
 * requests still in flight (a read the status wait stopped waiting for at its deadline).
 */
export interface KeylimeConnection {
  /** The verifier client; it negotiates the API version with the verifier on first use. */
  readonly verifier: VerifierClient;
  readonly registrar: RegistrarClient;
  readonly tls: TlsMaterial;
  /** The verifier's liveness routes (nodes without a TPM), on a client of their own opened at first use. */
  liveness(): LivenessClient;
  close(): void;
}

/** Registrar API version used for `GET /agents/{id}` (2.x; `mtls_cert` is there from 2.0). */
const REGISTRAR_API_VERSION = '2.1';

/**
 * Largest reply the driver reads from the verifier (status, history, liveness; docs/keylime-driver.md).
 * The driver's own enrolment's status is about 2 KiB. An ironlime verifier stores an enrolment's
 * `meta_data` and `tpm_policy` as sent, up to 1 Mi UTF-16 units each, and sends them back as JSON
 * strings: up to 3 bytes a unit (a character outside ASCII; a newline, JSON whitespace, is 2), so 6 MiB
 * for both; the other fields are a few KiB. A bigger reply is a service error, never read.
 */
export const MAX_VERIFIER_REPLY_BYTES = 8 * 1024 * 1024;

/**
 * Reads the TLS files and opens the verifier and registrar clients. https URLs get the CA and the client
 * certificate; http URLs get neither (the client refuses TLS options on a plain URL).
 *
 * @throws InvalidParameterValue naming the setting whose file cannot be read or is not PEM, or holds
 *   something a TLS context cannot take (`tlsFileProblem`: a certificate given as the key, a key of another certificate).
 */
export async function openKeylimeConnection(settings: KeylimeNodeSettings, timeoutMs: number): Promise<KeylimeConnection> {
  const tls: TlsMaterial = {
    ca: await readPem(settings.tlsCa),
    cert: await readPem(settings.tlsCert),
    key: await readPem(settings.tlsKey, 'private key'),
  };
  // Checked where a TLS context will take them: a plain-http service gets none of the files.
  const problem = [settings.verifierUrl, settings.registrarUrl].some(isHttps) ? tlsFileProblem(tls) : undefined;
  if (problem !== undefined) {
    const file = { ca: settings.tlsCa, cert: settings.tlsCert, key: settings.tlsKey }[problem.file] as TlsFile;
    throw new InvalidParameterValue(file.setting, `${file.path} ${problem.detail}`);
  }
  const verifierOptions = { baseUrl: settings.verifierUrl, timeoutMs, maxResponseBytes: MAX_VERIFIER_REPLY_BYTES, ...tlsFor(settings.verifierUrl, tls) };
  const verifier = new VerifierClient(verifierOptions);
  const registrar = new RegistrarClient({ baseUrl: settings.registrarUrl, apiVersion: REGISTRAR_API_VERSION, timeoutMs, ...tlsFor(settings.registrarUrl, tls) });
  let liveness: { readonly client: LivenessClient; close(): void } | undefined;
  let closed = false;
  return {
    verifier,
    registrar,
    tls,
    liveness: () => {
      if (liveness === undefined) {
        const http = createKeylimeClient(verifierOptions);
        // Opened after close(): closed at once, so its requests are refused instead of left open.
        if (closed) http.close();
        liveness = { client: new LivenessClient(http), close: () => http.close() };
      }
      return liveness.client;
    },
    close: () => {
      closed = true;
      verifier.close();
      registrar.close();
      liveness?.close();
    },
  };
}

function isHttps(url: string): boolean {
  return url.toLowerCase().startsWith('https:');
}

function tlsFor(url: string, tls: TlsMaterial): { tls?: KeylimeClientTls } {
  if (!isHttps(url)) {
    return {};
  }
  return {
    tls: {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
    },
  };
}

async function readPem(file: TlsFile | undefined, holds: 'certificates' | 'private key' = 'certificates'): Promise<string | undefined> {
  if (file === undefined) {
    return undefined;
  }
  // A client key its group or others may read is refused, as every private key file is.
  const text =
    holds === 'private key'
      ? await readRequiredPrivate(file.path, { label: file.setting, error: InvalidParameterValue, refusalAsError: true })
      : (await readDriverFile(file.path, file.setting, MAX_PEM_FILE_BYTES)).toString('utf8');
  if (!text.includes('-----BEGIN ')) {
    throw new InvalidParameterValue(file.setting, `${file.path} is not a PEM file`);
  }
  return text;
}

/**
 * Maps what a service call threw to the interface's errors: no answer, a 5xx/408/429, a refused client
 * certificate (401/403) or a reply we cannot read is `AttestationServiceUnavailable` — nothing was
 * decided about the node; our own typed verdicts and parameter errors pass through unchanged. A TLS
 * handshake that failed on a certificate or protocol mismatch is a configuration error
 * (`InvalidParameterValue` naming the TLS setting at fault, see `tlsConfigurationError`).
 */
export function toServiceError(error: unknown, what: string, settings: KeylimeNodeSettings): unknown {
  if (error instanceof AttestationFailed || error instanceof AttestationServiceUnavailable || error instanceof InvalidParameterValue) {
    return error;
  }
  const tlsError = tlsConfigurationError(error, settings);
  if (tlsError !== undefined) {
    return tlsError;
  }
  if (error instanceof ServiceUnreachableError || error instanceof BadRemoteReplyError) {
    return new AttestationServiceUnavailable(`${what}: ${error.message}`, { cause: error });
  }
  if (error instanceof KeylimeHttpError) {
    const refusedUs = error.remoteHttpStatus === 401 || error.remoteHttpStatus === 403 ? ' (is the client certificate trusted?)' : '';
    return new AttestationServiceUnavailable(`${what}: ${error.message}${refusedUs}`, { cause: error });
  }
  if (error instanceof IronlimeError) {
    return new AttestationServiceUnavailable(`${what}: ${error.message}`, { cause: error });
  }
  return error;
}

/**
 * A TLS failure that retrying cannot cure, as `InvalidParameterValue` naming the setting to fix: the
 * CA (`keylime_tls_ca`, or `keylime.tlsCaCert`) when the service's certificate does not verify, the
 * client certificate (`keylime_tls_cert`, or `keylime.tlsClientCert`) when the service refuses ours
 * with a TLS alert, the service URL (or its `keylime` config default) when the two sides share no TLS
 * protocol. Undefined for any other error, and for an agent certificate that differs from the
 * registered one (that is about the agent, not our settings). A refused client certificate that
 * shows only as a connection reset (a TLS 1.3 server often closes without an alert the client reads)
 * cannot be told from a network fault and stays a retried `AttestationServiceUnavailable`.
 */
export function tlsConfigurationError(error: unknown, settings: KeylimeNodeSettings): InvalidParameterValue | undefined {
  const kind = tlsFailureKind(error);
  const url = (error as Partial<ServiceUnreachableError>).url ?? '';
  const service = [settings.verifierUrl, settings.registrarUrl].some((base) => url.startsWith(base.replace(/\/$/, '')));
  // An agent is reached with its registered certificate pinned: a mismatch there is about the agent.
  if (kind === undefined || kind === 'pinned-certificate' || !service) {
    return undefined;
  }
  const detail = `${(error as Error).message} (a configuration error: not retried)`;
  switch (kind) {
    case 'server-certificate':
      return new InvalidParameterValue(settings.tlsCa?.setting ?? 'driver_info.keylime_tls_ca', `the service certificate does not verify with this CA: ${detail}`, { cause: error });
    case 'client-certificate':
      return new InvalidParameterValue(settings.tlsCert?.setting ?? 'driver_info.keylime_tls_cert', `the service refused this client certificate: ${detail}`, { cause: error });
    case 'protocol': {
      const setting = url.startsWith(settings.registrarUrl.replace(/\/$/, '')) ? settings.registrarUrlSetting : settings.verifierUrlSetting;
      return new InvalidParameterValue(setting, `no TLS protocol in common with the service (is it an https port?): ${detail}`, { cause: error });
    }
  }
}
