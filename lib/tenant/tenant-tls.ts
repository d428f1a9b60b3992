import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidConfig } from '../../interfaces/errors.js';
import { readConfiguredFile, readConfiguredPrivateFile } from '../config/read-config-file.js';
import { CA_CERT_FILE } from '../pki/ca-directory.js';
import { caDirOf, loadOrCreateClientTls, type ServiceTls } from '../pki/service-tls.js';
import { tlsFileProblem } from '../pki/tls-file-contents.js';

/** Where the tenant's TLS material comes from: three files, or a services' data dir. */
export interface TenantTlsSource {
  /** A data dir holding the services' CA (`<dir>/ca`); the tenant client certificate is issued there if absent. */
  readonly dataDir?: string;
  /** PEM of the CA that issued the registrar's certificate and the client certificate. */
  readonly caFile?: string;
  /** PEM client certificate from that CA (clientAuth) and its key. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/**
 * The tenant's mTLS identity: `caFile` + `certFile` + `keyFile` when given (all three), else from
 * `dataDir` — its CA, and a `tenant` client certificate issued there on first use. A data dir without
 * a CA is refused rather than given a new one, which no service would trust.
 *
 * @throws InvalidConfig naming the option at fault (unreadable, not PEM, a certificate given as the key, a
 *   key of another certificate: `tlsFileProblem`); PkiError for a key file group or others may use.
 */
export async function resolveTenantTls(source: TenantTlsSource): Promise<ServiceTls> {
  const files = [source.caFile, source.certFile, source.keyFile];
  if (files.some((file) => file !== undefined)) {
    if (files.some((file) => file === undefined)) {
      throw new InvalidConfig('tenant.tls', '--ca, --cert and --key go together');
    }
    const [ca, cert, key] = await Promise.all([
      readPem(source.caFile as string, 'certificate'),
      readPem(source.certFile as string, 'certificate'),
      readPem(source.keyFile as string, 'private key'),
    ]);
    const problem = tlsFileProblem({ ca, cert, key });
    if (problem !== undefined) {
      const option = `--${problem.file}`;
      const file = { ca: source.caFile, cert: source.certFile, key: source.keyFile }[problem.file] as string;
      throw new InvalidConfig('tenant.tls', `${option} ${file} ${problem.detail}`);
    }
    return { ca, cert, key };
  }
  if (source.dataDir === undefined) {
    throw new InvalidConfig('tenant.tls', 'give --data-dir (the services\' data dir) or --ca, --cert and --key');
  }
  const caCert = path.join(caDirOf(source.dataDir), CA_CERT_FILE);
  if (!existsSync(caCert)) {
    throw new InvalidConfig('tenant.dataDir', `no CA at ${caCert}: point --data-dir at the registrar's data dir`);
  }
  return loadOrCreateClientTls({ dataDir: source.dataDir, serviceName: 'tenant' });
}

/** A PEM file's text; the key's file is refused (`PkiError`) when group or others may use it. */
async function readPem(file: string, holds: 'certificate' | 'private key'): Promise<string> {
  const text = holds === 'private key' ? await readConfiguredPrivateFile(file, 'tenant.tls') : await readConfiguredFile(file, 'tenant.tls');
  if (!text.includes('-----BEGIN ')) {
    throw new InvalidConfig('tenant.tls', `${file} is not PEM`);
  }
  return text;
}
