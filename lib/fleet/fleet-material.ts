import { mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_FILES, loadOrCreateAgentServerTls, loadOrCreateNodeKey } from '../agent/agent-files.js';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, readIfExists, writeFileAtomic } from '../pki/pem-files.js';
import { readPrivateIfExists } from '../pki/private-file.js';
import { SoftwareEkCa } from '../tpm-access/software/ek-certificate.js';

/** Folders of a fleet's data dir. */
export const FLEET_DIRS = {
  /** The material every simulated agent shares (NK, server certificate, software EK CA). */
  shared: 'shared',
  /** One data dir per simulated agent, recreated on every start (a software TPM does not survive a restart). */
  agents: 'agents',
  /** Certificates of the software EK CA only: what a registrar trusts (`ekCaDirs`). */
  ekCa: path.join('shared', 'ek-ca'),
} as const;

const EK_CA_CERT = 'software-ek-ca.pem';
const EK_CA_KEY = 'software-ek-ca-key.pem';

/**
 * What all simulated agents of a fleet share so that a thousand of them start in seconds: one NK
 * (RSA-2048, U/V wrapping and the PCR 16 binding), one self-signed HTTPS server certificate (every
 * verifier request pins exactly the certificate the registrar holds for the agent, so sharing it
 * changes nothing on the wire), and one software EK CA for RSA EKs. A real fleet has one of each per
 * node; the verifier cannot tell, since it keys everything by agent id.
 */
export interface FleetMaterial {
  /** Folder whose `nk-private.pem` and `tls/` every agent dir links to. */
  readonly sharedDir: string;
  /** Folder holding only the EK CA certificate, for a registrar's `ekCaDirs`. */
  readonly ekCaDir: string;
  readonly ekCa: SoftwareEkCa;
  /** PEM of the shared server certificate (`mtls_cert` of every agent). */
  readonly agentCertPem: string;
}

/**
 * Loads the fleet's shared material from `<dataDir>/shared`, creating what is missing (the RSA keys
 * take a second once; later starts reuse them). Uses the agent's own file helpers, so the files are
 * exactly what `startAgent` expects in a data dir.
 */
export async function loadOrCreateFleetMaterial(dataDir: string): Promise<FleetMaterial> {
  const sharedDir = path.resolve(dataDir, FLEET_DIRS.shared);
  const ekCaDir = path.resolve(dataDir, FLEET_DIRS.ekCa);
  await mkdir(ekCaDir, { recursive: true, mode: 0o700 });
  await loadOrCreateNodeKey(sharedDir);
  const tls = await loadOrCreateAgentServerTls(sharedDir, 'ironlime-fleet-agent', ['127.0.0.1']);
  const ekCa = await loadOrCreateEkCa(sharedDir, ekCaDir);
  return { sharedDir, ekCaDir, ekCa, agentCertPem: tls.cert };
}

/**
 * A fresh data dir for one simulated agent: its own uuid and emulated logs (written by `startAgent`),
 * links to the shared NK and server certificate.
 */
export async function prepareAgentDir(material: FleetMaterial, agentDir: string): Promise<void> {
  await rm(agentDir, { recursive: true, force: true });
  await mkdir(agentDir, { recursive: true, mode: 0o700 });
  await symlink(path.join(material.sharedDir, AGENT_FILES.nkKey), path.join(agentDir, AGENT_FILES.nkKey));
  await symlink(path.join(material.sharedDir, AGENT_FILES.tlsDir), path.join(agentDir, AGENT_FILES.tlsDir), 'dir');
}

async function loadOrCreateEkCa(sharedDir: string, ekCaDir: string): Promise<SoftwareEkCa> {
  const keyPath = path.join(sharedDir, EK_CA_KEY);
  const certPath = path.join(ekCaDir, EK_CA_CERT);
  const keyPem = await readPrivateIfExists(keyPath);
  const certPem = await readIfExists(certPath);
  if (keyPem !== undefined && certPem !== undefined) {
    return SoftwareEkCa.fromPem(certPem, keyPem);
  }
  const ca = SoftwareEkCa.create({ commonName: 'ironlime fleet simulator EK CA (software TPMs, not a root of trust)' });
  await writeFileAtomic(keyPath, ca.privateKeyPem, PRIVATE_KEY_MODE);
  await writeFileAtomic(certPath, ca.certificatePem, CERTIFICATE_MODE);
  return ca;
}
