import { BadRemoteReplyError } from './client-errors.js';

/** The two services that serve `GET`/`DELETE /v2.x/agents/{id}` on an mTLS port (spec §3.2, §4.2). */
export type AgentService = 'registrar' | 'verifier';

/** What each service's agent reply is called, and the fields only it holds. */
const REPLIES: Readonly<Record<AgentService, { readonly reply: string; readonly onlyFields: readonly string[] }>> = {
  registrar: { reply: "a registrar's record", onlyFields: ['aik_tpm', 'ek_tpm', 'regcount'] },
  verifier: { reply: "a verifier's status", onlyFields: ['operational_state', 'attestation_count', 'verifier_id'] },
};

/**
 * An agent reply read from one service's URL that is the other's: the URL names the other service
 * (8881 given for 8891 or the reverse). Read as the service asked, a registrar's record was a push
 * agent's empty status, and a DELETE sent there removed the wrong enrolment.
 */
export class OtherServiceReply extends BadRemoteReplyError {}

/**
 * Refuses `results`, read at `url` from what should be the `asked` service, when they hold fields only
 * the other service's agent reply holds.
 * @throws OtherServiceReply
 */
export function refuseOtherServiceReply(asked: AgentService, url: string, results: unknown): void {
  if (typeof results !== 'object' || results === null) return;
  const other: AgentService = asked === 'registrar' ? 'verifier' : 'registrar';
  const found = REPLIES[other].onlyFields.filter((field) => Object.hasOwn(results, field));
  if (found.length === 0) return;
  throw new OtherServiceReply(
    url,
    `it is ${REPLIES[other].reply} of the agent (${found.join(', ')}), not ${REPLIES[asked].reply}: the ${asked} URL points at a ${other} (the registrar's TLS port is 8891 by default, the verifier's 8881)`,
  );
}
