import { AttestationInterface } from '../../interfaces/attestation-interface.js';
import { mergeProperties } from '../../interfaces/driver-info.js';
import { AttestationFailed, AttestationServiceUnavailable, InvalidParameterValue, MissingParameterValue } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import type { Task } from '../../interfaces/task.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { formatPcrMask } from '../../lib/attestation/tpm-policy.js';
import type { TenantEkCheckMode } from '../../lib/tenant/ek-certificate-check.js';
import { checkAgentLocation, type AgentLocation, type AgentLocator, type DriverInfoWriter } from './agent-locator.js';
import { enrolAgent, fingerprintOf, type EnrolAgentInput } from './agent-enrolment.js';
import { agentClaimedElsewhere, foreignEnrolment, storeLocation } from './node-binding.js';
import { checkDriverOptionBounds } from './driver-option-bounds.js';
import { buildEnrolmentPolicy, type FetchedDocuments } from './enrolment-policy.js';
import { fetchCheckedDocument, type FetchLimits } from './fetch-document.js';
import { openKeylimeConnection, toServiceError, type KeylimeConnection } from './keylime-connection.js';
import { parseKeylimeDriverInfo, type KeylimeNodeSettings } from './keylime-driver-info.js';
import { OPTIONAL_PROPERTIES, REQUIRED_PROPERTIES } from './keylime-properties.js';
import { removeAndWait } from './verifier-removal.js';
import { readVerifierAgent } from './verifier-agent-view.js';
import { checkedForLiveness, enrolForLiveness, readTrustLevel, removeOwnLiveness } from './node-identity.js';
import { awaitTrustedStatus } from './security-status.js';
import { EXPIRED, settleBefore } from './status-wait.js';
import type { TrustLevel } from '../../lib/identity/trust-level.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';

/** How the driver is built; every field has a default. */
export interface KeylimeAttestationOptions {
  /** Where `locateAgent` and the locator store a location (the orchestrator's `NodeStore`). */
  readonly nodes?: DriverInfoWriter;
  /** Asked for the agent's location when `driver_info` has no `keylime_agent_uuid` (the ramdisk's call). */
  readonly agentLocator?: AgentLocator;
  /** Time allowed to download one policy document (default 30 s). */
  readonly fetchTimeoutMs?: number;
  /** Largest policy document accepted (default 64 MiB, Keylime's order of magnitude for allowlists). */
  readonly maxDocumentBytes?: number;
  /** Timeout of each request to the verifier, registrar and agent (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** The tenant's EK certificate check before enrolment (default `require`, Keylime's `require_ek_cert`). */
  readonly ekCheck?: TenantEkCheckMode;
  /** Extra trusted EK CA folders, added to the shipped vendor store and to the config's `keylime.extraEkCaDirs`. */
  readonly extraEkCaDirs?: readonly string[];
  /** Age in seconds past which a PASS is stale (default: the verifier's bound, else 2 × its interval + Keylime's retry budget). */
  readonly staleAfterSeconds?: number;
}

const DEFAULT_FETCH_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The `keylime` attestation interface (Ironic attestation spec): enrols a node's Keylime agent with a
 * Keylime-compatible verifier — ours or Keylime's — and reads the verifier's verdict.
 *
 * - `startAttestation`: fetches the allowlist (or JSON runtime policy), exclude list and refstate and
 *   checks their sha256 before anything is sent; builds the runtime policy, PCR mask and a fingerprint;
 *   if the verifier already holds the agent with the same fingerprint, does nothing (idempotent — a
 *   failed verdict stays failed); with another fingerprint, removes it (waiting for the termination
 *   handshake) and enrols again; otherwise checks the agent at the registrar and its identity quote
 *   (EK certificate, AK, PCR 16 binding), then enrols it with the registrar's AK and mTLS certificate.
 * - `validateSecurityStatus`: waits, bounded by `statusTimeoutSeconds`, until the verifier has a final
 *   verdict: resolves once the agent passed at least one attestation since enrolment and is in good
 *   standing; rejects with `AttestationFailed` (verifier state, `last_event_id`, failure history).
 * - `unregisterNode`: removes the agent from the verifier, waiting until it is gone; 404 counts as done.
 * - `locateAgent`: stores the location the ramdisk reports into `driver_info`.
 * An agent without a TPM goes through the verifier's liveness routes instead, bound to its node alike.
 */
