import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InvalidConfig } from '../../interfaces/errors.js';
import { CERTIFICATE_MODE, createFileOnce, PRIVATE_KEY_MODE, writeFileAtomic } from '../pki/pem-files.js';
import { readPrivateIfExists } from '../pki/private-file.js';
import { EAR_ALG, tokenKeyId } from './ear-token.js';

/** Files of the broker's own keys under `<dataDir>/broker`. */
export const BROKER_KEY_FILES = {
  dir: 'broker',
  /** base64 of 32 random bytes: the AES-256-GCM key resources are sealed with. */
  masterKey: 'resource-master.key',
  /** PKCS#8 PEM of the P-256 key EAR tokens are signed with (ES256). */
  tokenKey: 'token-signing-key.pem',
  /** The token key's public JWKS, for brokers started with `--trust-issuer`. */
  tokenJwks: 'token-issuer.jwks.json',
} as const;

export interface BrokerKeys {
  readonly masterKey: Uint8Array;
  readonly tokenPrivateKey: KeyObject;
  readonly tokenPublicKey: KeyObject;
  /** Absolute path of the public JWKS file. */
  readonly jwksPath: string;
}

/**
 * Loads the broker's keys from `<dataDir>/broker`, creating any that is missing (zero-config): the
 * resource master key and the token signing key (owner-only files), and the public JWKS beside them
 * (with an `issuer` member naming `issuer`, which `loadTrustedIssuer` reads).
 * A present but unusable key is `InvalidConfig`, one that group or others may use `PkiError` — never
 * silently replaced, since that would make every stored resource unreadable.
 */
export async function loadOrCreateBrokerKeys(dataDir: string, issuer: string): Promise<BrokerKeys> {
  const dir = path.join(dataDir, BROKER_KEY_FILES.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const masterPath = path.join(dir, BROKER_KEY_FILES.masterKey);
  const masterText = await readOrCreatePrivate(masterPath, () => `${randomBytes(32).toString('base64')}\n`);
  const masterKey = new Uint8Array(Buffer.from(masterText.trim(), 'base64'));
  if (masterKey.length !== 32) {
    throw new InvalidConfig('broker.masterKey', `${masterPath} must hold base64 of 32 bytes`);
  }
  const tokenPath = path.join(dir, BROKER_KEY_FILES.tokenKey);
  const tokenPem = await readOrCreatePrivate(tokenPath, () =>
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );
  let tokenPrivateKey: KeyObject;
  try {
    tokenPrivateKey = createPrivateKey(tokenPem);
  } catch (cause) {
    throw new InvalidConfig('broker.tokenKey', `${tokenPath} is not a private key`, { cause });
  }
  if (tokenPrivateKey.asymmetricKeyType !== 'ec' || tokenPrivateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new InvalidConfig('broker.tokenKey', `${tokenPath} must be an EC P-256 key (ES256)`);
  }
  const tokenPublicKey = createPublicKey(tokenPrivateKey);
  const jwksPath = path.join(dir, BROKER_KEY_FILES.tokenJwks);
  await writeFileAtomic(jwksPath, `${JSON.stringify({ issuer, keys: [await publicJwk(tokenPublicKey)] }, null, 2)}\n`, CERTIFICATE_MODE);
  return { masterKey, tokenPrivateKey, tokenPublicKey, jwksPath };
}

/**
 * The private file's text, made with `make()` when absent. Made whole or not at all, and never over
 * one another broker starting on the same data dir made meanwhile (`createFileOnce`): every broker then
 * reads the one published first. Before, each wrote its own over the others', so a broker sealed
 * resources with, and signed tokens by, a key no longer on disk: lost at its next start.
 */
async function readOrCreatePrivate(file: string, make: () => string): Promise<string> {
  const present = await readPrivateIfExists(file);
  if (present !== undefined) return present;
  await createFileOnce(file, make(), PRIVATE_KEY_MODE);
  const made = await readPrivateIfExists(file);
  if (made === undefined) throw new InvalidConfig('broker.dataDir', `${file} vanished while it was being made`);
  return made;
}

/**
 * The public JWK of the token key, with `alg` and `use` so a JWKS consumer cannot misuse it, and the
 * `kid` the tokens name it by (trustee finds a JWKS key only by `kid`).
 */
async function publicJwk(key: KeyObject): Promise<Record<string, unknown>> {
  return { ...key.export({ format: 'jwk' }), alg: EAR_ALG, use: 'sig', kid: await tokenKeyId(key) };
}
