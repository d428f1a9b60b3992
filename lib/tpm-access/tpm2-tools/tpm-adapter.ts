import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkAkAttributes } from '../../tpm/ak-attributes.js';
import { TPM_ALG_ECC, TPM_ALG_ECDSA, TPM_ALG_RSA, TPM_ALG_RSASSA, TPMA_OBJECT_USERWITHAUTH, hashInfoByName } from '../../tpm/constants.js';
import { parseCredentialBlob } from '../../tpm/credential-blob.js';
import type { TpmtPublic } from '../../tpm/tpmt-public.js';
import { checkDigest, checkHashAlgorithm, checkPcrIndex, checkPcrList, checkQualifyingData, checkQuoteRequest, checkResettablePcr } from '../port-checks.js';
import { isResendWarning, marshalCertifyCommand, parseCertifyResponse } from './certify-command.js';
import { TPM_RC_INITIALIZE, TPM_RC_SESSION_MEMORY, TpmAccessError } from '../tpm-access-error.js';
import type { AkInfo, CertifyResult, EkAlgorithm, EkInfo, PcrExtend, QuoteRequest, QuoteResult, Tpm, TpmHashAlgorithm } from '../tpm-port.js';
import { ToolContext } from './tool-context.js';
import { handleArg, parsePcrReadOutput } from './tool-output.js';
import { ToolRunner, ToolTimeoutError } from './tool-runner.js';
import { flushSession, flushLoadedSessions, flushTransientObjects, loadEk, persistentHandles, reachesTpmDirectly, readEkCertificate, readPublic } from './tpm-objects.js';

export interface Tpm2ToolsTpmOptions {
  /** TSS2 TCTI: `swtpm:host=127.0.0.1,port=N` (see `startSwtpm`) or `device:/dev/tpmrm0`. */
  tcti: string;
  /** EK family to use (default `rsa`). */
  ekAlgorithm?: EkAlgorithm;
  /**
   * Persistent handle of the AK for a hash: `akHandleBase | (TPM_ALG_ID & 0xff)`. Default 0x81000100
   * for an RSA EK (SHA-256 AK → 0x8100010b) and 0x81000200 for an ECC EK, so both kinds of AK coexist.
   */
  akHandleBase?: number;
  /** Timeout of every tpm2-tools call in milliseconds (default 30 s). */
  timeoutMs?: number;
}

/** Extends per tpm2_pcrextend call: keeps the command line short (a SHA-512 spec is ~140 bytes). */
const EXTENDS_PER_CALL = 64;

/** tpm2_quote re-reads the PCRs after quoting and fails if they moved; the Rust agent retries 5 times too. */
const QUOTE_ATTEMPTS = 5;

/** Sends of a raw command answered with a "send again" warning, as many as ESYS makes (`_ESYS_MAX_SUBMISSIONS`). */
const SEND_ATTEMPTS = 5;

/** Opens a TPM through tpm2-tools. Nothing touches the TPM until the first call. */
export async function openTpm2ToolsTpm(options: Tpm2ToolsTpmOptions): Promise<Tpm2ToolsTpm> {
  const workDir = await mkdtemp(path.join(tmpdir(), 'ironlime-tpm-'));
  return new Tpm2ToolsTpm(options, workDir);
}

/**
 * The `Tpm` port over tpm2-tools, with no resource manager in between (swtpm, or `/dev/tpm0`):
 * - calls are serialised, and transient objects and sessions are flushed after every operation that
 *   loads them (`tpm2_flushcontext -t`, and each policy session by its file), because the TPM has only
 *   a handful of slots;
 * - the AK is persisted (`tpm2_evictcontrol`) so quoting loads nothing;
 * - when the TPM answers TPM_RC_INITIALIZE (swtpm restarted without startup), it sends
 *   `tpm2_startup -c` and retries the operation once;
 * - sessions a killed tool left behind are flushed (`flushLoadedSessions`) before the first operation and
 *   after a tool timeout or TPM_RC_SESSION_MEMORY (see `operation`).
 * Work files live in a private temp dir, removed by `close()`.
 */
export class Tpm2ToolsTpm implements Tpm {
  readonly kind = 'tpm2-tools' as const;
  private readonly ctx: ToolContext;
  private readonly ekAlgorithm: EkAlgorithm;
  private readonly akHandleBase: number;
  private queue: Promise<unknown> = Promise.resolve();
  private lastAk: AkInfo | undefined;
  /** AKs ensured so far, by hash: a quote then needs no lookup. Dropped if a quote fails. */
  private readonly aks = new Map<TpmHashAlgorithm, AkInfo>();
  private closed = false;
  /** Whether the TPM is reached without a resource manager, so sessions a killed tool left stay in it. */
  private readonly flushesSessions: boolean;
  /** Whether to flush sessions before the next operation: at first, and after a timeout or TPM_RC_SESSION_MEMORY. */
  private sessionsToFlush: boolean;

