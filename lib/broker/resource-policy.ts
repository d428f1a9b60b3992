/**
 * Who may read a resource (docs/broker.md). A node is allowed when its agent id is listed or it is in a
 * listed group; `allow_tokens: false` restricts the resource to nodes that attested to this broker
 * (background check); `verifier_standing: true` also requires the node to be in good standing in the
 * continuous verifier at the time of the request (`verifier-standing.ts`, checked by the service after
 * this decision). Pure.
 */
export interface ResourcePolicy {
  readonly agents: readonly string[];
  readonly groups: readonly string[];
  readonly allow_tokens: boolean;
  readonly verifier_standing?: boolean;
}

/** How the requester proved itself. */
export interface ResourceRequester {
  readonly agentId: string;
  /** The node's groups as this broker knows them (empty for a node it has no record of). */
  readonly groups: readonly string[];
  readonly via: 'session' | 'token';
}

export type PolicyDecision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

export function decideResourceAccess(policy: ResourcePolicy, requester: ResourceRequester): PolicyDecision {
  if (requester.via === 'token' && !policy.allow_tokens) {
    return { allowed: false, reason: 'this resource is released only after attestation to this broker' };
  }
  if (policy.agents.includes(requester.agentId)) {
    return { allowed: true };
  }
  if (requester.groups.some((group) => policy.groups.includes(group))) {
    return { allowed: true };
  }
  return { allowed: false, reason: `node ${requester.agentId} is not allowed to read this resource` };
}
