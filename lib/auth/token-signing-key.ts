import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createFileOnceSync, PRIVATE_KEY_MODE } from '../pki/pem-files.js';
import { existingVerifierKeyFile, readPrivateKeyPair, type PrivateKeyPair } from '../pki/private-key-file.js';

/** The verifier's API-token key (ECDSA P-256 for ES256), in its data dir. */
export const TOKEN_KEY_FILE = 'api-token-key.pem';

export type TokenSigningKey = PrivateKeyPair;

/**
 * Reads the token key from `dataDir` (refused when group or others may use it), or makes it there (mode
 * 0600) on first use, whole or not at all, so that verifiers starting at once on one data dir share one.
 */
export function loadOrCreateTokenKey(dataDir: string): TokenSigningKey {
  const file = path.join(dataDir, TOKEN_KEY_FILE);
  if (!existsSync(file)) {
    // False when another verifier on this data dir made it meanwhile: its key is the one read below.
    createFileOnceSync(file, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), PRIVATE_KEY_MODE);
  }
  return readTokenKey(file);
}

/**
 * Reads the verifier's token key from `dataDir` and never makes one: a token signed with any other
 * key is refused by the verifier, so a folder without it is a mistake to report (`ironlime token issue`).
 */
export function loadTokenKey(dataDir: string): TokenSigningKey {
  return readTokenKey(existingVerifierKeyFile(dataDir, TOKEN_KEY_FILE, 'token key'));
}

/** ES256 signs with P-256 (`prime256v1`) keys only. @throws PkiError */
function readTokenKey(file: string): TokenSigningKey {
  return readPrivateKeyPair(file, { type: 'ec', namedCurve: 'prime256v1', description: "an EC P-256 key (the verifier's API-token key)" });
}
