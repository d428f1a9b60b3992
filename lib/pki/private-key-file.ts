import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { PkiError } from './pki-error.js';
import { readPrivateSync } from './private-file.js';

/** What a key file must hold: the key's type (`asymmetricKeyType`), its EC curve where it has one, and a name for messages. */
export interface PrivateKeyKind {
  readonly type: 'ec' | 'ed25519';
  readonly namedCurve?: string;
  readonly description: string;
}

/**
 * Largest key file read: these are EC and Ed25519 keys of a few hundred bytes; room to spare for an
 * encrypted PEM or one a tool wrapped with comments, never a file read whole whatever its size.
 */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * The private key in `file` (refused when group or others may use it, `readPrivateSync`), of the kind
 * given: a file that holds no key this can read (corrupt, truncated, encrypted) or a key of another
 * kind is a PkiError naming the file, not an uncoded OpenSSL or JOSE error at first use.
 * @throws PkiError
 */
function readPrivateKeyFile(file: string, kind: PrivateKeyKind): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readPrivateSync(file, MAX_KEY_FILE_BYTES));
  } catch (error) {
    if (error instanceof PkiError) throw error;
    throw new PkiError(`${file} holds no private key that can be read (${(error as Error).message}): it should hold ${kind.description}`, { cause: error });
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== kind.type || (kind.namedCurve !== undefined && curve !== kind.namedCurve)) {
    throw new PkiError(`${file} holds a ${key.asymmetricKeyType ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`} key, not ${kind.description}`);
  }
  return key;
}

/** A private key read from its file, with its public half. */
export interface PrivateKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** `readPrivateKeyFile`, with the public half derived. @throws PkiError */
export function readPrivateKeyPair(file: string, kind: PrivateKeyKind): PrivateKeyPair {
  const privateKey = readPrivateKeyFile(file, kind);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/**
 * The path of a key the verifier made in its data folder (`fileName`, called `what` in messages),
 * for a command that uses it and must never make one: a key made elsewhere signs what the verifier
 * refuses, so a folder without it is reported.
 * @throws InvalidParameterValue naming `--data-dir` when the folder holds no such file.
 */
export function existingVerifierKeyFile(dataDir: string, fileName: string, what: string): string {
  const file = path.join(dataDir, fileName);
  if (!existsSync(file)) {
    throw new InvalidParameterValue(
      '--data-dir',
      `no verifier ${what} (${fileName}) in ${dataDir}: point --data-dir at the verifier's data folder (the one given to ironlime verifier --data-dir)`,
    );
  }
  return file;
}
