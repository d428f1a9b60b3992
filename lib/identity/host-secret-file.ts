import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { createFileOnceSync, PRIVATE_KEY_MODE } from '../pki/pem-files.js';
import { readPrivateSync } from '../pki/private-file.js';
import { HOST_SECRET_BYTES, newHostSecret } from './host-secret-proof.js';

/** The file, in the agent's data dir, that holds an `id-secret` host's secret. */
export const HOST_SECRET_FILE = 'host-secret';

/**
 * The host's secret: read from the data dir, or made (256 random bits, mode 0600, never overwritten)
 * at first registration; a file group or others may use is refused (`PkiError`). `created` tells the
 * agent it must register anew rather than prove. Made complete or not at all, and on disk before it
 * is used: a file left empty by a crash or a full disk would stop the agent for good.
 */
export function loadOrCreateHostSecret(dataDir: string): { readonly secret: Buffer; readonly created: boolean } {
  const file = path.join(dataDir, HOST_SECRET_FILE);
  if (!existsSync(file)) {
    const secret = newHostSecret();
    // Another start that made it meanwhile wins: its secret is read below.
    if (createFileOnceSync(file, secret.toString('hex') + '\n', PRIVATE_KEY_MODE)) return { secret, created: true };
  }
  // The hex digits and a line end, with room for a CRLF or stray blanks an editor left; no more.
  const text = readPrivateSync(file, HOST_SECRET_BYTES * 2 + 64).trim();
  if (!new RegExp(`^[0-9a-f]{${HOST_SECRET_BYTES * 2}}$`).test(text)) {
    throw new InvalidParameterValue(file, `must hold ${HOST_SECRET_BYTES * 2} hex digits; delete it only if the host is re-registered by an admin`);
  }
  return { secret: Buffer.from(text, 'hex'), created: false };
}
