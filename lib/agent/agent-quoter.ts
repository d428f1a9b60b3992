import { createHash } from 'node:crypto';
import { DATA_PCR } from '../tpm/keylime-profile.js';
import { formatQuoteString } from '../tpm/quote-string.js';
import type { Tpm, TpmHashAlgorithm } from '../tpm-access/tpm-port.js';

/** Highest PCR a Keylime mask may name (spec §2, `mask`). */
const MAX_MASK_PCR = 23;

/**
 * PCR indices of a Keylime mask (`0x408400`: bit i = PCR i), already validated as hex of PCRs 0–23,
 * plus PCR 16, which the agent always quotes (spec §2).
 */
export function pcrsOfMask(mask: string | undefined): number[] {
  const bits = mask === undefined ? 0 : Number.parseInt(mask.replace(/^0[xX]/, ''), 16);
  const pcrs = new Set<number>([DATA_PCR]);
  for (let pcr = 0; pcr <= MAX_MASK_PCR; pcr += 1) {
    if ((bits >>> pcr) & 1) {
      pcrs.add(pcr);
    }
  }
  return [...pcrs].sort((a, b) => a - b);
}

/**
 * Produces Keylime quote strings as the Rust agent does (spec §3.3): before every quote, PCR 16 is
 * reset and extended with H(pubkey PEM) in the quote's bank, binding the NK served as `pubkey` to
 * this TPM; then TPM2_Quote over the requested PCRs (the adapters re-read and retry when PCRs move).
 * Quotes run one at a time, so two requests can never interleave their PCR 16 reset and quote.
 */
export class AgentQuoter {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly nkDigest: Uint8Array;

  constructor(
    private readonly tpm: Tpm,
    private readonly hashAlg: TpmHashAlgorithm,
    nkPublicPem: string,
  ) {
    this.nkDigest = new Uint8Array(createHash(hashAlg).update(Buffer.from(nkPublicPem, 'utf8')).digest());
  }

  /** `r<attest>:<signature>:<pcr blob>` over `pcrs` (which must include 16), qualifying data = the nonce's ASCII bytes. */
  quote(nonce: string, pcrs: readonly number[]): Promise<string> {
    const run = this.queue.then(async () => {
      await this.tpm.resetPcr(DATA_PCR);
      await this.tpm.extendPcr(DATA_PCR, this.hashAlg, this.nkDigest);
      const result = await this.tpm.quote({ nonce: new Uint8Array(Buffer.from(nonce, 'ascii')), pcrs, hashAlg: this.hashAlg });
      return formatQuoteString(result);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}
