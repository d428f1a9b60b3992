import { isAlgorithmAccepted, isQuoteHashAlg, type QuoteHashAlg } from '../algorithms.js';
import { FailureComponent, failureEvent, type FailureEvent } from './failure.js';
import type { AgentQuoteReply } from './quote-reply.js';

/**
 * Checks on the agent's reply made before the quote itself is looked at (cloud_verifier_common
 * `process_quote_response`; spec §7.1): a usable NK public key, accepted algorithms, and the IMA
 * offset the agent answered with.
 */

/** The accept lists the tenant enrolled (`accept_tpm_*_algs`). */
export interface AcceptedAlgorithms {
  readonly acceptTpmHashAlgs: readonly string[];
  readonly acceptTpmEncryptionAlgs: readonly string[];
  readonly acceptTpmSigningAlgs: readonly string[];
}

/** What the checks need to know about the previous round. */
export interface PreCheckState {
  /** The NK public key (PEM) cached from an earlier full reply, or null. */
  readonly publicKey: string | null;
  readonly boottime: number;
  readonly nextImaEntry: number;
}

/**
 * How this round's IMA list relates to the stored incremental state:
 * `continue` from the stored state, `restart` from entry 0 with fresh state, or `skip` replay this
 * round (state reset; the next request starts from entry 0).
 */
export type ImaContinuation = 'continue' | 'restart' | 'skip';

export type PreCheckOutcome =
  | { readonly ok: false; readonly event: FailureEvent }
  | {
      readonly ok: true;
      readonly hashAlg: QuoteHashAlg;
      /** The key PCR 16 must bind: the reply's `pubkey`, else the cached one. */
      readonly publicKey: string;
      readonly ima: ImaContinuation;
      /** `invalid_ima_entry_nb`, which Keylime records without stopping the other checks. */
      readonly events: readonly FailureEvent[];
    };

const quoteEvent = (event: string, context: Record<string, unknown>): FailureEvent =>
  failureEvent(FailureComponent.QUOTE_VALIDATION, event, context, false);

/**
 * Runs the pre-checks in Keylime's order; the first failing key or algorithm check ends the round
 * (irrecoverable). A reply starting at IMA entry 0 restarts incremental IMA state. An entry other than
 * the one requested is `invalid_ima_entry_nb` (irrecoverable; the quote is still checked, IMA is not).
 *
 * Deliberate difference: when the agent reports a different `boottime` for a list that does not start at
 * 0 (`continuesAcrossReboot`), Keylime resets IMA state and returns without checking anything — a pass.
 * The pull loop never judges such a reply: it asks again from entry 0 at once (`decideQuoteReply`), so
 * the new boot's list is replayed whole in the same round. Given one anyway, we reset IMA state but
 * still check the quote, clock and PCRs; only the IMA replay is skipped.
 */
export function preCheckReply(
  reply: AgentQuoteReply,
  accepted: AcceptedAlgorithms,
  state: PreCheckState,
): PreCheckOutcome {
  const publicKey = reply.pubkey ?? state.publicKey;
  if (publicKey === null || publicKey === '') {
    return {
      ok: false,
      event: quoteEvent('no_pubkey', {
        message: 'agent did not provide public key and no key was cached at CV',
        data: null,
      }),
    };
  }
  if (!isAlgorithmAccepted(reply.hash_alg, accepted.acceptTpmHashAlgs) || !isQuoteHashAlg(reply.hash_alg)) {
    return algorithmRefused('invalid_hash_alg', 'hash', reply.hash_alg);
  }
  if (!isAlgorithmAccepted(reply.enc_alg, accepted.acceptTpmEncryptionAlgs)) {
    return algorithmRefused('invalid_enc_alg', 'encryption', reply.enc_alg);
  }
  if (!isAlgorithmAccepted(reply.sign_alg, accepted.acceptTpmSigningAlgs)) {
    return algorithmRefused('invalid_sign_alg', 'signing', reply.sign_alg);
  }
  const entry = reply.ima_measurement_list_entry ?? 0;
  if (entry === 0) {
    return { ok: true, hashAlg: reply.hash_alg, publicKey, ima: 'restart', events: [] };
  }
  if (entry !== state.nextImaEntry) {
    const event = quoteEvent('invalid_ima_entry_nb', {
      message: 'Agent did not respond with requested next IMA measurement list entry',
      got: entry,
      expected: state.nextImaEntry,
    });
    return { ok: true, hashAlg: reply.hash_alg, publicKey, ima: 'skip', events: [event] };
  }
  if (continuesAcrossReboot(reply, state)) {
    return { ok: true, hashAlg: reply.hash_alg, publicKey, ima: 'skip', events: [] };
  }
  return { ok: true, hashAlg: reply.hash_alg, publicKey, ima: 'continue', events: [] };
}

/**
 * Whether the reply continues the IMA list at the entry asked for but reports another boot time than
 * the stored progress was made in: the node rebooted, and the lines it sent are the tail of another
 * boot's list, which the stored PCR 10 replay cannot continue.
 */
export function continuesAcrossReboot(reply: AgentQuoteReply, state: Pick<PreCheckState, 'boottime' | 'nextImaEntry'>): boolean {
  const entry = reply.ima_measurement_list_entry ?? 0;
  return entry !== 0 && entry === state.nextImaEntry && (reply.boottime ?? 0) !== state.boottime;
}

function algorithmRefused(event: string, kind: string, name: string): PreCheckOutcome {
  return {
    ok: false,
    event: quoteEvent(event, { message: `TPM Quote is using an unaccepted ${kind} algorithm: ${name}`, data: name }),
  };
}
