import type { X509Certificate } from 'node:crypto';
import { readDerCertificate } from './certificate-quirks.js';
import { CertificateParseError } from './tpm-errors.js';

/** One trusted CA certificate and where it came from. */
export interface CertStoreEntry {
  /** File name (or caller label) plus `#n` for the n-th certificate of a multi-certificate PEM. */
  readonly name: string;
  readonly cert: X509Certificate;
}

/** A file of a store folder that was left out because it holds no certificate, and why. */
export interface SkippedCertFile {
  readonly name: string;
  readonly reason: string;
}

/** A set of trusted EK CA certificates (roots and intermediates alike, as in Keylime's `tpm_cert_store`). */
export interface CertStore {
  readonly entries: readonly CertStoreEntry[];
  /** Files of a loaded folder that hold no certificate (a CA's private key, for example). */
  readonly skipped?: readonly SkippedCertFile[];
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';
/** ASN.1 SEQUENCE tag: every DER certificate starts with it (X.690 §8.9). */
const DER_SEQUENCE = 0x30;

/**
 * Whether `data` starts as a DER certificate: the SEQUENCE tag, then a long-form length of one to four
 * bytes (X.690 §8.1.3.5; a certificate is longer than 127 bytes). Text never has a byte 0x81–0x84
 * second, so a PEM file whose explanatory text starts with `0` is still read as PEM.
 */
function startsAsDer(data: Uint8Array): boolean {
  const length = data[1];
  return data[0] === DER_SEQUENCE && length !== undefined && length >= 0x81 && length <= 0x84;
}

/**
 * The DER certificates in `data`: bytes that start as DER are DER (whatever text they hold), else
 * every PEM CERTIFICATE block; bytes with neither are returned as DER for the caller to refuse.
 * Throws `CertificateParseError` for PEM without a certificate block, a block without END line or a
 * block that is not base64.
 */
export function certificatesDer(data: Uint8Array | string): Uint8Array[] {
  if (typeof data !== 'string' && startsAsDer(data)) {
    return [data];
  }
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('latin1');
  const blocks = pemCertificateBodies(text);
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

/**
 * The bodies (whitespace removed) of the CERTIFICATE blocks of `text`, in one forward pass: each
 * search starts where the last one stopped, so the cost is linear in the text whatever it holds (a
 * lazy regex rescanned to the end from every BEGIN without END, quadratic on hostile input).
 */
function pemCertificateBodies(text: string): string[] {
  const bodies: string[] = [];
  let begin = text.indexOf(BEGIN);
  while (begin >= 0) {
    const end = text.indexOf(END, begin + BEGIN.length);
    if (end < 0) {
      throw new CertificateParseError('PEM CERTIFICATE block without END line');
    }
    bodies.push(text.slice(begin + BEGIN.length, end).replace(/\s+/g, ''));
    begin = text.indexOf(BEGIN, end + END.length);
  }
  return bodies;
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

/**
 * The store of a folder's files (name order, as the caller read them). A file that holds no
 * certificate at all — PEM without a CERTIFICATE block, such as the signing key swtpm keeps in
 * `/var/lib/swtpm-localca` (`signkey.pem`), or DER that is not a certificate — is left out and listed
 * in `skipped` (issue 11 item 13); a CERTIFICATE block that cannot be read is still an error, and so
 * is a folder without any certificate. Reading the folder is the service side's job
 * (lib/pki/cert-store-files.ts).
 *
 * @throws CertificateParseError naming the file, or the folder when it holds no certificate.
 */
export function certStoreFromFolder(folder: string, files: ReadonlyArray<{ readonly name: string; readonly data: Uint8Array }>): CertStore {
  const sources: { name: string; data: Uint8Array }[] = [];
  const skipped: SkippedCertFile[] = [];
  for (const file of files) {
    const reason = noCertificateReason(file.data);
    if (reason === undefined) {
      sources.push(file);
    } else {
      skipped.push({ name: file.name, reason });
    }
  }
  const store = createCertStore(sources);
  if (store.entries.length === 0) {
    throw new CertificateParseError(
      `${folder}: no certificate found${skipped.length > 0 ? ` (skipped: ${skipped.map((f) => f.name).join(', ')})` : ''}`,
    );
  }
  return { entries: store.entries, skipped };
}

/** Why `data` holds no certificate at all, or undefined when it holds (or claims to hold) one. */
function noCertificateReason(data: Uint8Array): string | undefined {
  const text = Buffer.from(data).toString('latin1');
  if (!startsAsDer(data) && text.includes('-----BEGIN ')) {
    const label = /-----BEGIN ([A-Z0-9 ]{1,40})-----/.exec(text)?.[1];
    return text.includes('-----BEGIN CERTIFICATE-----') ? undefined : `PEM ${label ?? 'block'} without a certificate`;
  }
  try {
    readDerCertificate(data);
    return undefined;
  } catch {
    return 'not a DER or PEM certificate';
  }
}
