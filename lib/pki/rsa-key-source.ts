import { createPublicKey, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Every RSA key ironlime makes: 2048 bits, e = 65537. */
const RSA_OPTIONS = { modulusLength: 2048, publicExponent: 0x10001 } as const;

export interface RsaKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Hands out a private key made ahead, never the same one twice; `undefined` once it has none left. */
export type PrecomputedRsaKeys = () => KeyObject | undefined;

let precomputed: PrecomputedRsaKeys | undefined;

/**
 * For test processes only (their mocha set-up file): new RSA keys come from `source` while it has
 * any, then from node:crypto again; `undefined` restores node:crypto alone. Returns the source it
 * replaces. Nothing in ironlime calls this, so the service, the CLI and the agent always generate
 * fresh keys.
 */
export function usePrecomputedRsaKeys(source: PrecomputedRsaKeys | undefined): PrecomputedRsaKeys | undefined {
  const previous = precomputed;
  precomputed = source;
  return previous;
}

/** A new RSA-2048 key pair (e = 65537), generated on the calling thread. */
export function newRsaKeyPairSync(): RsaKeyPair {
  return fromPrecomputed() ?? generateKeyPairSync('rsa', RSA_OPTIONS);
}

/** A new RSA-2048 key pair (e = 65537), generated on libuv's thread pool. */
export async function newRsaKeyPair(): Promise<RsaKeyPair> {
  return fromPrecomputed() ?? generateKeyPairAsync('rsa', RSA_OPTIONS);
}

function fromPrecomputed(): RsaKeyPair | undefined {
  const privateKey = precomputed?.();
  return privateKey === undefined ? undefined : { privateKey, publicKey: createPublicKey(privateKey) };
}
