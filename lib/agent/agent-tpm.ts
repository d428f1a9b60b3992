import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, readIfExists, writeFileAtomic } from '../pki/pem-files.js';
import { readPrivateIfExists } from '../pki/private-file.js';
import { makeFolderPrivate } from '../tpm-access/private-folder.js';
import { SoftwareEkCa } from '../tpm-access/software/ek-certificate.js';
import { createSoftwareTpm } from '../tpm-access/software/tpm-adapter.js';
import { startSwtpm, type SwtpmLog } from '../tpm-access/swtpm-manager.js';
import { openTpm2ToolsTpm } from '../tpm-access/tpm2-tools/tpm-adapter.js';
import type { Tpm } from '../tpm-access/tpm-port.js';

/** Where the agent keeps TPM-related files in its data dir. */
export const TPM_FILES = {
  swtpmState: path.join('swtpm', 'state'),
  swtpmCa: path.join('swtpm', 'localca'),
  /** Which local CA folder the swtpm was manufactured with (`--swtpm-ca-dir` or the default). */
  swtpmCaRecord: path.join('swtpm', 'ca-dir'),
  /** CA certificates (no keys) that issued this node's EK certificate: give it to a registrar as `--ek-ca-dir`. */
  ekCaDir: 'ek-ca',
  softwareEkCaKey: 'software-ek-ca-key.pem',
} as const;

/** An open TPM and how to release what was started for it. */
export interface AgentTpm {
  readonly tpm: Tpm;
  /** The TCTI another process can reach this TPM with (`ironlime agent ima-append`); undefined for the software TPM. */
  readonly tcti: string | undefined;
  /**
   * A folder holding the CA certificates that issued the EK certificate, for TPMs the agent made
   * itself (`swtpm`, `software`); undefined for someone else's TPM.
   */
  readonly ekCaDir: string | undefined;
  /** Closes the adapter, then stops the agent's own swtpm (orderly: TPM2_Shutdown first). */
  close(): Promise<void>;
}

/**
 * Opens the TPM named by `spec` (see `AgentConfig.tpm`):
 * - `swtpm`: manufactures (once) and starts a swtpm in `<dataDir>/swtpm`, with a local CA issuing the
 *   EK certificates (in `swtpmCaDir`, else the folder used before, else `<dataDir>/swtpm/localca`), and copies that CA's two
 *   certificates to `<dataDir>/ek-ca`;
 * - `software`: the in-process software TPM, its EK certified by a software EK CA kept in the data dir
 *   (certificate in `<dataDir>/ek-ca`); its keys and PCRs live only as long as the process;
 * - `swtpm:host=…,port=…` / `device:/dev/…`: tpm2-tools on that TCTI; nothing is started or stopped.
 * `log` hears of an own swtpm's failed TPM2_Shutdown at stop.
 */
export async function openAgentTpm(spec: string, dataDir: string, swtpmCaDir?: string, log?: SwtpmLog): Promise<AgentTpm> {
  const ekCaDir = path.join(dataDir, TPM_FILES.ekCaDir);
  if (spec === 'software') {
    const ca = await loadOrCreateSoftwareEkCa(dataDir, ekCaDir);
    const tpm = await createSoftwareTpm({ issueEkCertificate: (key) => ca.issue(key) });
    return { tpm, tcti: undefined, ekCaDir, close: () => tpm.close() };
  }
  if (spec === 'swtpm') {
    const swtpm = await startSwtpm({
      stateDir: path.resolve(dataDir, TPM_FILES.swtpmState),
      caDir: await swtpmCaDirOf(dataDir, swtpmCaDir),
      ...(log === undefined ? {} : { log }),
    });
    try {
      const certificates = await swtpm.localCaCertificates();
      await mkdir(ekCaDir, { recursive: true });
      await copyFile(certificates.rootPath, path.join(ekCaDir, 'swtpm-localca-root.pem'));
      await copyFile(certificates.intermediatePath, path.join(ekCaDir, 'swtpm-localca-issuer.pem'));
      const tpm = await openTpm2ToolsTpm({ tcti: swtpm.tcti });
      return {
        tpm,
        tcti: swtpm.tcti,
        ekCaDir,
        close: async () => {
          await tpm.close().catch(() => undefined);
          await swtpm.stop();
        },
      };
    } catch (error) {
      await swtpm.stop();
      throw error;
    }
  }
  const tpm = await openTpm2ToolsTpm({ tcti: spec });
  return { tpm, tcti: spec, ekCaDir: undefined, close: () => tpm.close() };
}

/**
 * The local CA folder of the agent's swtpm: the given one, else the one recorded at its first start,
 * else `<dataDir>/swtpm/localca`; recorded so later starts find the CA that certified the EK.
 */
async function swtpmCaDirOf(dataDir: string, given: string | undefined): Promise<string> {
  const record = path.join(dataDir, TPM_FILES.swtpmCaRecord);
  const recorded = (await readIfExists(record))?.trim();
  const caDir = path.resolve(given ?? (recorded === undefined || recorded === '' ? path.join(dataDir, TPM_FILES.swtpmCa) : recorded));
  if (caDir !== recorded) {
    await mkdir(path.dirname(record), { recursive: true });
    await writeFileAtomic(record, `${caDir}\n`, CERTIFICATE_MODE);
  }
  if (caDir === path.resolve(dataDir, TPM_FILES.swtpmCa) && existsSync(caDir)) {
    // The data dir's own CA (its keys are 0640), made before manufacture made it 0700: a shared CA
    // given with --swtpm-ca-dir keeps its mode (docs/tpm-access.md), this one is the agent's alone.
    await makeFolderPrivate(caDir, "the swtpm's local CA folder");
  }
  return caDir;
}

/**
 * The data dir's software EK CA: its key beside the folder (mode 0600; refused when group or others
 * may use it), its certificate inside `ekCaDir`.
 */
async function loadOrCreateSoftwareEkCa(dataDir: string, ekCaDir: string): Promise<SoftwareEkCa> {
  const keyPath = path.join(dataDir, TPM_FILES.softwareEkCaKey);
  const certPath = path.join(ekCaDir, 'software-ek-ca.pem');
  const keyPem = await readPrivateIfExists(keyPath);
  const certPem = await readIfExists(certPath);
  if (keyPem !== undefined && certPem !== undefined) {
    return SoftwareEkCa.fromPem(certPem, keyPem);
  }
  const ca = SoftwareEkCa.create({ commonName: `ironlime software TPM EK CA (${path.basename(path.resolve(dataDir))})` });
  await mkdir(ekCaDir, { recursive: true });
  await writeFileAtomic(keyPath, ca.privateKeyPem, PRIVATE_KEY_MODE);
  await writeFileAtomic(certPath, ca.certificatePem, CERTIFICATE_MODE);
  return ca;
}
