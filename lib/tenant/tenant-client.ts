import { AttestationFailed, IronlimeError } from '../../interfaces/errors.js';
import { judgeVerifierStatus, stateName, type StatusVerdict } from '../attestation/operator-decision.js';
import { KeylimeHttpError } from '../http/client-errors.js';
import type { ServiceTls } from '../pki/service-tls.js';
import type { RegistrarClient } from '../registrar/registrar-client.js';
import type { CertStore } from '../tpm/cert-store.js';
import type { TenantEkCheckMode } from './ek-certificate-check.js';
import { agentContact, buildEnrolmentBody, buildPushEnrolmentBody, checkEnrolmentPolicies, type CheckedEnrolmentPolicies, type EnrolmentPolicies } from './enrolment-request.js';
import { checkAgentIdentity, checkPushAgentIdentity, registeredAgentUrl, type AgentIdentityVerdict, type PushIdentityVerdict } from './identity-check.js';
import { newPayloadKeys } from './payload-keys.js';
import { pollUntil, type WaitOptions } from '../timing/poll-until.js';
import { openRegistrarAdmin } from './registrar-agents.js';
import { negotiateAgentApiVersion, openTenantAgentClient, sendU, verifyAgentBootstrapKey } from './tenant-agent-calls.js';
import { checkReplacementPolicyNames } from './update-policy-names.js';
import { OtherServiceReply } from '../http/other-service-reply.js';
import { VerifierClient, type VerifierHistoryEntry } from '../verifier/verifier-client.js';
import type { VerifierAgentStatus } from '../verifier/verifier-client-replies.js';
import { agentViewOf, verifierStatusReplyOf } from '../verifier/verifier-status-view.js';

export interface TenantClientOptions {
  /** The registrar's TLS (admin) URL, e.g. `https://127.0.0.1:8891`. */
  readonly registrarUrl: string;
  /** The verifier's URL, e.g. `https://127.0.0.1:8881`. */
  readonly verifierUrl: string;
  /** The services' CA and the tenant's client certificate + key from it (also presented to agents). */
  readonly tls: ServiceTls;
  /** EK certificate check at `addAgent` (default `require`, Keylime's `require_ek_cert = True`). */
  readonly ekCheck?: TenantEkCheckMode;
  /** Trusted EK CAs: default the shipped vendor store plus `extraEkCaDirs`. */
  readonly certStore?: CertStore;
  readonly extraEkCaDirs?: readonly string[];
  /** Per request; default 30 s. */
  readonly timeoutMs?: number;
}

/** What `addAgent` enrols an agent with: its policies, and optionally a payload key or payload. */
export interface AddAgentOptions extends EnrolmentPolicies {
  /** Reach the agent here (tenant and verifier) instead of its registered `ip:port`, e.g. `https://10.0.0.5:9002`. */
  readonly agentUrl?: string;
  /** Deliver a bootstrap key K (U to the agent now, V through the verifier after a good quote). */
  readonly deliverKeys?: boolean;
  /** Encrypted under K and sent with U (implies `deliverKeys`). */
  readonly payload?: Uint8Array;
  /** The enrolment's `metadata` (returned by the verifier as `meta_data`). */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** PEM RSA private key the verifier signs this agent's revocation messages with. */
  readonly revocationKey?: string;
}

export interface AddAgentResult {
  readonly agentId: string;
  /** The identity verdict (EK certificate, identity quote against the registered AK, PCR 16; push: the first only). */
  readonly identity: Extract<AgentIdentityVerdict | PushIdentityVerdict, { valid: true }>;
  /** K when keys were delivered: `verifyBootstrapKey` checks the agent derived it. */
  readonly bootstrapKey: Buffer | undefined;
  /** Agent API version the verifier will use. */
  readonly apiVersion: string;
}

/** Status as `getStatus` returns it: the verifier's fields plus the state's label. */
/** The label of a status without `operational_state`: its verdict is `attestation_status` alone. */
export const NO_OPERATIONAL_STATE_LABEL = 'none (push mode: see attestation_status)';

export type AgentStatus = VerifierAgentStatus & { readonly operational_state_label: string };

/** `judgeStatus`'s answer: the status as `getStatus` gives it, and the verdict on it, from one reply. */
export interface JudgedAgentStatus {
  readonly status: AgentStatus;
  readonly verdict: StatusVerdict;
}

