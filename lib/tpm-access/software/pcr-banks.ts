import { createHash } from 'node:crypto';
import { PCR_COUNT } from '../port-checks.js';
import { TpmAccessError } from '../tpm-access-error.js';
import { DIGEST_SIZES, type TpmHashAlgorithm } from '../tpm-port.js';

/**
 * PCR banks held in memory, with the PC Client reset values (PC Client Platform TPM Profile, Table 4):
 * PCRs 17–22 (DRTM) start at all ones, every other PCR at zero — what swtpm shows after startup.
 */
export class PcrBanks {
  private readonly banks = new Map<TpmHashAlgorithm, Uint8Array[]>();

  constructor(readonly active: readonly TpmHashAlgorithm[]) {
    this.reset();
  }

  /** TPM2_Startup(CLEAR): every PCR back to its reset value. */
  reset(): void {
    for (const bank of this.active) {
      this.banks.set(bank, Array.from({ length: PCR_COUNT }, (_, index) => initialValue(bank, index)));
    }
  }

  /** PCR_Extend: pcr = H_bank(pcr ‖ digest) (TPM 2.0 Part 1 §17.2). */
  extend(index: number, bank: TpmHashAlgorithm, digest: Uint8Array): void {
    const values = this.bank(bank);
    values[index] = new Uint8Array(createHash(bank).update(values[index] ?? new Uint8Array()).update(digest).digest());
  }

  /** PCR_Reset of one PCR in every bank. */
  resetPcr(index: number): void {
    for (const bank of this.active) {
      this.bank(bank)[index] = initialValue(bank, index);
    }
  }

  read(bank: TpmHashAlgorithm, index: number): Uint8Array {
    return (this.bank(bank)[index] ?? new Uint8Array()).slice();
  }

  private bank(bank: TpmHashAlgorithm): Uint8Array[] {
    const values = this.banks.get(bank);
    if (values === undefined) {
      throw new TpmAccessError(`PCR bank ${bank} is not active (active: ${this.active.join(', ')})`);
    }
    return values;
  }
}

function initialValue(bank: TpmHashAlgorithm, index: number): Uint8Array {
  return new Uint8Array(DIGEST_SIZES[bank]).fill(index >= 17 && index <= 22 ? 0xff : 0x00);
}
