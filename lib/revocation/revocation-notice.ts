/** What the verifier knows about an agent it just failed (its enrolment row and the failure). */
export interface AgentFailureNotice {
  readonly agentId: string;
  readonly ip: string | null;
  readonly port: number | null;
  /** `tpm_policy` JSON text as enrolled. */
  readonly tpmPolicy: string;
  /** `metadata` JSON text as enrolled. */
  readonly metaData: string;
  /** The `revocation_key` PEM the tenant enrolled with the agent ("" = unsigned, as Keylime). */
  readonly revocationKey: string;
  /** `revocation` for a failed attestation (default), `comm_error` for a good agent gone silent. */
  readonly type?: 'revocation' | 'comm_error';
  /** The failure that caused it (Keylime event id and severity label), and its context. */
  readonly eventId: string;
  readonly severityLabel: string;
  readonly context: unknown;
  /**
   * The failed agent's tenant: only the other agents of the same tenant are told (`otherAgents`), so one
   * tenant's nodes never learn another's node, address, policy or failure. Absent: no agent is told.
   */
  readonly tenant?: string;
  /**
   * The other agents of this verifier to notify (Keylime: every other agent with the same verifier id;
   * here only those of the failed agent's `tenant`).
   * A function is called later, off the caller's stack, so a verifier with thousands of agents does not
   * list them on its round path.
   */
  readonly otherAgents?: readonly RevocationAgentTarget[] | (() => Iterable<RevocationAgentTarget>);
}

/** An agent's revocation endpoint: its URL, API version and pinned HTTPS certificate. */
export interface RevocationAgentTarget {
  readonly agentId: string;
  /** The agent's tenant: it is sent only its own tenant's notices. Absent: it is sent none. */
  readonly tenant?: string;
  /** `https://10.0.0.5:9002`. */
  readonly url: string;
  /** Agent API version used in the path (`2.1`…). */
  readonly apiVersion: string;
  /** PEM of the agent's self-signed certificate (pinned), or undefined to use `agentTls.ca` (and check the URL's host name). */
  readonly mtlsCert?: string;
  /**
   * Sends the envelope JSON over a connection the caller already holds to this agent (the verifier's
   * kept-alive pull connection): no new TLS handshake per notification. Absent: a connection is opened.
   */
  readonly post?: (envelopeJson: string) => Promise<void>;
  /**
   * The connection `post` goes over now (a serial that changes when a new one is opened; undefined while
   * none is open). With it, an agent that refused a notice outright is not sent the next one signed the
   * same way while the connection lasts (`ReceiverRefusals`). Absent: every notice is sent.
   */
  readonly receiver?: () => number | undefined;
}
