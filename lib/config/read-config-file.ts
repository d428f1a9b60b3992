import { InvalidConfig } from '../../interfaces/errors.js';
import { FileReadError, MAX_PEM_FILE_BYTES, readRegularFile, readRegularFileSync } from '../files/regular-file.js';
import { pemCertificates } from '../pki/pem-certificate.js';
import { readRequiredPrivate } from '../pki/private-file.js';

/** Largest JSON config file read: a config is a few KiB; a longer file is not one. */
const MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024;

/**
 * The text of a file a setting names (a CA, a certificate): an unreadable file stops the service at
 * start with `InvalidConfig` naming the setting, not at first use. Read without blocking, only when it
 * is a regular file of at most `MAX_PEM_FILE_BYTES` (`readRegularFile`): a FIFO given as the file held
 * the start for ever, and /dev/zero grew a buffer until memory ran out.
 */
export async function readConfiguredFile(file: string, field: string): Promise<string> {
  try {
    return (await readRegularFile(file, { setting: field, maxBytes: MAX_PEM_FILE_BYTES })).toString('utf8');
  } catch (error) {
    throw asInvalidConfig(field, error);
  }
}

/**
 * As `readConfiguredFile`, for a CA: refused at start naming the setting when it holds no PEM
 * certificate, or anything beside its certificates (a key, an empty file): a TLS context skips what is
 * not a certificate and falls back to the system roots, so every handshake would fail, as "self-signed
 * certificate in certificate chain", round after round.
 */
export async function readConfiguredCaFile(file: string, field: string): Promise<string> {
  const pem = await readConfiguredFile(file, field);
  if (pemCertificates(pem, { textOutsideBlocks: true }) === undefined) {
    throw new InvalidConfig(field, `${file} holds no PEM certificate`);
  }
  return pem;
}

/**
 * The text of a config file, for the synchronous loaders, refused as `readConfiguredFile` refuses:
 * `InvalidConfig` naming `field`, with `unreadable` (when given) for a file that cannot be opened or
 * read. @throws InvalidConfig
 */
export function readConfigFileSync(file: string, field: string, unreadable?: string): string {
  try {
    return readRegularFileSync(file, { setting: field, maxBytes: MAX_CONFIG_FILE_BYTES }).toString('utf8');
  } catch (error) {
    if (error instanceof FileReadError) throw new InvalidConfig(field, error.fault === 'unreadable' && unreadable !== undefined ? unreadable : error.detail, { cause: error });
    throw error;
  }
}

/**
 * As `readConfiguredFile`, for a private key: a file its group or others may use is refused with
 * `PkiError` (see `readPrivateIfExists`), an absent one with `InvalidConfig` naming the setting.
 */
export async function readConfiguredPrivateFile(file: string, field: string): Promise<string> {
  return readRequiredPrivate(file, { label: field, error: InvalidConfig });
}

function asInvalidConfig(field: string, error: unknown): unknown {
  return error instanceof FileReadError ? new InvalidConfig(field, error.detail, { cause: error }) : error;
}