  constructor(options: Tpm2ToolsTpmOptions, workDir: string) {
    this.ctx = new ToolContext(new ToolRunner({ tcti: options.tcti, workDir, timeoutMs: options.timeoutMs ?? 30_000 }), workDir);
    this.ekAlgorithm = options.ekAlgorithm ?? 'rsa';
    this.akHandleBase = options.akHandleBase ?? (this.ekAlgorithm === 'rsa' ? 0x81000100 : 0x81000200);
    this.flushesSessions = reachesTpmDirectly(options.tcti);
    this.sessionsToFlush = this.flushesSessions;
  }

  async ensureEk(): Promise<EkInfo> {
    return this.operation(async () => {
      const ek = await loadEk(this.ctx, this.ekAlgorithm);
      const ekCertificate = await readEkCertificate(this.ctx, ek.publicArea);
      return { ekPublic: ek.tpm2bPublic, ekCertificate, ekAlgorithm: this.ekAlgorithm };
    });
  }

  async ensureAk(hashAlg: TpmHashAlgorithm): Promise<AkInfo> {
    checkHashAlgorithm(hashAlg);
    return this.operation(async () => {
      const ak = await this.ak(hashAlg);
      this.aks.set(hashAlg, ak);
      this.lastAk = ak;
      return ak;
    });
  }

  async activateCredential(blob: Uint8Array): Promise<Uint8Array> {
    // Malformed blobs fail here with TpmParseError, as with the software TPM, before reaching the TPM.
    parseCredentialBlob(blob);
    return this.operation(async () => {
      const ak = this.lastAk;
      if (ak === undefined) {
        throw new TpmAccessError('activateCredential needs an AK: call ensureAk() first');
      }
      const blobFile = await this.ctx.writeTemp('credential.blob', blob);
      const secretFile = this.ctx.tempPath('secret.out');
      const ek = await loadEk(this.ctx, this.ekAlgorithm);
      let session: string | undefined;
      try {
        let ekAuth = '';
        // An EK without userWithAuth (the TCG low-range templates) is usable only through its policy,
        // PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK Credential Profile §B.6, PolicyA).
        if ((ek.publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH) === 0) {
          session = this.ctx.tempPath('ek-policy.session');
          await this.ctx.run('tpm2_startauthsession', ['--policy-session', '-S', session]);
          await this.ctx.run('tpm2_policysecret', ['-S', session, '-c', 'e']);
          ekAuth = `session:${session}`;
        }
        await this.ctx.run('tpm2_activatecredential', [
          '-c', handleArg(ak.handle), '-C', ek.reference, '-i', blobFile, '-o', secretFile, '-P', ekAuth,
        ]);
        return await this.ctx.readBytes(secretFile);
      } finally {
        if (session !== undefined) {
          await flushSession(this.ctx, session);
        }
        await flushTransientObjects(this.ctx);
      }
    });
  }

  async extendPcr(index: number, bank: TpmHashAlgorithm, digest: Uint8Array): Promise<void> {
    return this.extendPcrs([{ index, bank, digest }]);
  }

  async extendPcrs(entries: readonly PcrExtend[]): Promise<void> {
    // tpm2_pcrextend takes one `<pcr>:<bank>=<hex>` argument per extend and applies them in order.
    const specs = entries.map(({ index, bank, digest }) => {
      checkPcrIndex(index);
      checkDigest(bank, digest);
      return `${index}:${bank}=${Buffer.from(digest).toString('hex')}`;
    });
    // Not repeatable: extends already sent would be applied twice.
    return this.operation(async () => {
      for (let start = 0; start < specs.length; start += EXTENDS_PER_CALL) {
        await this.ctx.run('tpm2_pcrextend', specs.slice(start, start + EXTENDS_PER_CALL));
      }
    }, { repeatable: false });
  }

  async readPcrs(bank: TpmHashAlgorithm, indices: readonly number[]): Promise<Map<number, Uint8Array>> {
    checkHashAlgorithm(bank);
    const pcrs = checkPcrList(indices);
    return this.operation(async () => {
      if (pcrs.length === 0) {
        return new Map<number, Uint8Array>();
      }
      const values = parsePcrReadOutput(await this.ctx.run('tpm2_pcrread', [`${bank}:${pcrs.join(',')}`]));
      const missing = pcrs.filter((pcr) => !values.has(pcr));
      if (missing.length > 0) {
        throw new TpmAccessError(`tpm2_pcrread: no ${bank} value for PCR ${missing.join(', ')} (is the bank active?)`);
      }
      return values;
    });
  }

