import { BadRemoteReplyError } from '../http/client-errors.js';

/**
 * Fields of a registrar's agent record (spec §3.2: `aik_tpm`, `ek_tpm`, `regcount`) that no verifier's
 * status reply (§4.2) holds. A registrar serves `GET`/`DELETE /v2.x/agents/{id}` on its TLS port too,
 * so a verifier URL that names the registrar (8891 for 8881) is otherwise read as a push agent's empty
 * status, and a delete sent there removes the agent's registration.
 */
const REGISTRAR_ONLY_FIELDS = ['aik_tpm', 'ek_tpm', 'regcount'] as const;

/** A verifier status read answered with a registrar's record: the verifier URL names a registrar. */
export class RegistrarRecordAsVerifierStatus extends BadRemoteReplyError {
  constructor(url: string, fields: readonly string[]) {
    super(
      url,
      `it is a registrar's record of the agent (${fields.join(', ')}), not a verifier's status: the verifier URL points at a registrar (the registrar's TLS port is 8891 by default, the verifier's 8881)`,
    );
  }
}

/**
 * Refuses `results` of a verifier status read at `url` when it is a registrar's record of the agent.
 * @throws RegistrarRecordAsVerifierStatus
 */
export function refuseRegistrarRecord(url: string, results: unknown): void {
  if (typeof results !== 'object' || results === null) return;
  const found = REGISTRAR_ONLY_FIELDS.filter((field) => Object.hasOwn(results, field));
  if (found.length > 0) throw new RegistrarRecordAsVerifierStatus(url, found);
}
