import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { readPrivateSync } from '../pki/private-file.js';
import { HOST_SECRET_BYTES, newHostSecret } from './host-secret-proof.js';

/** The file, in the agent's data dir, that holds an `id-secret` host's secret. */
export const HOST_SECRET_FILE = 'host-secret';

/**
 * The host's secret: read from the data dir, or made (256 random bits, mode 0600, never overwritten)
 * at first registration; a file group or others may use is refused (`PkiError`). `created` tells the
 * agent it must register anew rather than prove.
 */
export function loadOrCreateHostSecret(dataDir: string): { readonly secret: Buffer; readonly created: boolean } {
  const file = path.join(dataDir, HOST_SECRET_FILE);
  if (!existsSync(file)) {
    const secret = newHostSecret();
    writeFileSync(file, secret.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    return { secret, created: true };
  }
  const text = readPrivateSync(file).trim();
  if (!new RegExp(`^[0-9a-f]{${HOST_SECRET_BYTES * 2}}$`).test(text)) {
    throw new InvalidParameterValue(file, `must hold ${HOST_SECRET_BYTES * 2} hex digits; delete it only if the host is re-registered by an admin`);
  }
  return { secret: Buffer.from(text, 'hex'), created: false };
}
