import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { FileReadError, MAX_PEM_FILE_BYTES, readRegularFileSync } from '../files/regular-file.js';
import { certStoreFromFolder, type CertStore } from '../tpm/cert-store.js';
import { CertificateParseError } from '../tpm/tpm-errors.js';

const CERT_FILE = /\.(pem|crt|cer|der)$/i;

/**
 * Loads every `*.pem`, `*.crt`, `*.cer` and `*.der` file in `dir` (not recursive), in name order, into
 * a vendor EK CA store (files without a certificate are skipped: `certStoreFromFolder`). Called once at
 * start-up, synchronously: each a regular file of at most `MAX_PEM_FILE_BYTES`, read without blocking
 * (`readRegularFileSync`), so that a FIFO or a device named `*.pem` there cannot hold the start.
 *
 * @throws CertificateParseError naming the file, or the folder when it holds no certificate.
 */
export function loadCertStore(dir: string): CertStore {
  const names = readdirSync(dir).filter((f) => CERT_FILE.test(f)).sort();
  return certStoreFromFolder(dir, names.map((name) => ({ name, data: readCertFile(dir, name) })));
}

function readCertFile(dir: string, name: string): Buffer {
  try {
    return readRegularFileSync(path.join(dir, name), { setting: dir, maxBytes: MAX_PEM_FILE_BYTES });
  } catch (error) {
    if (error instanceof FileReadError) throw new CertificateParseError(error.detail, { cause: error });
    throw error;
  }
}

/**
 * The vendor EK CA store shipped in the package (`fixtures/tpm_cert_store`, Keylime's 51 certificates,
 * Apache-2.0): found from this module's location, so it works from the source tree and once installed.
 */
export function defaultCertStoreDir(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new CertificateParseError(`no package root above ${import.meta.dirname} for the default store`);
    }
    dir = parent;
  }
  return path.join(dir, 'fixtures', 'tpm_cert_store');
}

/** `loadCertStore(defaultCertStoreDir())`. */
export function loadDefaultCertStore(): CertStore {
  return loadCertStore(defaultCertStoreDir());
}
