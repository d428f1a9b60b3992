import { KeylimeHttpError } from '../http/client-errors.js';
import { bytesEqual } from '../bytes/bytes-equal.js';
import type { VerifierClient } from '../verifier/verifier-client.js';

/** Why a node is not in good standing; `unavailable` when the verifier could not be asked (a passing outage, not a verdict). */
export interface StandingRefusal {
  readonly reason: string;
  readonly unavailable?: true;
}

/**
 * The good-standing rule of a resource policy (`verifier_standing`): the continuous verifier must
 * trust the node right now, and the verifier must know it by the same AK the broker does, so an agent
 * id cannot borrow another machine's good standing. Resolves the refusal, or undefined when the node
 * is in good standing. Never throws: a verifier that cannot be asked is a refusal (fail closed).
 */
export interface StandingCheck {
  refusal(agentId: string, akTpm: string | null): Promise<StandingRefusal | undefined>;
  /** Releases connections (kept-alive ones would hold up the verifier's own shutdown). */
  close(): void;
}

/**
 * `StandingCheck` against our verifier: `GET /agents/{id}` must say `trusted: true` (a PASS no older
 * than the freshness bound; a Keylime verifier lacks the field and is never in good standing) and its
 * `ak_tpm` must be the same TPM2B_PUBLIC as the broker's.
 */
export class VerifierStanding implements StandingCheck {
  constructor(private readonly verifier: VerifierClient) {}

  async refusal(agentId: string, akTpm: string | null): Promise<StandingRefusal | undefined> {
    if (akTpm === null) {
      return { reason: 'good standing needs the node\'s AK, and this broker has none for it' };
    }
    let status: unknown;
    try {
      status = await this.verifier.rawStatus(agentId);
    } catch (error) {
      if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
        return { reason: 'the verifier does not attest this node' };
      }
      return { reason: 'the verifier could not be asked about this node', unavailable: true };
    }
    const record = (status ?? {}) as Record<string, unknown>;
    if (record['trusted'] !== true) {
      return { reason: 'the verifier does not trust this node right now' };
    }
    const verifierAk = record['ak_tpm'];
    if (typeof verifierAk !== 'string' || !bytesEqual(Buffer.from(verifierAk, 'base64'), Buffer.from(akTpm, 'base64'))) {
      return { reason: 'the verifier knows this agent id by another AK' };
    }
    return undefined;
  }

  close(): void {
    this.verifier.close();
  }
}

/** The rule when no verifier is configured: every resource that asks for it is refused. */
export const NO_VERIFIER: StandingCheck = {
  refusal: () => Promise.resolve({ reason: 'the resource needs good standing in the verifier, and this broker has no verifier configured' }),
  close: () => undefined,
};
