import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { readDerCertificate } from './certificate-quirks.js';
import { CertificateParseError } from './tpm-errors.js';

/** One trusted CA certificate and where it came from. */
export interface CertStoreEntry {
  /** File name (or caller label) plus `#n` for the n-th certificate of a multi-certificate PEM. */
  readonly name: string;
  readonly cert: X509Certificate;
}

/** A set of trusted EK CA certificates (roots and intermediates alike, as in Keylime's `tpm_cert_store`). */
export interface CertStore {
  readonly entries: readonly CertStoreEntry[];
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/**
 * The DER certificates in `data`: every PEM CERTIFICATE block if there is one, else the bytes as DER.
 * Throws `CertificateParseError` for PEM without a certificate block or a block that is not base64.
 */
export function certificatesDer(data: Uint8Array | string): Uint8Array[] {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('latin1');
  const blocks = [...text.matchAll(PEM_BLOCK)].map((m) => (m[1] ?? '').replace(/\s+/g, ''));
  if (blocks.length === 0) {
    if (typeof data === 'string' || text.startsWith('-----BEGIN')) {
      throw new CertificateParseError('no PEM CERTIFICATE block found');
    }
    return [data];
  }
  return blocks.map((b64) => {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
      throw new CertificateParseError('PEM block is not base64');
    }
    return new Uint8Array(Buffer.from(b64, 'base64'));
  });
}

/** A store made from in-memory PEM or DER data; throws `CertificateParseError` naming the bad entry. */
export function createCertStore(sources: ReadonlyArray<{ readonly name: string; readonly data: Uint8Array | string }>): CertStore {
  const entries: CertStoreEntry[] = [];
  for (const source of sources) {
    let ders: Uint8Array[];
    try {
      ders = certificatesDer(source.data);
    } catch (error) {
      throw new CertificateParseError(`${source.name}: ${detailOf(error)}`, { cause: error });
    }
    ders.forEach((der, i) => {
      try {
        entries.push({ name: ders.length > 1 ? `${source.name}#${i + 1}` : source.name, cert: readDerCertificate(der).cert });
      } catch (error) {
        throw new CertificateParseError(`${source.name}: ${detailOf(error)}`, { cause: error });
      }
    });
  }
  return { entries };
}

function detailOf(error: unknown): string {
  return error instanceof CertificateParseError ? error.detail : (error as Error).message;
}

const CERT_FILE = /\.(pem|crt|cer|der)$/i;

/**
 * Loads every `*.pem`, `*.crt`, `*.cer` and `*.der` file in `dir` (not recursive), in name order.
 * The one file-reading function of `lib/tpm`: called once at start-up, synchronously.
 */
export function loadCertStore(dir: string): CertStore {
  const files = readdirSync(dir).filter((f) => CERT_FILE.test(f)).sort();
  return createCertStore(files.map((name) => ({ name, data: readFileSync(path.join(dir, name)) })));
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
