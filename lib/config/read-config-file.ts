import { readFile } from 'node:fs/promises';
import { InvalidConfig } from '../../interfaces/errors.js';

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