export class KeylimeAttestation extends AttestationInterface {
  readonly #options: KeylimeAttestationOptions;
  /**
   * The level `trustLevel` read for a task, and the agent it was read for. The hooks gate the step on
   * that read; `startAttestation` and `validateSecurityStatus` of the same task use it instead of
   * asking the registrar again, which could answer another level (a mode change) or, through the
   * locator, for another agent: the node would then be enrolled on a level the gate never judged.
   */
  readonly #gatedLevels = new WeakMap<Task, { readonly agentId: string; readonly level: TrustLevel }>();

  /** @throws InvalidParameterValue for a numeric option that is not finite, not above 0, too large or (milliseconds, bytes) not whole, or an `ekCheck` that is not a mode. */
  constructor(options: KeylimeAttestationOptions = {}) {
    super();
    checkDriverOptionBounds(options);
    this.#options = options;
  }

  getProperties(): Record<string, string> {
    return mergeProperties(REQUIRED_PROPERTIES, OPTIONAL_PROPERTIES);
  }

  /**
   * Checks every field of `driver_info` (and the `keylime` config defaults) without network or files.
   *
   * @throws MissingParameterValue listing every missing field.
   * @throws InvalidParameterValue naming the first unusable field.
   */
  validate(task: Task): void {
    this.#settings(task);
  }

  /**
   * Stores where the node's agent is — as the ramdisk reports it — into `driver_info`
   * (`keylime_agent_uuid`, `keylime_agent_address`, `keylime_agent_port`) through the node store given
   * as option `nodes`, and resolves to the updated node (build the next task from it).
   *
   * @throws InvalidParameterValue for a malformed location, or one whose agent another node's `driver_info` names;
   *   MissingParameterValue without a node store.
   */
  async locateAgent(task: Task, location: AgentLocation): Promise<Node> {
    checkAgentLocation(location);
    const nodes = this.#options.nodes;
    if (nodes === undefined) {
      throw new MissingParameterValue(['nodes'], 'keylime driver options');
    }
    const claimed = await agentClaimedElsewhere(nodes, location.uuid, task.node.uuid);
    if (claimed !== undefined) {
      throw new InvalidParameterValue('agent location uuid', claimed);
    }
    const node = await storeLocation(nodes, task.node, location);
    task.logger.info({ node: node.uuid, agent: location.uuid }, 'keylime agent location stored in driver_info');
    return node;
  }

