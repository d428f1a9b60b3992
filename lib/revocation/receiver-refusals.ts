import type { RevocationAgentTarget } from './revocation-notice.js';

/** Refusals that say the receiver takes no notice signed this way: 403 (no revocation key, or not this signer's), 404 (no such route). */
const OUTRIGHT_REFUSALS = new Set([403, 404]);

/**
 * Agents that refused a revocation notice outright, remembered so that the next notice signed the same
 * way is not sent to them only to be refused again. A fleet of agents without a revocation key refuses
 * every notice: in the verifier benchmark that was 1.5 requests per attestation, each a TLS write, a
 * reply to parse and an error with its stack.
 *
 * Why this keeps Keylime's semantics: a Keylime agent's answer to a notice depends on its revocation
 * key, read when it starts, and on who signed the notice; the rest is ours and the same for every
 * notice. A 403 is "no revocation key configured" or "not signed by that key" (`RevocationReceiver`;
 * the Rust agent likewise), a 404 "no such route". So a refusal is remembered per agent, per signer
 * (the revocation key that signed the notice; "" when unsigned) and per connection
 * (`RevocationAgentTarget.receiver`): a restarted agent, perhaps with a new key, is a new connection,
 * and gets the next notice. Other refusals (400: a notice too large, …) are not remembered, and
 * neither is one whose connection changed while it was sent.
 */
export class ReceiverRefusals {
  private readonly refused = new WeakMap<RevocationAgentTarget, { readonly connection: number; readonly signers: Set<string> }>();

  /** True when `target` already refused outright, on the connection it has now, a notice signed by `signer`. */
  refuses(target: RevocationAgentTarget, signer: string): boolean {
    const entry = this.refused.get(target);
    return entry !== undefined && entry.connection === target.receiver?.() && entry.signers.has(signer);
  }

  /** Records `target`'s refusal (`status`) of a notice by `signer`, sent while its connection was `connection`. */
  remember(target: RevocationAgentTarget, signer: string, status: number, connection: number | undefined): void {
    if (!OUTRIGHT_REFUSALS.has(status) || connection === undefined || target.receiver?.() !== connection) return;
    const entry = this.refused.get(target);
    if (entry !== undefined && entry.connection === connection) {
      entry.signers.add(signer);
    } else {
      this.refused.set(target, { connection, signers: new Set([signer]) });
    }
  }
}