export type { WaitOptions };

/**
 * The tenant as a library (Keylime `keylime_tenant`, spec §8): what an operator — or the `keylime`
 * attestation driver — does to put an agent under attestation and take it off again. One instance
 * holds kept-alive mTLS connections to the registrar and the verifier; `close()` ends them.
 *
 * - `addAgent(id, options)`: reads the agent from the registrar, runs `checkAgentIdentity` (EK
 *   certificate, identity quote against the registered AK, PCR 16 binding of the NK), enrols it with
 *   the verifier with its runtime, measured-boot and PCR policies (`EnrolmentPolicies`), then
 *   optionally sends U (and a payload) to the agent. Throws `AttestationFailed` when the identity check fails.
 * - `getStatus(id)`, `judgeStatus(id)` (with the driver's verdict: pass, pending or fail), `listAgents()`, `history(id)`.
 * - `deleteAgent(id)`: DELETE (not when a status read answers with a registrar's record), then waits
 *   for the verifier's TERMINATED handshake to end in 404.
 * - `updateAgent(id, options)`: check and build the new enrolment, then delete, then add (as Keylime's `update`).
 * - `stopAgent(id)`, `reactivateAgent(id)`.
 * - Policy stores: `addRuntimePolicy` / `showRuntimePolicy` / `listRuntimePolicies` / `deleteRuntimePolicy`
 *   and the `…MbPolicy` equivalents.
 * - `waitForState(id, states)`, `verifyBootstrapKey(id, k)`.
 *
 * Remote refusals are `KeylimeHttpError` (with the remote status: 404 unknown agent, 409 exists,
 * 400 bad field); unreachable services are `ServiceUnreachableError`.
 */
export class TenantClient {
  readonly verifier: VerifierClient;
  readonly registrar: RegistrarClient;

  constructor(private readonly options: TenantClientOptions) {
    const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    this.verifier = new VerifierClient({ baseUrl: options.verifierUrl, tls: { ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key }, ...timeout });
    this.registrar = openRegistrarAdmin(options.registrarUrl, options.tls);
  }

  /**
   * Puts an agent under attestation (see the class comment). The policies are checked first, before
   * anything is sent (`checkEnrolmentPolicies`).
   * @throws AttestationFailed; InvalidParameterValue and the policy errors for a bad policy.
   */
  addAgent(agentId: string, options: AddAgentOptions = {}): Promise<AddAgentResult> {
    return this.#enrol(agentId, options, async () => undefined);
  }

