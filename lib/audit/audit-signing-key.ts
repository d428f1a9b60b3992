import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readRegularFileSync } from '../files/regular-file.js';
import { createFileOnceSync, PRIVATE_KEY_MODE } from '../pki/pem-files.js';
import { existingVerifierKeyFile, MAX_KEY_FILE_BYTES, readPrivateKeyPair, type PrivateKeyPair } from '../pki/private-key-file.js';

/** File names, in the verifier's data dir, of the key that signs its audit records. */
export const AUDIT_PRIVATE_KEY_FILE = 'audit-signing-key.pem';
export const AUDIT_PUBLIC_KEY_FILE = 'audit-public-key.pem';

export type AuditSigningKey = PrivateKeyPair;

/**
 * The verifier's Ed25519 audit key: read from `dataDir`, or made and written there (private key
 * mode 0600) on first use, whole or not at all, so that verifiers starting at once on one data dir share
 * one; a private key file group or others may use is refused. The public key is written beside it for `ironlime audit verify`.
 */
export function loadOrCreateAuditKey(dataDir: string): AuditSigningKey {
  const privatePath = path.join(dataDir, AUDIT_PRIVATE_KEY_FILE);
  const publicPath = path.join(dataDir, AUDIT_PUBLIC_KEY_FILE);
  if (!existsSync(privatePath)) {
    const pair = generateKeyPairSync('ed25519');
    // False when another verifier on this data dir made it meanwhile: its key is read below, and it writes the public key.
    if (createFileOnceSync(privatePath, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), PRIVATE_KEY_MODE)) {
      writeFileSync(publicPath, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    }
  }
  return readAuditKey(privatePath);
}

/**
 * Reads the verifier's audit key from `dataDir` and never makes one (`ironlime audit export`): a
 * manifest signed with any other key reads as edited when checked with the verifier's public key.
 * @throws InvalidParameterValue naming `--data-dir` when the folder holds no audit key; PkiError for one that cannot be used.
 */
export function loadAuditKey(dataDir: string): AuditSigningKey {
  return readAuditKey(existingVerifierKeyFile(dataDir, AUDIT_PRIVATE_KEY_FILE, 'audit key'));
}

function readAuditKey(file: string): AuditSigningKey {
  return readPrivateKeyPair(file, { type: 'ed25519', description: "an Ed25519 key (the verifier's audit key)" });
}

/**
 * Reads an audit public key (PEM) for offline verification: a regular file of at most 64 KiB, read
 * without blocking (`readRegularFileSync`). @throws FileReadError; Node's error for a file holding no key.
 */
export function readAuditPublicKey(file: string): KeyObject {
  return createPublicKey(readRegularFileSync(file, { setting: 'audit public key', maxBytes: MAX_KEY_FILE_BYTES }));
}
