import { outerTlvLength } from '../../tpm/certificate-quirks.js';
import {
  TPM_ALG_ECC,
  TPM_ALG_RSA,
  TPM_ECC_NIST_P384,
  TPMA_OBJECT_DECRYPT,
  TPMA_OBJECT_FIXEDPARENT,
  TPMA_OBJECT_FIXEDTPM,
  TPMA_OBJECT_RESTRICTED,
  TPMA_OBJECT_SIGN_ENCRYPT,
} from '../../tpm/constants.js';
import { parseTpm2bPublic, type TpmtPublic } from '../../tpm/tpmt-public.js';
import { TpmAccessError } from '../tpm-access-error.js';
import type { EkAlgorithm } from '../tpm-port.js';
import type { ToolContext } from './tool-context.js';
import { handleArg, parseHandleList } from './tool-output.js';

/**
 * TCG EK Credential Profile 2.0 §2.2.1.4/§2.2.1.5: persistent EK handles and EK certificate NV
 * indices. swtpm 0.7 manufactures its ECC EK from the P-384 high-range template at 0x81010016, with
 * the certificate at 0x01c00016.
 */
const EK_HANDLES: Record<EkAlgorithm, readonly number[]> = { rsa: [0x81010001], ecc: [0x81010002, 0x81010016] };
const EK_CERT_RSA_2048 = 0x01c00002;
const EK_CERT_ECC_P256 = 0x01c0000a;
const EK_CERT_ECC_P384 = 0x01c00016;

/** A TPM object read back with `tpm2_readpublic`. */
export interface ReadObject {
  tpm2bPublic: Uint8Array;
  name: Uint8Array;
  publicArea: TpmtPublic;
}

/** The EK and how tpm2-tools refers to it: a persistent handle, or a context file. */
export interface LoadedEk {
  reference: string;
  tpm2bPublic: Uint8Array;
  publicArea: TpmtPublic;
}

/**
 * The EK: the persisted one at its TCG handle when present, otherwise created from the default
 * template by `tpm2_createek` (deterministic: same seed, same key) into a context file. Such a context
 * dies with a TPM restart, so callers load the EK again for every operation.
 */
export async function loadEk(ctx: ToolContext, algorithm: EkAlgorithm): Promise<LoadedEk> {
  const persistent = await persistentHandles(ctx);
  for (const handle of EK_HANDLES[algorithm]) {
    if (persistent.has(handle)) {
      const { tpm2bPublic, publicArea } = await readPublic(ctx, handle);
      if (isEk(publicArea)) {
        return { reference: handleArg(handle), tpm2bPublic, publicArea };
      }
    }
  }
  const context = ctx.tempPath('ek.ctx');
  const publicFile = ctx.tempPath('ek.pub');
  try {
    await ctx.run('tpm2_createek', ['-G', algorithm, '-c', context, '-u', publicFile]);
  } finally {
    await flushTransientObjects(ctx);
  }
  const tpm2bPublic = await ctx.readBytes(publicFile);
  return { reference: context, tpm2bPublic, publicArea: parseTpm2bPublic(tpm2bPublic) };
}

/**
 * The EK certificate from its TCG NV index, cut to its DER length; null if the index is absent. NV
 * indices are often larger than the certificate and padded (TCG EK Credential Profile §2.2.1.5 allows
 * this), so the bytes after the outer DER SEQUENCE are dropped.
 */
export async function readEkCertificate(ctx: ToolContext, ek: TpmtPublic): Promise<Uint8Array | null> {
  const index =
    ek.type === TPM_ALG_RSA ? EK_CERT_RSA_2048
    : ek.type === TPM_ALG_ECC && ek.parameters.curveId === TPM_ECC_NIST_P384 ? EK_CERT_ECC_P384
    : EK_CERT_ECC_P256;
  const present = parseHandleList(await ctx.run('tpm2_getcap', ['handles-nv-index']));
  if (!present.has(index)) {
    return null;
  }
  const file = ctx.tempPath('ek-cert.der');
  await ctx.run('tpm2_nvread', ['-C', 'o', '-o', file, handleArg(index)]);
  const stored = await ctx.readBytes(file);
  const length = outerTlvLength(stored);
  if (length === null || length > stored.length) {
    throw new TpmAccessError(`NV index ${handleArg(index)} does not hold a DER certificate`);
  }
  return stored.slice(0, length);
}

