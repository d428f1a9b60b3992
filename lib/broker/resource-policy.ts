/**
 * Who may read a resource (docs/broker.md). A node is allowed when its agent id is listed or it is in a
 * listed group; `allow_tokens: false` restricts the resource to nodes that attested to this broker
 * (background check); `required_claims` names trustworthiness-vector claims every appraisal of the
 * requester must affirm; `verifier_standing: true` also requires the node to be in good standing in the
 * continuous verifier at the time of the request (`verifier-standing.ts`, checked by the service after
 * this decision). Pure.
 */
export interface ResourcePolicy {
  readonly agents: readonly string[];
  readonly groups: readonly string[];
  readonly allow_tokens: boolean;
  readonly verifier_standing?: boolean;
  /** Absent or empty: no claim is required (resources stored before this member). */
  readonly required_claims?: readonly TrustClaim[];
}

/** The AR4SI trustworthiness claims this broker appraises (`TrustworthinessVector`). */
export const TRUST_CLAIMS = ['instance-identity', 'configuration', 'executables', 'hardware'] as const;
export type TrustClaim = (typeof TRUST_CLAIMS)[number];

/**
 * The standard values of AR4SI's "affirming" tier (draft-ietf-rats-ar4si): 0 is "no claim", 32 and up
 * warn or contraindicate. Negative values (implementation-specific) are not accepted: this broker's
 * issuers write none.
 */
const AFFIRMING_MIN = 2;
const AFFIRMING_MAX = 31;

/** One appraisal of the requester: where it came from (for the refusal's detail) and its trustworthiness vector as received. */
export interface AppraisedVector {
  readonly source: string;
  readonly vector: unknown;
}

/** How the requester proved itself. */
export interface ResourceRequester {
  readonly agentId: string;
  /** The node's groups as this broker knows them (empty for a node it has no record of). */
  readonly groups: readonly string[];
  readonly via: 'session' | 'token';
  /**
   * The vectors of the requester's appraisals: the session's, or every submodule's of its token. null:
   * none was kept (a session attested before the broker kept vectors).
   */
  readonly vectors: readonly AppraisedVector[] | null;
}

/**
 * `attestAgain`: the refusal is the credential's, not the node's — it carries no trustworthiness vector
 * (a session attested before vectors were kept) — so a fresh attestation may pass.
 */
export type PolicyDecision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string; readonly attestAgain: boolean };

export function decideResourceAccess(policy: ResourcePolicy, requester: ResourceRequester): PolicyDecision {
  if (requester.via === 'token' && !policy.allow_tokens) {
    return { allowed: false, reason: 'this resource is released only after attestation to this broker', attestAgain: false };
  }
  if (!policy.agents.includes(requester.agentId) && !requester.groups.some((group) => policy.groups.includes(group))) {
    return { allowed: false, reason: `node ${requester.agentId} is not allowed to read this resource`, attestAgain: false };
  }
  const missing = missingClaim(policy.required_claims ?? [], requester.vectors);
  if (missing === undefined) {
    return { allowed: true };
  }
  const attestAgain = requester.vectors === null || requester.vectors.length === 0;
  return { allowed: false, reason: `node ${requester.agentId}: ${missing}`, attestAgain };
}

/**
 * The first required claim some appraisal does not affirm, as a refusal's detail, or undefined when
 * every appraisal affirms every required claim. Without any vector, any required claim refuses.
 */
function missingClaim(required: readonly TrustClaim[], vectors: readonly AppraisedVector[] | null): string | undefined {
  if (required.length === 0) {
    return undefined;
  }
  if (vectors === null || vectors.length === 0) {
    return `claim ${required[0]} is required and this credential carries no trustworthiness vector: attest again`;
  }
  for (const { source, vector } of vectors) {
    for (const claim of required) {
      const value = vector !== null && typeof vector === 'object' ? (vector as Record<string, unknown>)[claim] : undefined;
      if (!isAffirming(value)) {
        const shown = value === undefined ? 'absent' : String(JSON.stringify(value)).slice(0, 40);
        return `claim ${claim} is ${shown} in ${source} (required affirming: ${AFFIRMING_MIN}..${AFFIRMING_MAX})`;
      }
    }
  }
  return undefined;
}

function isAffirming(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= AFFIRMING_MIN && value <= AFFIRMING_MAX;
}
