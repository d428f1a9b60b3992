import { readFile } from 'node:fs/promises';
import { InvalidConfig } from '../../interfaces/errors.js';
import { readRequiredPrivate } from '../pki/private-file.js';

/**
 * The text of a file a setting names (a CA, a certificate, a key): an unreadable file stops the
 * service at start with `InvalidConfig` naming the setting, not at first use.
 */
export async function readConfiguredFile(file: string, field: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new InvalidConfig(field, `cannot read ${file}`, { cause });
  }
}

/**
 * As `readConfiguredFile`, for a private key: a file its group or others may use is refused with
 * `PkiError` (see `readPrivateIfExists`), an absent one with `InvalidConfig` naming the setting.
 */
export async function readConfiguredPrivateFile(file: string, field: string): Promise<string> {
  return readRequiredPrivate(file, { label: field, error: InvalidConfig });
}
