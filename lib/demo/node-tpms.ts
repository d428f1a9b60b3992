import { accessSync, constants } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SoftwareEkCa } from '../tpm-access/software/ek-certificate.js';
import { createSoftwareTpm } from '../tpm-access/software/tpm-adapter.js';
import { startSwtpm, type SwtpmHandle } from '../tpm-access/swtpm-manager.js';
import { openTpm2ToolsTpm } from '../tpm-access/tpm2-tools/tpm-adapter.js';
import type { Tpm } from '../tpm-access/tpm-port.js';
import { settleAll } from './settle-all.js';

/** Which TPM the emulated nodes get: swtpm driven through tpm2-tools, or the in-process software TPM. */
export type NodeTpmKind = 'swtpm' | 'software';

/** The programs a swtpm node needs (`tpm2_quote` stands for the whole of tpm2-tools). */
export const SWTPM_PROGRAMS: readonly string[] = ['swtpm', 'swtpm_setup', 'tpm2_quote'];

/** The first of `SWTPM_PROGRAMS` not found on `PATH`, or undefined when all are there. */
export function missingSwtpmProgram(searchPath = process.env['PATH'] ?? ''): string | undefined {
  const dirs = searchPath.split(path.delimiter).filter((dir) => dir !== '');
  return SWTPM_PROGRAMS.find(
    (program) =>
      !dirs.some((dir) => {
        try {
          accessSync(path.join(dir, program), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
}

/** Fresh TPMs for a set of emulated nodes, all with EK certificates from one CA. */
export interface NodeTpms {
  readonly kind: NodeTpmKind;
  readonly tpms: readonly Tpm[];
  /** Folder of the CA certificates that issued every EK certificate: the registrar's extra EK trust. */
  readonly ekCaDir: string;
  /** Process ids of the running swtpm processes (empty for the software TPM). */
  pids(): number[];
  /** Closes every adapter and stops every swtpm (orderly). Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts `count` freshly powered-on TPMs under `dir`. swtpm: each is manufactured with RSA and ECC EKs
 * whose certificates come from one local CA in `<dir>/swtpm-localca` (the first TPM creates it, the
 * others then start in parallel), then started as a socket server and opened with tpm2-tools. Software:
 * in-process TPMs whose EK certificates come from one throw-away `SoftwareEkCa` — no root of trust.
 * The CA certificates are copied to `<dir>/ek-ca`. Anything started before a failure is stopped again.
 */
export async function startNodeTpms(kind: NodeTpmKind, count: number, dir: string): Promise<NodeTpms> {
  const ekCaDir = path.join(dir, 'ek-ca');
  await mkdir(ekCaDir, { recursive: true });
  const tpms: Tpm[] = [];
  const swtpms: SwtpmHandle[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) {
      return;
    }
    closed = true;
    await Promise.all(tpms.map((tpm) => tpm.close().catch(() => undefined)));
    await Promise.all(swtpms.map((swtpm) => swtpm.stop().catch(() => swtpm.stop({ orderly: false }))));
  };
  try {
    if (kind === 'software') {
      const ca = SoftwareEkCa.create({ commonName: 'ironlime demo software TPM EK CA' });
      await writeFile(path.join(ekCaDir, 'software-ek-ca.pem'), ca.certificatePem);
      for (let index = 0; index < count; index += 1) {
        tpms.push(await createSoftwareTpm({ issueEkCertificate: (key) => ca.issue(key) }));
      }
    } else {
      const caDir = path.resolve(dir, 'swtpm-localca');
      const start = async (index: number): Promise<void> => {
        const swtpm = await startSwtpm({ stateDir: path.resolve(dir, `swtpm-${index}`), caDir });
        swtpms.push(swtpm);
        tpms[index] = await openTpm2ToolsTpm({ tcti: swtpm.tcti });
      };
      // The first manufacture creates the shared local CA; the others must not race to create it too.
      await start(0);
      await settleAll(Array.from({ length: count - 1 }, (_, i) => start(i + 1)));
      const certificates = await (swtpms[0] as SwtpmHandle).localCaCertificates();
      await copyFile(certificates.rootPath, path.join(ekCaDir, 'swtpm-localca-root.pem'));
      await copyFile(certificates.intermediatePath, path.join(ekCaDir, 'swtpm-localca-issuer.pem'));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {
    kind,
    tpms,
    ekCaDir,
    pids: () => swtpms.map((swtpm) => swtpm.pid).filter((pid): pid is number => pid !== undefined),
    close,
  };
}
