import { InvalidParameterValue } from '../../interfaces/errors.js';
import { TEE_TPM } from '../broker/kbs-wire.js';
import { EVIDENCE_LIMITS } from '../broker/tpm-evidence.js';
import { FileReadError, readRegularFile } from '../files/regular-file.js';
import { formatQuoteString } from '../tpm/quote-string.js';
import type { Tpm, TpmHashAlgorithm } from '../tpm-access/tpm-port.js';
import type { EvidenceProvider } from './evidence-provider.js';

export interface TpmEvidenceProviderOptions {
  /** The node's TPM through the agent's port: tpm2-tools (swtpm, `/dev/tpmrm0`) or the software TPM. */
  readonly tpm: Tpm;
  /** The agent id the broker knows this node (and its AK) by. */
  readonly agentId: string;
  /** PCR bank and AK hash (default sha256). */
  readonly hashAlg?: TpmHashAlgorithm;
  /** PCRs to quote (default 0–10 and 14: firmware, boot loader, IMA, shim/MOK). */
  readonly pcrs?: readonly number[];
  /** ASCII IMA list to send (`/sys/kernel/security/ima/ascii_runtime_measurements`), if any. */
  readonly imaLogPath?: string;
  /** Binary UEFI event log to send (`/sys/kernel/security/tpm0/binary_bios_measurements`), if any. */
  readonly bootLogPath?: string;
}

export const DEFAULT_QUOTED_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14];

/**
 * TPM evidence for the broker (`tee-evidence.primary_evidence`, docs/broker.md): a quote with the
 * node's AK whose qualifying data is the report data, in Keylime's quote-string form, plus the IMA list
 * and boot log read after the quote (so they can only be ahead of the quoted PCRs, as the agent does).
 */
export class TpmEvidenceProvider implements EvidenceProvider {
  readonly tee = TEE_TPM;
  private readonly hashAlg: TpmHashAlgorithm;
  private readonly pcrs: readonly number[];

  constructor(private readonly options: TpmEvidenceProviderOptions) {
    this.hashAlg = options.hashAlg ?? 'sha256';
    this.pcrs = options.pcrs ?? DEFAULT_QUOTED_PCRS;
    if (this.pcrs.some((pcr) => !Number.isInteger(pcr) || pcr < 0 || pcr > 23)) {
      throw new InvalidParameterValue('pcrs', 'must be PCR numbers 0-23');
    }
  }

  async primaryEvidence(reportData: Uint8Array): Promise<Readonly<Record<string, unknown>>> {
    await this.options.tpm.ensureAk(this.hashAlg);
    const quote = await this.options.tpm.quote({ nonce: reportData, pcrs: this.pcrs, hashAlg: this.hashAlg });
    const evidence: Record<string, unknown> = {
      agent_id: this.options.agentId,
      quote: formatQuoteString(quote),
      hash_alg: this.hashAlg,
    };
    if (this.options.imaLogPath !== undefined) {
      evidence['ima_measurement_list'] = (await readLog(this.options.imaLogPath, 'imaLogPath', EVIDENCE_LIMITS.imaList)).toString('utf8');
    }
    if (this.options.bootLogPath !== undefined) {
      evidence['mb_measurement_list'] = (await readLog(this.options.bootLogPath, 'bootLogPath', EVIDENCE_LIMITS.mbLog)).toString('base64');
    }
    return evidence;
  }
}

/**
 * A log to send, read as a regular file up to what the broker accepts of it (`EVIDENCE_LIMITS`): a
 * FIFO held the attestation for ever, and /dev/zero grew a buffer until memory ran out. securityfs
 * reports size 0, so the file is read, not stat'ed. @throws InvalidParameterValue naming the option
 */
async function readLog(file: string, option: string, maxBytes: number): Promise<Buffer> {
  try {
    return await readRegularFile(file, { setting: option, maxBytes });
  } catch (error) {
    if (error instanceof FileReadError) throw new InvalidParameterValue(option, error.detail, { cause: error });
    throw error;
  }
}
