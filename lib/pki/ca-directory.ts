import { link, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createCertificateAuthority,
  issueFromCa,
  type CertificateType,
  type CreateCaOptions,
} from './certificate-authority.js';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, isErrno, readIfExists, writeFileAtomic, writeTemp } from './pem-files.js';
import { caValidityProblem, forgeValidityOf } from './certificate-validity.js';
import { PkiError } from './pki-error.js';
import { readPrivateIfExists } from './private-file.js';
import { parseCertificateAndKey, type CertificateAndKey } from './x509-builder.js';

/** File names inside a CA folder, as Keylime's `keylime_ca` names them. */
export const CA_CERT_FILE = 'cacert.crt';
export const CA_KEY_FILE = 'ca-private.pem';

/** How long `initCa` waits for another process that is creating the same CA right now. */
const CONCURRENT_INIT_WAIT_MS = 5000;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface CaFiles extends CertificateAndKey {
  readonly certPath: string;
  readonly keyPath: string;
}

export interface InitCaResult extends CaFiles {
  /** False when the CA already existed and was only loaded. */
  readonly created: boolean;
}

export interface IssueCertificateOptions {
  readonly caDir: string;
  /** File name stem: `<name>-cert.crt` and `<name>-private.pem`; also the certificate's CN. */
  readonly name: string;
  readonly type: CertificateType;
  /** DNS names and IP addresses; server certificates always also get localhost, 127.0.0.1 and ::1. */
  readonly sans?: readonly string[];
  readonly validityDays?: number;
  /** A lifetime in milliseconds instead of `validityDays` (tests of certificate renewal). */
  readonly validityMs?: number;
}

/** Paths of the certificate and key `issueCertificate` writes for `name` in `caDir` (`ca` is refused: its key file is the CA's). */
export function issuedCertificatePaths(caDir: string, name: string): { certPath: string; keyPath: string } {
  if (!NAME_PATTERN.test(name)) {
    throw new PkiError(`certificate name ${JSON.stringify(name)} must match ${NAME_PATTERN.source}`);
  }
  // `<name>-private.pem` of `ca` is the CA key: issuing would replace it and lose the CA for good
  // (case-insensitively, for the file systems that fold case).
  if (`${name}-private.pem`.toLowerCase() === CA_KEY_FILE) {
    throw new PkiError(`certificate name ${JSON.stringify(name)} would overwrite the CA's own ${CA_KEY_FILE}: choose another name`);
  }
  return { certPath: path.join(caDir, `${name}-cert.crt`), keyPath: path.join(caDir, `${name}-private.pem`) };
}

/**
 * Creates a CA in `dir` (`cacert.crt`, and `ca-private.pem` with mode 0600; the folder 0700) unless
 * one is there, in which case it is loaded and checked (the key must belong to the certificate, which
 * must be a CA, valid now). Idempotent, and safe when several processes start on one folder: the key file is
 * published with an exclusive link, so exactly one CA wins and the others load it. Never overwrites a
 * half-present CA (a certificate without its key, or the reverse): that throws `PkiError`.
 */
export async function initCa(dir: string, options: CreateCaOptions = {}): Promise<InitCaResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const existing = await loadCaIfPresent(dir);
  if (existing !== undefined) {
    return { ...existing, created: false };
  }
  const pems = createCertificateAuthority(options);
  const certPath = path.join(dir, CA_CERT_FILE);
  const keyPath = path.join(dir, CA_KEY_FILE);
  const tempKey = await writeTemp(keyPath, pems.keyPem, PRIVATE_KEY_MODE);
  try {
    await link(tempKey, keyPath);
  } catch (error) {
    if (isErrno(error, 'EEXIST')) {
      return { ...(await waitForCa(dir)), created: false };
    }
    throw new PkiError(`cannot create ${keyPath}`, { cause: error });
  } finally {
    await unlink(tempKey).catch(() => undefined);
  }
  await writeFileAtomic(certPath, pems.certPem, CERTIFICATE_MODE);
  return { ...pems, certPath, keyPath, created: true };
}

/** Loads the CA in `dir`; throws `PkiError` if it is absent, incomplete, inconsistent, expired or not yet valid. */
export async function loadCa(dir: string): Promise<CaFiles> {
  const ca = await loadCaIfPresent(dir);
  if (ca === undefined) {
    throw new PkiError(`no CA in ${dir} (create one with \`ironlime ca init --dir ${dir}\`)`);
  }
  return ca;
}

/**
 * Issues a certificate from the CA in `caDir` and writes it there as `<name>-cert.crt` and
 * `<name>-private.pem` (mode 0600), replacing any previous pair of that name. The CA must exist.
 */
export async function issueCertificate(options: IssueCertificateOptions): Promise<CaFiles> {
  const paths = issuedCertificatePaths(options.caDir, options.name);
  const ca = await loadCa(options.caDir);
  const issued = issueFromCa(ca, {
    commonName: options.name,
    type: options.type,
    ...(options.sans === undefined ? {} : { sans: options.sans }),
    ...(options.validityDays === undefined ? {} : { validityDays: options.validityDays }),
    ...(options.validityMs === undefined ? {} : { validityMs: options.validityMs }),
  });
  await writeFileAtomic(paths.keyPath, issued.keyPem, PRIVATE_KEY_MODE);
  await writeFileAtomic(paths.certPath, issued.certPem, CERTIFICATE_MODE);
  return { ...issued, ...paths };
}

async function loadCaIfPresent(dir: string): Promise<CaFiles | undefined> {
  const certPath = path.join(dir, CA_CERT_FILE);
  const keyPath = path.join(dir, CA_KEY_FILE);
  const [keyPem, certPem] = [await readPrivateIfExists(keyPath), await readIfExists(certPath)];
  if (keyPem === undefined && certPem === undefined) {
    return undefined;
  }
  if (keyPem === undefined) {
    throw new PkiError(`${certPath} exists without ${CA_KEY_FILE}; refusing to replace the CA`);
  }
  if (certPem === undefined) {
    return waitForCa(dir);
  }
  const { cert } = parseCertificateAndKey({ certPem, keyPem }, `CA in ${dir}`);
  const basic = cert.getExtension('basicConstraints') as { cA?: boolean } | null;
  if (basic?.cA !== true) {
    throw new PkiError(`CA in ${dir}: ${CA_CERT_FILE} is not a CA certificate`);
  }
  // A service would otherwise start on it and issue certificates no peer accepts.
  const problem = caValidityProblem(forgeValidityOf(cert), Date.now());
  if (problem !== undefined) {
    throw new PkiError(
      `CA in ${dir}: ${CA_CERT_FILE} ${problem}; create a new one with \`ironlime ca init --dir ${dir}\` after moving ${dir} aside, then give peers its new ${CA_CERT_FILE} (services reissue their certificates from it)`,
    );
  }
  return { certPem, keyPem, certPath, keyPath };
}

/** Another process published the key and is about to publish the certificate: wait for it. */
async function waitForCa(dir: string): Promise<CaFiles> {
  const certPath = path.join(dir, CA_CERT_FILE);
  const deadline = Date.now() + CONCURRENT_INIT_WAIT_MS;
  while (Date.now() < deadline) {
    if ((await readIfExists(certPath)) !== undefined) {
      return loadCa(dir);
    }
    await sleep(50);
  }
  throw new PkiError(`${path.join(dir, CA_KEY_FILE)} exists without ${CA_CERT_FILE}; refusing to replace the CA`);
}