  /**
   * `addAgent`'s checks and request (policies, identity check, agent API version, enrolment body),
   * then `beforeSend` (`updateAgent`'s removal of the old enrolment), then the enrolment and U to the
   * agent: whatever is refused is refused before `beforeSend` has run, and a refused enrolment before U.
   * @throws EnrolledWithoutBootstrapKey when the verifier took the enrolment but U did not reach the agent
   */
  async #enrol(agentId: string, options: AddAgentOptions, beforeSend: (policies: CheckedEnrolmentPolicies) => Promise<void>): Promise<AddAgentResult> {
    const policies = checkEnrolmentPolicies(options);
    const verdict = await checkAgentIdentity({
      registrar: this.registrar,
      agentId,
      tls: this.options.tls,
      ...(this.options.ekCheck === undefined ? {} : { ekCheck: this.options.ekCheck }),
      ...(this.options.certStore === undefined ? {} : { certStore: this.options.certStore }),
      ...(this.options.extraEkCaDirs === undefined ? {} : { extraEkCaDirs: this.options.extraEkCaDirs }),
      ...(options.agentUrl === undefined ? {} : { agentUrl: options.agentUrl }),
      ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
    });
    if (!verdict.valid) {
      throw new AttestationFailed([`identity check '${verdict.check}' failed: ${verdict.reason}`]);
    }
    const agentUrl = new URL(options.agentUrl ?? registeredAgentUrl(verdict.agent) ?? '');
    const agent = openTenantAgentClient(this.options, agentUrl.origin, verdict.agent.mtlsCert as string, '2.1');
    try {
      const apiVersion = await negotiateAgentApiVersion(agent);
      const keys = options.deliverKeys === true || options.payload !== undefined ? newPayloadKeys(agentId) : undefined;
      const given = options.agentUrl === undefined ? {} : { ip: agentUrl.hostname, port: Number(agentUrl.port === '' ? 443 : agentUrl.port) };
      const contact = agentContact(verdict.agent, given);
      const body = buildEnrolmentBody(
        {
          agent: verdict.agent,
          ...contact,
          v: keys === undefined ? null : keys.v.toString('base64'),
          supportedVersion: apiVersion,
          ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
          ...(options.revocationKey === undefined ? {} : { revocationKey: options.revocationKey }),
        },
        policies,
      );
      await beforeSend(policies);
      // The verifier first, then U (Keylime's tenant: do_cv before do_quote sends U): an enrolment the
      // verifier refuses (409: the agent is enrolled already) must never reach the agent, whose U has to
      // keep pairing with the V its verifier holds.
      await this.verifier.addAgent(agentId, body);
      if (keys !== undefined) {
        try {
          await sendU(this.options, agentUrl.origin, verdict, apiVersion, keys, options.payload);
        } catch (error) {
          throw new EnrolledWithoutBootstrapKey(agentId, error);
        }
      }
      return { agentId, identity: verdict, bootstrapKey: keys?.k, apiVersion };
    } finally {
      agent.close();
    }
  }

  /**
   * Puts a push agent under attestation (spec §10.1): checks its registrar record and EK certificate
   * (`checkPushAgentIdentity`), then enrols it with `attestation_mode: "push"` — no address, no
   * identity quote (it opens no port), no payload. @throws AttestationFailed
   */
  async addPushAgent(agentId: string, options: Pick<AddAgentOptions, Exclude<keyof AddAgentOptions, 'agentUrl' | 'payload' | 'deliverKeys' | 'revocationKey'>> = {}): Promise<AddAgentResult> {
    const policies = checkEnrolmentPolicies(options);
    const verdict = await checkPushAgentIdentity({
      registrar: this.registrar,
      agentId,
      ...(this.options.ekCheck === undefined ? {} : { ekCheck: this.options.ekCheck }),
      ...(this.options.certStore === undefined ? {} : { certStore: this.options.certStore }),
      ...(this.options.extraEkCaDirs === undefined ? {} : { extraEkCaDirs: this.options.extraEkCaDirs }),
    });
    if (!verdict.valid) {
      throw new AttestationFailed([`identity check '${verdict.check}' failed: ${verdict.reason}`]);
    }
    await this.verifier.addAgent(agentId, buildPushEnrolmentBody(verdict.agent, policies, options.metadata));
    return { agentId, identity: verdict, bootstrapKey: undefined, apiVersion: '3.0' };
  }

  /**
   * `GET /agents/{id}` with the state's label (`Get Quote`, `Invalid Quote`, …), or `NO_OPERATIONAL_STATE_LABEL`
   * when the verifier gave no state (a push-mode Keylime verifier).
   */
  async getStatus(agentId: string): Promise<AgentStatus> {
    return withStateLabel(await this.verifier.status(agentId));
  }

  /**
   * `getStatus` with the keylime driver's verdict on the same reply (`judgeVerifierStatus`, its age
   * taken on the verifier's clock, its reply's `Date`): `pass` only for a PASS after at least one
   * success, fresh; `fail` for FAIL, TIMEOUT, states 7-10; `pending` for anything else — not yet
   * quoted, retrying a silent agent, a stale PASS, an `attestation_status` not known here.
   * `staleAfterSeconds` replaces that bound (the driver's option of the same name): a Keylime verifier
   * before API 2.5 sends no `attestation_period`, so one quoting every 60 s was judged by 2 × 2 s + 62 s.
   * @throws BadRemoteReplyError for a wrongly typed field, or a reply about another agent
   */
  async judgeStatus(agentId: string, rule: { readonly staleAfterSeconds?: number } = {}): Promise<JudgedAgentStatus> {
    const { results, verifierTime } = await this.verifier.rawStatusAt(agentId);
    const reply = verifierStatusReplyOf(agentId, results);
    const verdict = judgeVerifierStatus(agentViewOf(reply), { now: Date.now() / 1000, verifierNow: verifierTime, staleAfterSeconds: rule.staleAfterSeconds });
    return { status: withStateLabel(reply), verdict };
  }

  /** Ids of the verifier's agents (of `verifierId` when given). */
  listAgents(verifierId?: string): Promise<string[]> {
    return this.verifier.list(verifierId);
  }

  /** The newest `limit` rounds of an agent older than history id `before`, across the verifier's pages (ironlime verifiers only). */
  history(agentId: string, limit?: number, before?: number): Promise<VerifierHistoryEntry[]> {
    return this.verifier.history(agentId, limit, before);
  }

  /**
   * Removes the agent from the verifier and waits until it is gone (404): a polled agent goes through
   * Keylime's TERMINATED handshake (202, deleted by the loop's next tick).
   * @throws IronlimeError ERR_TIMEOUT when it is still there after `timeoutMs`.
   */
  async deleteAgent(agentId: string, wait: WaitOptions = {}): Promise<void> {
    await this.#deleteEnrolment(agentId);
    await this.#untilGone(agentId, wait);
  }

  /**
   * `DELETE /agents/{id}`, unless a status read first answers with a registrar's record: a registrar
   * serves the same path on its TLS port, and a DELETE sent there would remove the agent's registration.
   * Any other outcome of that read (an error included) leaves the DELETE to answer, as before.
   * @throws OtherServiceReply
   */
  async #deleteEnrolment(agentId: string): Promise<void> {
    await this.verifier.rawStatus(agentId).catch((error: unknown) => {
      if (error instanceof OtherServiceReply) throw error;
    });
    await this.verifier.delete(agentId);
  }

  /**
   * Polls the status until the verifier answers 404, once it accepted the removal. A 5xx or 429 is
   * waited through (the verifier may be between its database and the loop that deletes the agent);
   * anything else ends the wait at once.
   * @throws RemovalNotSeen (ERR_TIMEOUT at the deadline) naming the last such answer
   */
  async #untilGone(agentId: string, wait: WaitOptions): Promise<void> {
    let busy: KeylimeHttpError | undefined;
    try {
      await pollUntil(wait, `agent ${agentId} still present at the verifier`, async () => {
        try {
          await this.verifier.status(agentId);
          busy = undefined;
          return false;
        } catch (error) {
          if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) {
            return true;
          }
          if (error instanceof KeylimeHttpError && (error.remoteHttpStatus >= 500 || error.remoteHttpStatus === 429)) {
            busy = error;
            return false;
          }
          throw error;
        }
      });
    } catch (error) {
      throw new RemovalNotSeen(agentId, error, busy);
    }
  }

  /**
   * Keylime's `update`: the new enrolment is checked and built as by `addAgent` (policies, identity
   * check), and only then is the old one deleted (waiting for 404) and the new one sent. As Keylime's
   * `init_add` before `do_cvdelete`: a bad policy or a failed identity check leaves the agent monitored,
   * and so does a policy name the verifier would refuse once the old enrolment is gone
   * (`checkReplacementPolicyNames`). A failure once the verifier accepted the delete (the wait for it,
   * the add refused) is `UpdateLeftAgentUnenrolled`: the agent is then attested by no one until it is added again.
   * U failing after the new enrolment was taken is `EnrolledWithoutBootstrapKey`.
   */
  async updateAgent(agentId: string, options: AddAgentOptions = {}, wait: WaitOptions = {}): Promise<AddAgentResult> {
    let deleted = false;
    try {
      return await this.#enrol(agentId, options, async (policies) => {
        await checkReplacementPolicyNames(this.verifier, agentId, policies);
        await this.#deleteEnrolment(agentId);
        // Accepted: the verifier removes the agent whether or not the wait below sees it go.
        deleted = true;
        await this.#untilGone(agentId, wait);
      });
    } catch (error) {
      // Enrolled again, only without U: not a removal to report.
      if (!deleted || error instanceof EnrolledWithoutBootstrapKey) throw error;
      throw new UpdateLeftAgentUnenrolled(agentId, error);
    }
  }

  /** `PUT …/reactivate`: polling starts again from START. */
  reactivateAgent(agentId: string): Promise<void> {
    return this.verifier.reactivate(agentId);
  }

  /** `PUT …/stop`: polling stops (Tenant Quote Failed). */
  stopAgent(agentId: string): Promise<void> {
    return this.verifier.stop(agentId);
  }

  /**
   * Polls the status until `operational_state` is one of `states`; resolves to that status.
   * @throws IronlimeError ERR_TIMEOUT
   */
  async waitForState(agentId: string, states: readonly number[], wait: WaitOptions = {}): Promise<AgentStatus> {
    let last: AgentStatus | undefined;
    await pollUntil(wait, `agent ${agentId} did not reach state ${states.join('/')}`, async () => {
      last = await this.getStatus(agentId);
      return typeof last.operational_state === 'number' && states.includes(last.operational_state);
    });
    return last as AgentStatus;
  }

  /** Keylime's `--verify`: true once the agent shows it derived `k` (`verifyAgentBootstrapKey`). */
  verifyBootstrapKey(agentId: string, k: Buffer, wait: WaitOptions & { readonly agentUrl?: string } = {}): Promise<boolean> {
    return verifyAgentBootstrapKey(this.options, this.registrar, agentId, k, wait);
  }

  /** `POST /allowlists/{name}` (or PUT with `update`): policy text — JSON, DSSE envelope or flat allowlist. */
  addRuntimePolicy(name: string, policy: string, options: { keyPem?: string; update?: boolean } = {}): Promise<void> {
    return this.verifier.addRuntimePolicy(name, policy, options);
  }

  showRuntimePolicy(name: string): ReturnType<VerifierClient['showRuntimePolicy']> {
    return this.verifier.showRuntimePolicy(name);
  }

  listRuntimePolicies(): Promise<string[]> {
    return this.verifier.listRuntimePolicies();
  }

  deleteRuntimePolicy(name: string): Promise<void> {
    return this.verifier.deleteRuntimePolicy(name);
  }

  /** `POST /mbpolicies/{name}` (or PUT with `update`): refstate JSON text. */
  addMbPolicy(name: string, refstate: string, options: { update?: boolean } = {}): Promise<void> {
    return this.verifier.addMbPolicy(name, refstate, options);
  }

  showMbPolicy(name: string): ReturnType<VerifierClient['showMbPolicy']> {
    return this.verifier.showMbPolicy(name);
  }

  listMbPolicies(): Promise<string[]> {
    return this.verifier.listMbPolicies();
  }

  deleteMbPolicy(name: string): Promise<void> {
    return this.verifier.deleteMbPolicy(name);
  }

  close(): void {
    this.verifier.close();
    this.registrar.close();
  }
}