export async function readPublic(ctx: ToolContext, handle: number): Promise<ReadObject> {
  const publicFile = ctx.tempPath('object.pub');
  const nameFile = ctx.tempPath('object.name');
  await ctx.run('tpm2_readpublic', ['-c', handleArg(handle), '-o', publicFile, '-n', nameFile]);
  const tpm2bPublic = await ctx.readBytes(publicFile);
  return { tpm2bPublic, name: await ctx.readBytes(nameFile), publicArea: parseTpm2bPublic(tpm2bPublic) };
}

export async function persistentHandles(ctx: ToolContext): Promise<Set<number>> {
  return parseHandleList(await ctx.run('tpm2_getcap', ['handles-persistent']));
}

/**
 * Flushes every transient object. Without a resource manager an object a tool created stays in one of
 * the TPM's few slots after the tool exits, and a later load fails with TPM_RC_OBJECT_MEMORY.
 * (tpm2-tools 5.x keeps only the last of `-t`/`-l`/`-s`, so each kind needs its own call.)
 */
export async function flushTransientObjects(ctx: ToolContext): Promise<void> {
  await ctx.run('tpm2_flushcontext', ['-t']);
}

/**
 * Flushes every loaded session: sessions a tool started and never closed because it was killed at its
 * timeout, or a process before ours left. Without a resource manager the TPM keeps them (swtpm has room
 * for 3 loaded sessions), and every later StartAuthSession — each quote, each activation — fails with
 * TPM_RC_SESSION_MEMORY until the TPM is reset. Only for a TPM reached without a resource manager
 * (`reachesTpmDirectly`), which serves one connection at a time (swtpm, mssim; `/dev/tpmN` opens
 * once): while this tool runs no other tool does, and a tool saves its sessions when it exits, so a
 * session still loaded belongs to no running sequence. Saved sessions are never flushed (`-s`): one may
 * be another process's, kept in a file between two of its tools (tpm2_startauthsession, then
 * tpm2_policysecret), and flushing it fails that process's activation.
 */
export async function flushLoadedSessions(ctx: ToolContext): Promise<void> {
  await ctx.run('tpm2_flushcontext', ['-l']);
}

/**
 * Whether `tcti` reaches the TPM without a resource manager (swtpm, mssim, `/dev/tpmN`), where sessions
 * left behind stay until flushed. Through `/dev/tpmrm0` or tabrmd the resource manager flushes a
 * connection's sessions when the tool exits, killed or not, and the saved sessions it lists may be
 * other processes' — so nothing is flushed there (and an unknown TCTI is treated the same way).
 */
export function reachesTpmDirectly(tcti: string): boolean {
  return /^(swtpm|mssim)(:|$)/.test(tcti) || /^device:\/dev\/tpm\d+$/.test(tcti);
}

/**
 * Flushes a session through the context file tpm2-tools saved it to; tools save a session back after
 * using it, so it would otherwise stay as a saved session until the next TPM reset. A session the TPM
 * already closed (continueSession clear) cannot be flushed, which is fine.
 */
export async function flushSession(ctx: ToolContext, sessionFile: string): Promise<void> {
  try {
    await ctx.run('tpm2_flushcontext', [sessionFile]);
  } catch (error) {
    if (!(error instanceof TpmAccessError)) {
      throw error;
    }
  }
}

/** An EK is a restricted decryption key that never leaves the TPM (TCG EK Credential Profile §2.1.5). */
function isEk(pub: TpmtPublic): boolean {
  const required = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  return (pub.objectAttributes & required) === required && (pub.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) === 0;
}
