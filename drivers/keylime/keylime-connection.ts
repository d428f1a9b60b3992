import { readFile } from 'node:fs/promises';
import { AttestationFailed, AttestationServiceUnavailable, InvalidParameterValue, IronlimeError } from '../../interfaces/errors.js';
import { BadRemoteReplyError, KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import type { KeylimeClientTls } from '../../lib/http/keylime-client.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { VerifierClient } from '../../lib/tenant/verifier-client.js';
import type { KeylimeNodeSettings, TlsFile } from './keylime-driver-info.js';
import { VERIFIER_API_VERSION } from './verifier-agent-view.js';

/** The PEMs read from the node's TLS settings. */
export interface TlsMaterial {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

/** Open clients for one operation on one node; `close()` drops their kept-alive sockets. */
export interface KeylimeConnection {
  /** The tenant's verifier client, speaking API `VERIFIER_API_VERSION`. */
  readonly verifier: VerifierClient;
  readonly registrar: RegistrarClient;
  readonly tls: TlsMaterial;
  close(): void;
}

/** Registrar API version used for `GET /agents/{id}` (2.x; `mtls_cert` is there from 2.0). */
const REGISTRAR_API_VERSION = '2.1';

/**
 * Reads the TLS files and opens the verifier and registrar clients. https URLs get the CA and the client
 * certificate; http URLs get neither (the client refuses TLS options on a plain URL).
 *
 * @throws InvalidParameterValue naming the setting whose file cannot be read or is not PEM.
 */
export async function openKeylimeConnection(settings: KeylimeNodeSettings, timeoutMs: number): Promise<KeylimeConnection> {
  const tls: TlsMaterial = {
    ca: await readPem(settings.tlsCa),
    cert: await readPem(settings.tlsCert),
    key: await readPem(settings.tlsKey),
  };
  const verifier = new VerifierClient({ baseUrl: settings.verifierUrl, apiVersion: VERIFIER_API_VERSION, timeoutMs, ...tlsFor(settings.verifierUrl, tls) });
  const registrar = new RegistrarClient({ baseUrl: settings.registrarUrl, apiVersion: REGISTRAR_API_VERSION, timeoutMs, ...tlsFor(settings.registrarUrl, tls) });
  return {
    verifier,
    registrar,
    tls,
    close: () => {
      verifier.close();
      registrar.close();
    },
  };
}

function tlsFor(url: string, tls: TlsMaterial): { tls?: KeylimeClientTls } {
  if (!url.toLowerCase().startsWith('https:')) {
    return {};
  }
  return {
    tls: {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
    },
  };
}

async function readPem(file: TlsFile | undefined): Promise<string | undefined> {
  if (file === undefined) {
    return undefined;
  }
  let text: string;
  try {
    text = await readFile(file.path, 'utf8');
  } catch (cause) {
    throw new InvalidParameterValue(file.setting, `cannot read ${file.path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
  }
  if (!text.includes('-----BEGIN ')) {
    throw new InvalidParameterValue(file.setting, `${file.path} is not a PEM file`);
  }
  return text;
}

/**
 * Maps what a service call threw to the interface's errors: no answer, a 5xx/408/429, a refused client
 * certificate (401/403) or a reply we cannot read is `AttestationServiceUnavailable` — nothing was
 * decided about the node; our own typed verdicts and parameter errors pass through unchanged.
 */
export function toServiceError(error: unknown, what: string): unknown {
  if (error instanceof AttestationFailed || error instanceof AttestationServiceUnavailable || error instanceof InvalidParameterValue) {
    return error;
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