  async resetPcr(index: number): Promise<void> {
    checkResettablePcr(index);
    return this.operation(async () => {
      await this.ctx.run('tpm2_pcrreset', [String(index)]);
    });
  }

  async quote(request: QuoteRequest): Promise<QuoteResult> {
    const { nonce, pcrs, hashAlg } = checkQuoteRequest(request);
    return this.operation(async () => {
      const ak = this.aks.get(hashAlg) ?? (await this.ak(hashAlg));
      this.aks.set(hashAlg, ak);
      const args = ['-c', handleArg(ak.handle), '-l', `${hashAlg}:${pcrs.join(',')}`, '-g', hashAlg];
      if (nonce.length > 0) {
        // A path, never hex text: tpm2_quote -q takes "HEX_STRING_OR_PATH" and a path is unambiguous.
        args.push('-q', await this.ctx.writeTemp('nonce.bin', nonce));
      }
      for (let attempt = 1; ; attempt += 1) {
        const files = { attest: this.ctx.tempPath('quote.msg'), signature: this.ctx.tempPath('quote.sig'), pcrBlob: this.ctx.tempPath('quote.pcrs') };
        try {
          await this.ctx.run('tpm2_quote', [...args, '-m', files.attest, '-s', files.signature, '-o', files.pcrBlob]);
        } catch (error) {
          if (attempt < QUOTE_ATTEMPTS && error instanceof TpmAccessError && /PCR composite/.test(error.message)) {
            continue;
          }
          this.aks.delete(hashAlg);
          throw error;
        }
        return {
          attest: await this.ctx.readBytes(files.attest),
          signature: await this.ctx.readBytes(files.signature),
          pcrBlob: await this.ctx.readBytes(files.pcrBlob),
        };
      }
    });
  }

  /**
   * TPM2_Certify of the AK by itself over `qualifyingData`, sent raw with `tpm2_send` (tpm2-tools'
   * `tpm2_certify` takes no qualifying data; spec §10.5a). The AK is persistent, so both handles are
   * its persistent handle, authorized by its empty password. A "send again" warning is resent, as ESYS
   * would, and TPM_RC_INITIALIZE leads to TPM2_Startup like any tool's (`operation`).
   */
  async certifyAk(hashAlg: TpmHashAlgorithm, qualifyingData: Uint8Array): Promise<CertifyResult> {
    const data = checkQualifyingData(qualifyingData);
    const algorithm = checkHashAlgorithm(hashAlg);
    return this.operation(async () => {
      const ak = this.aks.get(algorithm) ?? (await this.ak(algorithm));
      this.aks.set(algorithm, ak);
      const command = await this.ctx.writeTemp('certify.cmd', marshalCertifyCommand(ak.handle, ak.handle, data));
      for (let attempt = 1; ; attempt += 1) {
        const response = this.ctx.tempPath('certify.rsp');
        await this.ctx.run('tpm2_send', ['-o', response, command]);
        try {
          return parseCertifyResponse(await this.ctx.readBytes(response));
        } catch (error) {
          if (attempt < SEND_ATTEMPTS && error instanceof TpmAccessError && isResendWarning(error.responseCode)) {
            continue;
          }
          throw error;
        }
      }
    });
  }

  async close(): Promise<void> {
    return this.enqueue(async () => {
      this.checkOpen();
      this.closed = true;
      await rm(this.ctx.workDir, { recursive: true, force: true });
    });
  }

  /**
   * Runs `body` after every earlier operation (no two tool sequences interleave: a flush by one would
   * destroy the other's objects). Sessions left in a TPM without a resource manager are flushed first
   * when due (`sessionsToFlush`). On TPM_RC_INITIALIZE it sends TPM2_Startup(CLEAR) and runs `body`
   * again; on TPM_RC_SESSION_MEMORY it flushes the sessions and runs a `repeatable` body again (the TPM
   * refused the command, so nothing ran twice). After a tool timeout it only marks the sessions for
   * flushing and fails: the TPM may have run the command and may still be slow, so the retry is the
   * caller's (the verifier's next request, the push agent's next attestation), which flushes first.
   */
  private operation<T>(body: () => Promise<T>, options: { repeatable: boolean } = { repeatable: true }): Promise<T> {
    return this.enqueue(async () => {
      this.checkOpen();
      try {
        return await this.attempt(body, options.repeatable);
      } catch (error) {
        if (error instanceof ToolTimeoutError || (error instanceof TpmAccessError && error.responseCode === TPM_RC_SESSION_MEMORY)) {
          this.sessionsToFlush = this.flushesSessions;
        }
        throw error;
      } finally {
        await this.ctx.removeTempFiles();
      }
    });
  }

