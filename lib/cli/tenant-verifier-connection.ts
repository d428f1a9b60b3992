import { Option, type Command } from 'commander';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { TENANT_EK_CHECK_MODES, type TenantEkCheckMode } from '../tenant/ek-certificate-check.js';
import { DEFAULT_REGISTRAR_TLS_URL } from '../tenant/registrar-agents.js';
import { TenantClient } from '../tenant/tenant-client.js';
import { resolveTenantTls } from '../tenant/tenant-tls.js';
import { DEFAULT_VERIFIER_URL } from '../verifier/verifier-client.js';
import { readOptionFile } from './option-file.js';
import { tenantTlsHint } from './tenant-tls-hints.js';

/** Options every verifier-facing tenant command takes: where the services are and the tenant's mTLS identity. */
export interface ConnectionOptions {
  readonly registrar: string;
  readonly verifier: string;
  readonly dataDir?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly ekCheck: TenantEkCheckMode;
  readonly ekCaDir: string[];
}

/** Adds the connection options to `command`. */
export function connection(command: Command): Command {
  return command
    .option('--registrar <url>', 'registrar TLS URL', DEFAULT_REGISTRAR_TLS_URL)
    .option('--verifier <url>', 'verifier URL', DEFAULT_VERIFIER_URL)
    .option('--data-dir <dir>', "the services' data folder: its CA, and a tenant client certificate issued there")
    .option('--ca <file>', 'PEM CA of registrar and verifier (with --cert and --key instead of --data-dir)')
    .option('--cert <file>', 'PEM client certificate from that CA')
    .option('--key <file>', 'PEM key of the client certificate')
    .addOption(new Option('--ek-check <mode>', 'EK certificate check (add and update)').choices(TENANT_EK_CHECK_MODES).default('require'))
    .option('--ek-ca-dir <dir>', 'extra trusted EK CA folder, added to the vendor store (repeatable)', (value: string, all: string[]) => [...all, value], []);
}

/** Where each service's mTLS port is, for a message that names the port to give instead. */
const TLS_PORT_OF: Readonly<Record<'--registrar' | '--verifier', string>> = {
  '--registrar': "the registrar's TLS port, 8891 by default, not its plain-HTTP registration port 8890",
  '--verifier': "the verifier's port, 8881 by default",
};

/**
 * Refuses a service URL the tenant cannot use, naming the option: not a URL (`127.0.0.1:8881`), one with
 * a path, query or fragment (`https://host:8881/v2.6`), or not https — the tenant always presents its client certificate, so a plain `http://` URL could only fail
 * (the HTTP client said `invalid config: baseUrl: TLS options given for an http:// URL`).
 * @throws InvalidParameterValue
 */
export function checkServiceUrl(option: '--registrar' | '--verifier', value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidParameterValue(option, `${JSON.stringify(value)} is not a URL: give https://HOST:PORT (${TLS_PORT_OF[option]})`);
  }
  if (url.protocol !== 'https:') {
    throw new InvalidParameterValue(option, `${value}: the tenant speaks mTLS only: give https://HOST:PORT (${TLS_PORT_OF[option]})`);
  }
  // The tenant puts the API version and path after the address itself: a `/v2.6` here became
  // `/v2.6/v2.1/agents/…` and a bare 404.
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new InvalidParameterValue(option, `${value}: give the service's address only, https://HOST:PORT (the tenant adds the API version and path itself)`);
  }
}

/** Runs `use` with a `TenantClient` built from the options, closed afterwards. */
export async function withTenant(options: ConnectionOptions, use: (client: TenantClient) => Promise<void>): Promise<void> {
  checkServiceUrl('--registrar', options.registrar);
  checkServiceUrl('--verifier', options.verifier);
  const tls = await resolveTenantTls({
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.ca === undefined ? {} : { caFile: options.ca }),
    ...(options.cert === undefined ? {} : { certFile: options.cert }),
    ...(options.key === undefined ? {} : { keyFile: options.key }),
  });
  const client = new TenantClient({
    registrarUrl: options.registrar,
    verifierUrl: options.verifier,
    tls,
    ekCheck: options.ekCheck,
    extraEkCaDirs: options.ekCaDir,
  });
  try {
    await use(client);
  } catch (error) {
    throw tenantTlsHint(error, options) ?? error;
  } finally {
    client.close();
  }
}

/** A file's text; an unreadable file is `InvalidParameterValue` naming the option (`readBytes`). */
export async function readText(file: string, option: string): Promise<string> {
  return Buffer.from(await readBytes(file, option)).toString('utf8');
}

/** A file's bytes (`readOptionFile`); an unreadable or too large file is `InvalidParameterValue` naming the option. */
export async function readBytes(file: string, option: string): Promise<Uint8Array> {
  return new Uint8Array(await readOptionFile(file, option));
}

/** Pretty JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
