import { randomBytes } from 'node:crypto';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import type { BrokerAdminClient, BrokerNodeInput } from '../broker/broker-admin-client.js';
import type { ResourcePath } from '../broker/kbs-wire.js';
import type { TrustClaim } from '../broker/resource-policy.js';
import { KbsRefusedError } from '../kbs-client/kbs-client-errors.js';
import { messageOf } from '../verifier/error-message.js';

export interface NodeSecretReleaseOptions {
  /** The broker's admin API (mTLS client certificate from the broker's CA). */
  readonly broker: BrokerAdminClient;
  /**
   * What the broker must know to appraise the node's own evidence: at least its AK (the registrar's
   * `aik_tpm`), and the node's runtime policy and refstate so the broker checks them as the verifier does.
   */
  readonly nodeRecord: (agentId: string, node: Node) => Promise<BrokerNodeInput>;
  /** Resource repository and type; the tag is the node's uuid (default `node/disk-key/<uuid>`). */
  readonly repository?: string;
  readonly type?: string;
  /** Also require good standing in the continuous verifier at every fetch (default true). */
  readonly verifierStanding?: boolean;
  /**
   * Trustworthiness claims the node's attestation to the broker must affirm (the resource's
   * `required_claims`; default none). `['configuration', 'executables']` releases the secret only to a
   * node whose boot and runtime were checked, so `nodeRecord` must then give a refstate (or a
   * `tpm_policy` naming PCRs) and a runtime policy.
   */
  readonly requiredClaims?: readonly TrustClaim[];
  /** A fresh secret per deploy (default 32 random bytes: a disk-encryption key). */
  readonly newSecret?: () => Uint8Array;
}

/** What the broker held for a node when its deploy began (`NodeSecretRelease.begin`). */
export interface SecretDeployStart {
  /** The version of the revocation in force then; null when none was. */
  readonly revocation: string | null;
}

/**
 * The provisioning tie-in of the KBS broker, a hook beside the attestation driver: after a deploy whose
 * attestation passed, the orchestrator stores a fresh per-node secret in the broker, readable only by
 * that node's agent id — and only through its own attestation to the broker (cookie or token), and, by
 * default, only while the continuous verifier trusts it. After a failed deploy the secret is deleted
 * and the node revoked in the broker, so a node that fails can fetch nothing. The node fetches it with
 * `ironlime kbs get-resource kbs:///node/disk-key/<uuid>` (or `KbsClient`).
 */
export class NodeSecretRelease {
  constructor(private readonly options: NodeSecretReleaseOptions) {}

  /** The broker path of a node's secret. */
  resourceOf(node: Node): ResourcePath {
    return { repository: this.options.repository ?? 'node', type: this.options.type ?? 'disk-key', tag: node.uuid };
  }

  /**
   * Called when the deploy begins, before its attestation: reads the node's revocation in force then
   * (the broker's version of it), the only one `release` may end, and deletes the secret an earlier
   * deploy released. From here only this deploy's outcome gives the node a secret, so a rebuild cut
   * short where no error handler runs (the orchestrator's process killed between its verdict and the
   * withdrawal) leaves none readable.
   */
  async begin(node: Node): Promise<SecretDeployStart> {
    const revocation = await this.options.broker.revocationInForce(agentIdOf(node));
    await ignoreNotFound(this.options.broker.deleteResource(this.resourceOf(node)));
    return { revocation };
  }

  /**
   * After the deploy's attestation passed: stores the node (its AK and policies) afresh — deleted first,
   * so no session or token issued before this deploy reads what it stores — and a fresh secret for
   * it, and ends the revocation that was in force when the deploy began (an earlier failure; its old
   * credentials stay refused). A revocation recorded since — a verifier failing the node after its
   * deploy attestation passed — is never ended: the broker refuses the reinstatement (409) or the node
   * is found revoked after the secret is stored, the secret is deleted again and the deploy fails.
   * Resolves the path the node fetches.
   */
  async release(node: Node, start: SecretDeployStart): Promise<ResourcePath> {
    const agentId = agentIdOf(node);
    const broker = this.options.broker;
    const record = await this.options.nodeRecord(agentId, node);
    // The node's sessions and tokens from before this deploy (the previous tenant's, unexpired) end here:
    // deleting the node refuses every credential issued until now and leaves a revocation in force as it is.
    await ignoreNotFound(broker.deleteNode(agentId));
    await broker.putNode(agentId, record);
    if (start.revocation !== null) {
      await ignoreNotFound(broker.reinstate(agentId, start.revocation));
    }
    const path = this.resourceOf(node);
    await broker.putResource(path, (this.options.newSecret ?? (() => new Uint8Array(randomBytes(32))))(), {
      agents: [agentId],
      allow_tokens: true,
      verifier_standing: this.options.verifierStanding ?? true,
      ...(this.options.requiredClaims === undefined ? {} : { required_claims: [...this.options.requiredClaims] }),
    });
    if ((await broker.revocationInForce(agentId)) !== null) {
      await ignoreNotFound(broker.deleteResource(path));
      throw new Error(`node ${agentId} was revoked in the broker during its deploy: its secret is withdrawn`);
    }
    return path;
  }

  /**
   * Revokes the node in the broker (its sessions and tokens stop at once), then deletes its secret.
   * The revocation comes first because it is what stops the node; each step is tried even when the
   * other fails, and every failure is thrown (one error, or an `AggregateError` of both).
   */
  async withdraw(node: Node, reason: string): Promise<void> {
    const agentId = node.driverInfo['keylime_agent_uuid'];
    const broker = this.options.broker;
    const failures: unknown[] = [];
    if (typeof agentId === 'string') {
      await broker.revoke(agentId, reason).catch((error: unknown) => failures.push(error));
    }
    await ignoreNotFound(broker.deleteResource(this.resourceOf(node))).catch((error: unknown) => failures.push(error));
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) {
      throw new AggregateError(failures, `node ${node.uuid}: withdrawing failed: ${failures.map(messageOf).join('; ')}`);
    }
  }
}

function agentIdOf(node: Node): string {
  const agentId = node.driverInfo['keylime_agent_uuid'];
  if (typeof agentId !== 'string' || agentId === '') {
    throw new InvalidParameterValue('driver_info.keylime_agent_uuid', `node ${node.uuid} has none: its secret cannot be bound to an agent`);
  }
  return agentId;
}

async function ignoreNotFound(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof KbsRefusedError && error.remoteHttpStatus === 404)) {
      throw error;
    }
  }
}
