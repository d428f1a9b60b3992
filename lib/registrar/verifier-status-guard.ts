import { BadRemoteReplyError } from '../http/client-errors.js';

/**
 * Fields of a verifier's agent status (spec §4.2) that no registrar record (§3.2) holds. A verifier
 * serves `GET`/`DELETE /v2.x/agents/{id}` as the registrar's TLS port does, so a registrar URL that
 * names the verifier (8881 for 8891) would have a registrar delete remove the agent's enrolment with
 * the verifier, leaving the node unattested.
 */
const VERIFIER_ONLY_FIELDS = ['operational_state', 'attestation_count', 'verifier_id'] as const;

/** A registrar record read answered with a verifier's status: the registrar URL names a verifier. */
export class VerifierStatusAsRegistrarRecord extends BadRemoteReplyError {
  constructor(url: string, fields: readonly string[]) {
    super(
      url,
      `it is a verifier's status of the agent (${fields.join(', ')}), not a registrar's record: the registrar URL points at a verifier (the registrar's TLS port is 8891 by default, the verifier's 8881)`,
    );
  }
}

/**
 * Refuses `results` of a registrar record read at `url` when it is a verifier's status of the agent.
 * @throws VerifierStatusAsRegistrarRecord
 */
export function refuseVerifierStatus(url: string, results: unknown): void {
  if (typeof results !== 'object' || results === null) return;
  const found = VERIFIER_ONLY_FIELDS.filter((field) => Object.hasOwn(results, field));
  if (found.length > 0) throw new VerifierStatusAsRegistrarRecord(url, found);
}
