import { createHash } from 'node:crypto';
import { DATA_PCR } from '../tpm/keylime-profile.js';
import { formatQuoteString } from '../tpm/quote-string.js';
import { ServiceBusyError } from '../http/http-errors.js';
import { ConcurrencyLimiter } from '../timing/concurrency-limiter.js';
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
 * Quotes that may wait for the TPM behind the one running. A verifier asks one quote per round, so
 * more waiting means a burst (another mTLS client) or a stalled TPM; past it a verifier's fresh quote
 * would wait behind stale ones beyond its timeout.
 */
export const MAX_WAITING_QUOTES = 4;
/** What a refused quote's reply asks the client to wait (`Retry-After`). */
const BUSY_RETRY_AFTER_SECONDS = 1;

/**
 * Produces Keylime quote strings as the Rust agent does (spec §3.3): before every quote, PCR 16 is
 * reset and extended with H(pubkey PEM) in the quote's bank, binding the NK served as `pubkey` to
 * this TPM; then TPM2_Quote over the requested PCRs (the adapters re-read and retry when PCRs move).
 * Quotes run one at a time, so two requests can never interleave their PCR 16 reset and quote. At
 * most `MAX_WAITING_QUOTES` wait behind the running one (the Rust agent queues without bound); a quote whose
 * request was given up (`signal` aborted) before its turn leaves the queue without reaching the TPM.
 */
export class AgentQuoter {
  private readonly tpmTurns = new ConcurrencyLimiter(1);
  private readonly nkDigest: Uint8Array;

  constructor(
    private readonly tpm: Tpm,
    private readonly hashAlg: TpmHashAlgorithm,
    nkPublicPem: string,
  ) {
    this.nkDigest = new Uint8Array(createHash(hashAlg).update(Buffer.from(nkPublicPem, 'utf8')).digest());
  }

  /**
   * `r<attest>:<signature>:<pcr blob>` over `pcrs` (which must include 16), qualifying data = the nonce's ASCII bytes.
   * @throws ServiceBusyError (`ERR_AGENT_BUSY`) when `MAX_WAITING_QUOTES` already wait, or when `signal` aborts before the quote's turn
   */
  async quote(nonce: string, pcrs: readonly number[], signal?: AbortSignal): Promise<string> {
    if (signal?.aborted === true) throw abandoned();
    if (this.tpmTurns.running > 0 && this.tpmTurns.queued >= MAX_WAITING_QUOTES) {
      throw new ServiceBusyError(`${this.tpmTurns.queued} quotes already wait for the TPM; retry in ${BUSY_RETRY_AFTER_SECONDS} s`, BUSY_RETRY_AFTER_SECONDS, 'ERR_AGENT_BUSY');
    }
    try {
      return await this.tpmTurns.run(() => this.make(nonce, pcrs), signal);
    } catch (error) {
      // The limiter rejects a quote given up while it waited with its signal's reason.
      throw error !== undefined && error === signal?.reason ? abandoned() : error;
    }
  }

  /** PCR 16 reset, extend and quote, with the TPM held (one turn of `tpmTurns`) until the quote is made. */
  private async make(nonce: string, pcrs: readonly number[]): Promise<string> {
    await this.tpm.resetPcr(DATA_PCR);
    await this.tpm.extendPcr(DATA_PCR, this.hashAlg, this.nkDigest);
    const result = await this.tpm.quote({ nonce: new Uint8Array(Buffer.from(nonce, 'ascii')), pcrs, hashAlg: this.hashAlg });
    return formatQuoteString(result);
  }
}

/** The refusal of a quote whose client left before its turn (nobody reads it). */
function abandoned(): ServiceBusyError {
  return new ServiceBusyError('quote request given up by its client before it reached the TPM', BUSY_RETRY_AFTER_SECONDS, 'ERR_AGENT_BUSY');
}