  /** `body`, after flushing left sessions when due, and once more after TPM_RC_INITIALIZE or (if `repeatable`) TPM_RC_SESSION_MEMORY. */
  private async attempt<T>(body: () => Promise<T>, repeatable: boolean): Promise<T> {
    try {
      await this.flushLeftSessions();
      return await body();
    } catch (error) {
      if (!(error instanceof TpmAccessError)) {
        throw error;
      }
      if (error.responseCode === TPM_RC_INITIALIZE) {
        await this.ctx.run('tpm2_startup', ['-c']);
        this.sessionsToFlush = false; // a TPM reset drops every session
        return await body();
      }
      if (error.responseCode === TPM_RC_SESSION_MEMORY && this.flushesSessions && repeatable) {
        await flushLoadedSessions(this.ctx);
        return await body();
      }
      throw error;
    }
  }

  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new TpmAccessError('the TPM adapter is closed');
    }
  }

  private async flushLeftSessions(): Promise<void> {
    if (this.sessionsToFlush) {
      await flushLoadedSessions(this.ctx);
      this.sessionsToFlush = false;
    }
  }

  /** The persisted AK for `hashAlg`, reused if it is a fitting key, otherwise (re)created under the EK. */
  private async ak(hashAlg: TpmHashAlgorithm): Promise<AkInfo> {
    const hash = hashInfoByName(hashAlg);
    if (hash === undefined) {
      throw new TpmAccessError(`hash algorithm ${hashAlg} is unknown`);
    }
    const handle = (this.akHandleBase | (hash.algId & 0xff)) >>> 0;
    const signAlg = this.ekAlgorithm === 'rsa' ? 'rsassa' : 'ecdsa';
    if ((await persistentHandles(this.ctx)).has(handle)) {
      const existing = await readPublic(this.ctx, handle);
      if (isFittingAk(existing.publicArea, this.ekAlgorithm, hash.algId)) {
        return { akPublic: existing.tpm2bPublic, akName: existing.name, handle, hashAlg, signAlg };
      }
      await this.ctx.run('tpm2_evictcontrol', ['-C', 'o', '-c', handleArg(handle)]);
    }
    const ek = await loadEk(this.ctx, this.ekAlgorithm);
    const context = this.ctx.tempPath('ak.ctx');
    const keyAlg = this.ekAlgorithm === 'rsa' ? 'rsa2048' : hash.digestSize > 32 ? 'ecc384' : 'ecc256';
    try {
      await this.ctx.run('tpm2_createak', [
        '-C', ek.reference, '-c', context, '-G', keyAlg, '-g', hashAlg, '-s', signAlg,
        '-u', this.ctx.tempPath('ak.pub'), '-n', this.ctx.tempPath('ak.name'), '-r', this.ctx.tempPath('ak.priv'),
      ]);
      await this.ctx.run('tpm2_evictcontrol', ['-C', 'o', '-c', context, handleArg(handle)]);
    } finally {
      await flushTransientObjects(this.ctx);
    }
    const created = await readPublic(this.ctx, handle);
    return { akPublic: created.tpm2bPublic, akName: created.name, handle, hashAlg, signAlg };
  }

}

/**
 * A persisted key is reused as the AK only if a registrar would accept its attributes
 * (`checkAkAttributes`: a restricted signing key made in this TPM, usable with its auth value) and it
 * signs with the scheme and hash asked for; otherwise `ak()` replaces it.
 */
function isFittingAk(pub: TpmtPublic, ekAlgorithm: EkAlgorithm, hashAlgId: number): boolean {
  if (checkAkAttributes(pub).length > 0) {
    return false;
  }
  if (pub.type === TPM_ALG_RSA) {
    return ekAlgorithm === 'rsa' && pub.parameters.scheme.scheme === TPM_ALG_RSASSA && pub.parameters.scheme.hashAlg === hashAlgId;
  }
  if (pub.type === TPM_ALG_ECC) {
    return ekAlgorithm === 'ecc' && pub.parameters.scheme.scheme === TPM_ALG_ECDSA && pub.parameters.scheme.hashAlg === hashAlgId;
  }
  return false;
}
