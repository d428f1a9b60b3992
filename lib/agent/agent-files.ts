import { createPrivateKey, createPublicKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InvalidConfig } from '../../interfaces/errors.js';
import { readConfiguredFile } from '../config/read-config-file.js';
import { initCa } from '../pki/ca-directory.js';
import { caExpiryWarning, caValidityProblem, validityOf } from '../pki/certificate-validity.js';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, readIfExists, writeFileAtomic } from '../pki/pem-files.js';
import { readPrivateIfExists } from '../pki/private-file.js';
import { newRsaKeyPair } from '../pki/rsa-key-source.js';
import { caDirOf, loadOrCreateSelfSignedServerTls } from '../pki/service-tls.js';
import { certificatesDer } from '../tpm/cert-store.js';

/** File names inside the agent's data dir. */
export const AGENT_FILES = {
  uuid: 'agent-uuid',
  nkKey: 'nk-private.pem',
  tlsDir: 'tls',
  tlsName: 'agent',
} as const;

/**
 * The agent id: `wanted` when given (and then stored, so later starts without `--uuid` keep it),
 * else the stored one, else a new random UUID, stored. Keylime's default agent id is a UUID too.
 */
export async function loadOrCreateAgentUuid(dataDir: string, wanted: string | undefined): Promise<string> {
  const file = path.join(dataDir, AGENT_FILES.uuid);
  const stored = (await readIfExists(file))?.trim();
  const uuid = wanted ?? (stored === undefined || stored === '' ? randomUUID() : stored);
  if (uuid !== stored) {
    await writeFileAtomic(file, `${uuid}\n`, CERTIFICATE_MODE);
  }
  return uuid;
}

/** The agent's NK ("node key", Keylime's payload key): RSA-2048, used for RSA-OAEP of U and V (spec §9.1). */
export interface NodeKey {
  readonly privateKey: KeyObject;
  /** PEM SubjectPublicKeyInfo, exactly the text served as `pubkey` and hashed into PCR 16. */
  readonly publicPem: string;
}

/** Loads `<dataDir>/nk-private.pem` (refused when group or others may use it), or creates an RSA-2048 key there (mode 0600). */
export async function loadOrCreateNodeKey(dataDir: string): Promise<NodeKey> {
  const file = path.join(dataDir, AGENT_FILES.nkKey);
  let pem = await readPrivateIfExists(file);
  if (pem === undefined) {
    const { privateKey } = await newRsaKeyPair();
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeFileAtomic(file, pem, PRIVATE_KEY_MODE);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (cause) {
    throw new InvalidConfig(file, 'is not a PEM private key', { cause });
  }
  if (privateKey.asymmetricKeyType !== 'rsa' || (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new InvalidConfig(file, 'must be an RSA key of at least 2048 bits');
  }
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicPem };
}

/** The agent's self-signed HTTPS server certificate (CN = agent id), kept in `<dataDir>/tls` across restarts. */
export function loadOrCreateAgentServerTls(dataDir: string, uuid: string, sans: readonly string[]): Promise<{ cert: string; key: string }> {
  return loadOrCreateSelfSignedServerTls({
    dir: path.join(dataDir, AGENT_FILES.tlsDir),
    name: AGENT_FILES.tlsName,
    commonName: uuid,
    sans,
  });
}

/**
 * PEM of the CA whose client certificates the agent accepts (Keylime `trusted_client_ca`): the given
 * file, or `<dataDir>/ca/cacert.crt` — created when absent, so services sharing a data dir share a CA.
 * A CA that is expired or not yet valid is refused (the agent would accept no client), and `warn` is
 * told when one has less than 30 days left.
 */
export async function loadTrustedClientCa(dataDir: string, clientCaFile: string | undefined, warn: (message: string) => void): Promise<string> {
  if (clientCaFile === undefined) {
    const ca = await initCa(caDirOf(dataDir));
    const warning = caExpiryWarning(`client CA ${ca.certPath}`, validityOf(new X509Certificate(ca.certPem)), Date.now());
    if (warning !== undefined) warn(warning);
    return ca.certPem;
  }
  const pem = await readConfiguredFile(clientCaFile, 'agent.clientCaFile');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new InvalidConfig('agent.clientCaFile', `${clientCaFile} holds no PEM certificate`);
  }
  let certificates: X509Certificate[];
  try {
    certificates = certificatesDer(pem).map((der) => new X509Certificate(der));
  } catch (cause) {
    throw new InvalidConfig('agent.clientCaFile', `${clientCaFile} holds a certificate that cannot be read`, { cause });
  }
  certificates.forEach((certificate, index) => {
    const what = certificates.length === 1 ? clientCaFile : `${clientCaFile} (certificate ${index + 1})`;
    const problem = caValidityProblem(validityOf(certificate), Date.now());
    if (problem !== undefined) {
      throw new InvalidConfig('agent.clientCaFile', `${what} ${problem}: no client could connect; give the CA that issues the clients' certificates now`);
    }
    const warning = caExpiryWarning(`client CA ${what}`, validityOf(certificate), Date.now());
    if (warning !== undefined) warn(warning);
  });
  return pem;
}

/** Creates the data dir (mode 0700: it holds private keys). */
export async function ensureDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
}
