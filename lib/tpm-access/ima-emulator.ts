import { createHash } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { IMA_PCR } from '../tpm/keylime-profile.js';
import { imaExtendDigest, imaNgEntry, imaNgViolation, type ImaNgEntry } from './ima-ng-template.js';
import { DIGEST_SIZES, type PcrExtend, type Tpm, type TpmHashAlgorithm } from './tpm-port.js';

export interface ImaEmulatorOptions {
  tpm: Tpm;
  /** The ASCII measurement list to write (the emulated `/sys/kernel/security/ima/ascii_runtime_measurements`). */
  logPath: string;
  /** PCR banks the TPM has active; each gets PCR 10 extended (default sha1 and sha256). */
  banks?: readonly TpmHashAlgorithm[];
  /** Hash of file contents in the ima-ng `d-ng` field (`ima_hash=`, default sha256). */
  fileDigestAlg?: TpmHashAlgorithm;
  /** Also keeps the list here, as written to `logPath` (an agent serving it from memory). */
  copy?: ImaListCopy;
}

/** Where an emulator keeps a second copy of the list it writes. */
export interface ImaListCopy {
  clear(): void;
  /** Complete lines, each ending in "\n". */
  append(lines: string): void;
}

/** A file to measure: its content, or directly the digest of its content with `fileDigestAlg`. */
export type ImaMeasurement = { path: string; content: Uint8Array } | { path: string; fileDigest: Uint8Array };

/**
 * Plays the kernel's IMA for an emulated node: appends ima-ng lines to an ASCII log and extends PCR 10
 * of every active bank exactly as the kernel does (`ima_pcr_extend` extends bank B with
 * H_B(template data); Keylime spec §7.6), so a verifier replaying the log reaches the quoted PCR 10.
 * The first entry is `boot_aggregate`; the log file is created empty by `start()`.
 *
 * Calls must not overlap: each one appends to the log and extends the TPM in order.
 */
export class ImaEmulator {
  private readonly tpm: Tpm;
  private readonly banks: readonly TpmHashAlgorithm[];
  private readonly fileDigestAlg: TpmHashAlgorithm;
  private count = 0;

  constructor(private readonly options: ImaEmulatorOptions) {
    this.tpm = options.tpm;
    this.banks = options.banks ?? ['sha1', 'sha256'];
    this.fileDigestAlg = options.fileDigestAlg ?? 'sha256';
  }

  /** Number of lines in the log. */
  get entryCount(): number {
    return this.count;
  }

  /**
   * Truncates the log and measures `boot_aggregate`: H(PCR 0 ‖ … ‖ PCR 9) of the `fileDigestAlg` bank,
   * as kernels ≥ 5.8 compute it on a TPM 2.0 (`ima_calc_boot_aggregate`, PCRs 8–9 included). Replay the
   * boot log into the TPM first, as firmware and bootloader would have.
   */
  async start(): Promise<ImaNgEntry> {
    await writeFile(this.options.logPath, '');
    this.options.copy?.clear();
    this.count = 0;
    const pcrs = await this.tpm.readPcrs(this.fileDigestAlg, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const hash = createHash(this.fileDigestAlg);
    for (let index = 0; index <= 9; index += 1) {
      hash.update(pcrs.get(index) ?? new Uint8Array(DIGEST_SIZES[this.fileDigestAlg]));
    }
    const [entry] = await this.record([imaNgEntry(this.fileDigestAlg, new Uint8Array(hash.digest()), 'boot_aggregate')]);
    return entry as ImaNgEntry;
  }

  /** Measures files (in order) and returns the entries written. */
  async measure(files: readonly ImaMeasurement[]): Promise<ImaNgEntry[]> {
    const entries = files.map((file) => {
      const digest = 'content' in file ? new Uint8Array(createHash(this.fileDigestAlg).update(file.content).digest()) : file.fileDigest;
      return imaNgEntry(this.fileDigestAlg, digest, file.path);
    });
    return this.record(entries);
  }

  /** Records a ToMToU / open-writers violation for `path`. */
  async violation(path: string): Promise<ImaNgEntry> {
    const [entry] = await this.record([imaNgViolation(this.fileDigestAlg, DIGEST_SIZES[this.fileDigestAlg], path)]);
    return entry as ImaNgEntry;
  }

  /**
   * Logs first, then extends, as the kernel does (`ima_add_template_entry`: list, then TPM), so a quote
   * taken in between sees a log ahead of PCR 10, which a verifier must tolerate (Keylime spec §7.6).
   */
  private async record(entries: ImaNgEntry[]): Promise<ImaNgEntry[]> {
    if (entries.length === 0) {
      return entries;
    }
    const lines = entries.map((entry) => `${entry.line}\n`).join('');
    await appendFile(this.options.logPath, lines);
    this.options.copy?.append(lines);
    this.count += entries.length;
    const extendsInOrder: PcrExtend[] = entries.flatMap((entry) =>
      this.banks.map((bank) => ({ index: IMA_PCR, bank, digest: imaExtendDigest(entry, bank, DIGEST_SIZES[bank]) })),
    );
    await this.tpm.extendPcrs(extendsInOrder);
    return entries;
  }
}