/** A status with its state's label (`NO_OPERATIONAL_STATE_LABEL` without a state). */
function withStateLabel(status: VerifierAgentStatus): AgentStatus {
  const state = status.operational_state;
  const label = state === undefined || state === null ? NO_OPERATIONAL_STATE_LABEL : stateName(state);
  return { ...status, operational_state_label: label };
}

/**
 * The verifier took the enrolment but U (and the payload) did not reach the agent: the agent is
 * attested, yet never derives this enrolment's K. `update` with the key options sends them again.
 */
export class EnrolledWithoutBootstrapKey extends IronlimeError {
  constructor(agentId: string, cause: unknown) {
    super(
      cause instanceof IronlimeError ? cause.code : 'ERR_ATTESTATION_SERVICE_UNAVAILABLE',
      `agent ${agentId} is enrolled with the verifier, but its bootstrap key (U) was not delivered, so it will not derive K (run update to send it again): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** The verifier accepted an agent's removal, but the wait for it to be gone failed: the agent may still go. */
export class RemovalNotSeen extends IronlimeError {
  constructor(agentId: string, cause: unknown, lastBusyAnswer: KeylimeHttpError | undefined) {
    super(
      cause instanceof IronlimeError ? cause.code : 'ERR_ATTESTATION_SERVICE_UNAVAILABLE',
      `the verifier accepted the removal of agent ${agentId}, but the tenant did not see it gone: ${cause instanceof Error ? cause.message : String(cause)}${lastBusyAnswer === undefined ? '' : `; its last status read answered ${lastBusyAnswer.message}`}`,
      { cause },
    );
  }
}

/** `updateAgent` deleted the old enrolment and then failed: the agent is not enrolled with the verifier now. */
export class UpdateLeftAgentUnenrolled extends IronlimeError {
  constructor(agentId: string, cause: unknown) {
    super(
      cause instanceof IronlimeError ? cause.code : 'ERR_ATTESTATION_SERVICE_UNAVAILABLE',
      `agent ${agentId} was deleted from the verifier but not enrolled again, so it is not attested now (add it again): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