  /**
   * @throws InvalidParameterValue for a document that cannot be read, is malformed or fails its checksum
   *   (before anything is sent to any service).
   * @throws AttestationFailed when the agent is not registered or its identity check fails.
   * @throws AttestationServiceUnavailable when a service or document server cannot be used.
   */
  async startAttestation(task: Task): Promise<void> {
    const settings = this.#settings(task);
    const documents = await this.#fetchDocuments(settings, task.signal);
    const policy = buildEnrolmentPolicy(settings, documents, this.#identityOptions(task));
    const location = await this.#location(task, settings, true);
    const claimed = await agentClaimedElsewhere(this.#options.nodes, location.uuid, task.node.uuid);
    if (claimed !== undefined) {
      throw new AttestationFailed([claimed]);
    }
    const gated = this.#gatedLevelOf(task, location.uuid);
    const connection = await this.#connect(settings);
    const log = { node: task.node.uuid, agent: location.uuid };
    try {
      const enrolled = await readVerifierAgent(connection.verifier, location.uuid);
      if (enrolled === undefined && checkedForLiveness(gated ?? (await readTrustLevel(connection, location.uuid, this.#identityOptions(task))))) {
        if ((await enrolForLiveness(connection, connection.liveness(), location.uuid, task.node.uuid)) === 'kept-failed') {
          task.logger.warn(log, 'agent has no TPM and failed its liveness checks: not re-enrolled (tear the node down to check it afresh)');
        } else {
          task.logger.info(log, 'agent has no TPM: enrolled for liveness checks (no integrity evidence)');
        }
        return;
      }
      const foreign = enrolled === undefined ? undefined : foreignEnrolment(enrolled, task.node.uuid, location.uuid);
      if (foreign !== undefined) {
        throw new AttestationFailed([foreign]);
      }
      if (enrolled !== undefined && enrolled.operationalState !== OperationalState.TERMINATED) {
        if (fingerprintOf(enrolled.metaData) === policy.fingerprint) {
          task.logger.info(log, 'agent already enrolled with this policy; nothing to do');
          return;
        }
        task.logger.info(log, 'agent enrolled with another policy; re-enrolling');
      }
      if (enrolled !== undefined) {
        await removeAndWait(connection, location.uuid, settings, task.signal);
      }
      await enrolWithTpm({ connection, location, policy, task, mode: settings.agentMode, ...this.#identityOptions(task) });
      task.logger.info({ ...log, mask: formatPcrMask(policy.policies.mask) }, 'agent enrolled with the verifier');
    } catch (error) {
      throw toServiceError(error, `agent ${location.uuid}`, settings);
    } finally {
      connection.close();
    }
  }

  /**
   * @throws AttestationFailed with the verifier's reasons and event ids, or when the agent is not enrolled.
   * @throws AttestationServiceUnavailable when no final verdict came within `statusTimeoutSeconds`.
   */
  async validateSecurityStatus(task: Task): Promise<void> {
    const settings = this.#settings(task);
    const agentId = (await this.#location(task, settings, false)).uuid;
    const gated = this.#gatedLevelOf(task, agentId);
    const connection = await this.#connect(settings);
    try {
      await awaitTrustedStatus({
        gatedLevel: gated,
        connection,
        settings,
        agentId,
        nodeUuid: task.node.uuid,
        signal: task.signal,
        identity: this.#identityOptions(task),
        staleAfterSeconds: this.#options.staleAfterSeconds,
      });
      task.logger.debug({ node: task.node.uuid, agent: agentId }, 'verifier reports the agent trusted');
    } catch (error) {
      throw toServiceError(error, `agent ${agentId}`, settings);
    } finally {
      connection.close();
    }
  }

  /** @throws AttestationServiceUnavailable when the verifier cannot be reached or never lets go of the agent. */
  async unregisterNode(task: Task): Promise<void> {
    const settings = this.#settings(task);
    const agentId = settings.agent.uuid ?? (await this.#askLocator(task))?.uuid;
    if (agentId === undefined) {
      task.logger.info({ node: task.node.uuid }, 'no keylime agent located for this node; nothing to unregister');
      return;
    }
    const connection = await this.#connect(settings);
    try {
      const level = task.node.trust?.level;
      if (level !== undefined && level !== null && checkedForLiveness(level)) {
        const kept = await removeOwnLiveness(connection.liveness(), agentId, task.node.uuid);
        if (kept !== undefined) task.logger.info({ node: task.node.uuid, agent: agentId }, `no liveness enrolment of this node to remove: ${kept}`);
      }
      const enrolled = await readVerifierAgent(connection.verifier, agentId);
      const foreign = enrolled === undefined ? 'the verifier does not hold the agent' : foreignEnrolment(enrolled, task.node.uuid, agentId);
      if (foreign !== undefined) {
        task.logger.info({ node: task.node.uuid, agent: agentId }, `nothing of this node to remove from the verifier: ${foreign}`);
        return;
      }
      await removeAndWait(connection, agentId, settings, task.signal);
      task.logger.info({ node: task.node.uuid, agent: agentId }, 'agent removed from the verifier');
    } catch (error) {
      throw toServiceError(error, `agent ${agentId}`, settings);
    } finally {
      connection.close();
    }
  }

  /**
   * The node's trust level as the registrar holds it (docs/identity.md).
   *
   * @throws AttestationFailed when the registrar does not know the agent.
   * @throws AttestationServiceUnavailable when the registrar cannot be reached.
   */
  override async trustLevel(task: Task): Promise<TrustLevel> {
    const settings = this.#settings(task);
    const agentId = (await this.#location(task, settings, false)).uuid;
    const connection = await this.#connect(settings);
    try {
      const level = await readTrustLevel(connection, agentId, this.#identityOptions(task));
      this.#gatedLevels.set(task, { agentId, level });
      return level;
    } catch (error) {
      throw toServiceError(error, `agent ${agentId}`, settings);
    } finally {
      connection.close();
    }
  }

  /**
   * The level `trustLevel` read for this task, undefined when it was not asked (the driver used
   * without the hooks: the caller then reads it). Refused when it was read for another agent than the
   * one the node now names: the gate judged that agent, not this one.
   */
  #gatedLevelOf(task: Task, agentId: string): TrustLevel | undefined {
    const gated = this.#gatedLevels.get(task);
    if (gated !== undefined && gated.agentId !== agentId) {
      throw new AttestationFailed([`the trust level was read for agent ${gated.agentId}, but the node's agent is now ${agentId}: start the step again`]);
    }
    return gated?.level;
  }

  #settings(task: Task): KeylimeNodeSettings {
    return parseKeylimeDriverInfo(task.node.driverInfo, task.config.keylime, { locatorAvailable: this.#options.agentLocator !== undefined });
  }

  #connect(settings: KeylimeNodeSettings): Promise<KeylimeConnection> {
    return openKeylimeConnection(settings, this.#options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  }

  /** The EK check: the configured CA folders (`keylime.extraEkCaDirs`) and the driver's own, both trusted. */
  #identityOptions(task: Task): { ekCheck: TenantEkCheckMode; extraEkCaDirs: readonly string[]; timeoutMs: number } {
    return {
      ekCheck: this.#options.ekCheck ?? 'require',
      extraEkCaDirs: [...(task.config.keylime.extraEkCaDirs ?? []), ...(this.#options.extraEkCaDirs ?? [])],
      timeoutMs: this.#options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    };
  }

  /** Every document, checked against its checksum, before any service is contacted. */
  async #fetchDocuments(settings: KeylimeNodeSettings, signal: AbortSignal): Promise<FetchedDocuments> {
    const limits: FetchLimits = {
      timeoutMs: this.#options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
      maxBytes: this.#options.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES,
      signal,
    };
    const [policy, excludelist, mbRefstate] = await Promise.all([
      fetchCheckedDocument(settings.policy, limits),
      settings.excludelist === undefined ? undefined : fetchCheckedDocument(settings.excludelist, limits),
      settings.mbRefstate === undefined ? undefined : fetchCheckedDocument(settings.mbRefstate, limits),
    ]);
    return { policy, excludelist, mbRefstate };
  }

  /**
   * The locator's answer, given the request timeout like any remote call (it may ask a ramdisk that
   * accepted the connection and never answers) and ended at once by the step's abort (with its reason).
   * The locator is given the task with a signal that also aborts at the timeout: a locator left running
   * would otherwise hold its request to a silent ramdisk until the step ends (never, for a step that
   * goes on with the agent `driver_info` names), one more at every call. Its late answer is dropped.
   *
   * @throws AttestationServiceUnavailable when it gave no answer in time.
   */
  async #askLocator(task: Task): Promise<AgentLocation | undefined> {
    const locator = this.#options.agentLocator;
    if (locator === undefined) return undefined;
    const timeoutMs = this.#options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    // Not `AbortSignal.any`: with a long-lived step signal (an orchestrator's one for every step), Node 20
    // keeps an entry for each signal it made on that signal for as long as it lives, one more at every call.
    const bounded = new AbortController();
    const follow = (): void => bounded.abort(task.signal.reason);
    if (task.signal.aborted) follow();
    else task.signal.addEventListener('abort', follow, { once: true });
    let located: AgentLocation | undefined | typeof EXPIRED;
    try {
      located = await settleBefore(() => locator(Object.freeze({ ...task, signal: bounded.signal })), timeoutMs, task.signal);
    } finally {
      // Answered, expired or aborted: nothing left for the step's abort to end.
      task.signal.removeEventListener('abort', follow);
    }
    if (located === EXPIRED) {
      const error = new AttestationServiceUnavailable(`the agent locator gave no answer within ${timeoutMs} ms`);
      bounded.abort(error);
      throw error;
    }
    return located;
  }

  /**
   * The locator's report for a node whose `driver_info` already names `uuid`. A locator that fails (a
   * ramdisk gone once the instance boots, an orchestrator API away) tells nothing about another agent:
   * it is logged and the stored agent used, as before the locator was asked, so it never fails a healthy node.
   */
  async #secondOpinion(task: Task, uuid: string): Promise<AgentLocation | undefined> {
    try {
      return await this.#askLocator(task);
    } catch (error) {
      if (task.signal.aborted) throw task.signal.reason;
      const why = error instanceof Error ? error.message : String(error);
      task.logger.warn({ node: task.node.uuid, agent: uuid }, `agent locator failed (${why}); using the agent driver_info names`);
      return undefined;
    }
  }

  /**
   * The agent's location from `driver_info` (refused when the locator reports another agent), else from the locator — stored back into `driver_info` when
   * `store` is set and a node store was given (the task's node is not refreshed: the hooks call
   * `validateSecurityStatus` with the same task, which asks the locator again).
   */
  async #location(task: Task, settings: KeylimeNodeSettings, store: boolean): Promise<AgentLocation> {
    const { uuid, address, port } = settings.agent;
    if (uuid !== undefined) {
      // A ramdisk that now reports another agent (a reinstalled node, a new TPM) is not silently
      // outvoted by the agent an earlier report left in driver_info: the operator decides which is right.
      const reported = await this.#secondOpinion(task, uuid);
      if (reported !== undefined && reported.uuid !== uuid) {
        throw new InvalidParameterValue(
          'driver_info.keylime_agent_uuid',
          `names agent ${uuid}, but the node's ramdisk now reports agent ${reported.uuid}: store the new location (locateAgent) or clear keylime_agent_uuid`,
        );
      }
      return { uuid, ...(address === undefined ? {} : { address }), ...(port === undefined ? {} : { port }) };
    }
    const located = await this.#askLocator(task);
    if (located === undefined) {
      throw new MissingParameterValue(['keylime_agent_uuid']);
    }
    checkAgentLocation(located);
    if (store && this.#options.nodes !== undefined) {
      await this.locateAgent(task, located);
    }
    return located;
  }
}

/**
 * `enrolAgent`, for a node that may have been checked for liveness before it had a TPM: ironlime's
 * verifier refuses (409) to attest an agent it still checks for liveness. The driver removes that
 * enrolment when it is this node's and has not failed (a failed verdict stays until the node is torn
 * down), then enrols once more. Asked only on a 409 that names it: a Keylime verifier has no liveness
 * routes; any other error is thrown as it came.
 */
async function enrolWithTpm(input: EnrolAgentInput): Promise<void> {
  try {
    await enrolAgent(input);
  } catch (error) {
    if (!(error instanceof KeylimeHttpError && error.remoteHttpStatus === 409 && error.status.includes('checked for liveness'))) throw error;
    const kept = await removeOwnLiveness(input.connection.liveness(), input.location.uuid, input.task.node.uuid, true);
    if (kept !== undefined) throw new AttestationFailed([kept], [], { cause: error });
    input.task.logger.info({ node: input.task.node.uuid, agent: input.location.uuid }, 'agent now registered with a TPM: its liveness enrolment removed');
    await enrolAgent(input);
  }
}
