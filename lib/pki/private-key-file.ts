import { createPrivateKey, type KeyObject } from 'node:crypto';
import { PkiError } from './pki-error.js';
import { readPrivateSync } from './private-file.js';

/** What a key file must hold: the key's type (`asymmetricKeyType`), its EC curve where it has one, and a name for messages. */
export interface PrivateKeyKind {
  readonly type: 'ec' | 'ed25519';
  readonly namedCurve?: string;
  readonly description: string;
}

/**
 * The private key in `file` (refused when group or others may use it, `readPrivateSync`), of the kind
 * given: a file that holds no key this can read (corrupt, truncated, encrypted) or a key of another
 * kind is a PkiError naming the file, not an uncoded OpenSSL or JOSE error at first use.
 * @throws PkiError
 */
export function readPrivateKeyFile(file: string, kind: PrivateKeyKind): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readPrivateSync(file));
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
